"""Transforms of embedding spaces, fitted in streaming passes and applied block by block.

- ``center``: x − μ.
- ``normalize``: x / ‖x‖ (L2; zero rows are refused).
- ``whiten``: BERT-whitening (Su et al. 2021), x̃ = (x − μ) U Λ^{-1/2} with Σ = U Λ Uᵀ the sample
  covariance (ddof = 1), keeping the top ``components`` columns. Directions with eigenvalue at or
  below the numerical floor λ_max · d · ε (ε of the dtype the products were formed in: float32
  for float16/32 dumps) are noise, and at most N − 1 directions exist once centred: these are
  dropped, never scaled up (the output reports ``dropped_directions`` and the floor).
- ``linear``: x W + b with a stored matrix and bias (a ``geomkit translate`` map; never fitted
  here).
- ``abtt``: all-but-the-top (Mu, Bhat & Viswanath 2018): subtract μ, then remove the projections
  on the top D principal directions of the *centred* vectors.

Steps apply in the order given; each step that needs statistics is fitted on the output of the
steps before it (one streaming pass per fitted step). Fitted parameters are plain arrays so they can
be stored in the output file and re-applied with ``--fit-from``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from geomkit.engine.rows import unit_rows

from geomkit.engine.moments import eigh_descending
from geomkit.errors import InputError, UsageError
from geomkit.io.guarded import run_guarded



def whiten_floor(eigenvalues: np.ndarray, dtype, second_moment: float = 0.0) -> float:
    """Covariance eigenvalues at or below this are numerical noise: d · ε(dtype) · max(λ_max,
    s), with ε the machine epsilon of the dtype the products were formed in (float32 for
    float16/32 dumps) and s = E‖x‖² / d the data's second moment per coordinate (the mean
    included: centring rounds at the scale of the values, not of their spread). Rank-deficient
    data (N ≤ d, duplicated directions) put their null directions at ~ε·λ_max, and identical
    rows a whole spectrum at ~ε·s, not at 0; whitening them would scale noise up."""
    top = float(eigenvalues[0]) if eigenvalues.size else 0.0
    d = max(eigenvalues.size, 1)
    return d * float(np.finfo(np.dtype(dtype)).eps) * max(top, second_moment / d)


@dataclass
class Step:
    name: str
    options: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # fitted arrays

    @property
    def needs_fit(self) -> bool:
        return self.name in ("center", "whiten", "abtt")

    def fit(self, moments, dtype=np.float64) -> None:
        """Fit from ``moments`` of rows whose products were formed in ``dtype``."""
        if self.name == "center":
            self.params = {"mean": moments.mean}
        elif self.name == "whiten":
            values, vectors = eigh_descending(moments.cov())
            floor = whiten_floor(values, dtype,
                                 float(moments.mean @ moments.mean) + float(values.sum()))
            usable = min(int((values > floor).sum()), moments.n - 1)  # rank ≤ N − 1 once centred
            if usable < 1:
                raise InputError("the data have no direction with variance above the numerical "
                                 f"floor {floor:.3g} (constant or all-zero rows): whitening "
                                 "cannot scale them.")
            k = self.options.get("components")
            if k is not None and k > usable:
                raise UsageError(f"{k} whitened components were asked for, but only {usable} "
                                 f"directions have variance above the numerical floor "
                                 f"({floor:.3g}); whitening cannot scale the others.")
            k = usable if k is None else k
            self.params = {"mean": moments.mean,
                           "matrix": vectors[:, :k] / np.sqrt(values[:k]),
                           "eigenvalues": values,
                           "floor": np.float64(floor), "usable": np.int64(usable)}
        elif self.name == "abtt":
            D = self.options["directions"]
            if D >= len(moments.mean):
                raise UsageError(f"all-but-the-top cannot remove {D} directions of "
                                 f"{len(moments.mean)}-dimensional vectors (at most d − 1).")
            _, vectors = eigh_descending(moments.cov())
            self.params = {"mean": moments.mean, "directions": vectors[:, :D]}

    def apply(self, x: np.ndarray) -> np.ndarray:
        dtype = x.dtype
        if self.name == "normalize":
            sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
            if (sq == 0).any():  # zero rows of the input are refused or dropped by the source
                raise InputError(f"{int((sq == 0).sum())} rows are zero vectors at the normalize "
                                 f"step; L2 normalisation needs non-zero rows.")
            return unit_rows(x, sq)
        p = self.params
        if self.name == "center":
            return x - p["mean"].astype(dtype)
        if self.name == "whiten":
            return (x - p["mean"].astype(dtype)) @ p["matrix"].astype(dtype)
        if self.name == "abtt":
            c = x - p["mean"].astype(dtype)
            u = p["directions"].astype(dtype)
            return c - (c @ u) @ u.T
        if self.name == "linear":  # a translation map (geomkit translate): x W + b
            return x @ p["matrix"].astype(dtype) + p["bias"].astype(dtype)
        raise ValueError(self.name)

    def describe(self) -> dict:
        out = {"step": self.name, **self.options}
        if self.name == "whiten" and self.params:
            k = int(self.params["matrix"].shape[1])
            out["components"] = k
            if "usable" in self.params:  # stored since geomkit 0.1: older files lack it
                d = int(self.params["eigenvalues"].size)
                out["dropped_directions"] = d - k
                out["below_floor"] = d - int(self.params["usable"])
                out["eigenvalue_floor"] = float(self.params["floor"])
        return out


@dataclass
class Pipeline:
    steps: list[Step]

    def apply(self, x: np.ndarray) -> np.ndarray:
        for step in self.steps:
            x = step.apply(x)
        return x

    def apply_until(self, i: int | None = None, *, label: str | None = None):
        """A function applying the first ``i`` steps (all by default); errors name ``label``."""
        steps = self.steps if i is None else self.steps[:i]

        def run(x):
            try:
                for step in steps:
                    x = step.apply(x)
            except InputError as exc:
                if label is None:
                    raise
                raise exc.prefixed(label) from None
            return x
        return run

    def fit(self, space, progress: str | None = None) -> "Pipeline":
        """Fit every step that needs statistics, in order: the raw space's moments (shared
        with any analysis of the same :class:`geomkit.Space`) for the first, one streaming pass
        over the partly transformed rows for each later one."""
        from geomkit.space import as_space

        space = as_space(space)
        for i, step in enumerate(self.steps):
            if step.needs_fit:
                target = space if i == 0 else space.transformed(
                    self.apply_until(i, label=space.label), f"first {i} steps",
                    nonzero=self.needs_direction)
                moments = target.moments(scatter=step.name != "center",
                                         progress=progress and f"{progress}: fit {step.name}")
                try:
                    step.fit(moments, dtype=space.compute_dtype)
                except InputError as exc:
                    raise exc.prefixed(space.label) from None
        return self

    @property
    def needs_direction(self) -> bool:
        """The first step normalises the input rows: an all-zero input row is refused (or
        dropped with ``drop_zero``) like in every cosine analysis."""
        return bool(self.steps) and self.steps[0].name == "normalize"

    def describe(self) -> list[dict]:
        return [s.describe() for s in self.steps]

    def output_dim(self, d: int) -> int:
        for step in self.steps:
            if step.name in ("whiten", "linear"):
                d = step.params["matrix"].shape[1]
        return d

    # ---------------------------------------------------------------- persistence (HDF5 group)
    def save(self, group) -> None:
        group.attrs["steps"] = json.dumps([{"step": s.name, **s.options} for s in self.steps])
        for i, step in enumerate(self.steps):
            sub = group.create_group(f"step_{i}_{step.name}")
            for key, value in step.params.items():
                sub.create_dataset(key, data=value)

    @classmethod
    def load(cls, group, where: str) -> "Pipeline":
        try:
            specs = json.loads(run_guarded(lambda: _text(group.attrs["steps"]), where))
        except (KeyError, ValueError, TypeError):
            raise InputError(f"{where}: has no geomkit transform parameters (steps attribute).") from None
        steps = []
        for i, spec in enumerate(specs):
            name = spec.pop("step")
            sub = group.get(f"step_{i}_{name}")
            params = {}
            if sub is not None:
                params = {k: np.asarray(sub[k][()]) for k in sub}
            step = Step(name, spec, params)
            if step.needs_fit and not params:
                raise InputError(f"{where}: step {i} ({name}) has no fitted parameters.")
            steps.append(step)
        return cls(steps)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_steps(pairs: list[tuple[str, object]], components: int | None) -> Pipeline:
    """Steps from ``[(name, value), ...]`` in the order the user gave them."""
    steps = []
    for name, value in pairs:
        if name == "abtt":
            steps.append(Step("abtt", {"directions": int(value)}))
        elif name == "whiten":
            steps.append(Step("whiten", {"components": components} if components else {}))
        else:
            steps.append(Step(name))
    return Pipeline(steps)
