"""Statistical depth of texts w.r.t. a reference corpus, and the rank-sum test between corpora.

TTE depth (Seegmiller & Preum, EMNLP 2023; METHODS.md §4): D(x; F) = 2 − E_{h~F} δ(x, h).

- ``cosine`` (δ = 1 − cos): exactly D(x_i; F) = 1 + (N x̂_i·m̄ − 1)/(N − 1) for items of F (self
  excluded) and D(y; F) = 1 + ŷ·m̄ for other items, m̄ = mean unit vector of F — O(N·d), no
  distance matrix.
- ``chord`` (δ = √(2(1 − x̂ᵀĥ)) on unit vectors): the square root admits no such identity, so it
  is computed blockwise with BLAS products, O(N·M·d) flops in bounded memory.
- ``spatial``: Serfling's spatial depth D(x; F) = 1 − ‖mean_{h∈F, h≠x} (x − h)/‖x − h‖‖ on the raw
  vectors, blockwise. It is centre-outward, so it keeps its power when F is centred at the origin,
  where cosine depth orders points along a direction that no longer exists.

Test (as the paper): depths of F and G are both taken w.r.t. F, then
``scipy.stats.ranksums(depth_F, depth_G, alternative)``; W is the normal-approximation z of F's rank
sum; with ``greater`` (default) a small p means G is more outlying than F.
Q (Liu & Singh 1993) = P(D_F(X) ≤ D_F(Y)) estimated by (1/n)Σ_j (1/m)#{i: D(x_i) ≤ D(y_j)}
(``q_liu_singh``; 0.5 under H0, < 0.5 when G is shifted or more spread); ``q_package`` is the
tte-depth package's pooled-rank variant (share of pooled ranks strictly below each G rank, divided by
m + n: shrunk toward 0.5). ``effect_size`` is Cliff's delta P(D_F(X) > D_F(Y)) − P(D_F(X) < D_F(Y)),
in [−1, 1], positive when G is more outlying.

The tte-depth 1.0.0 package computes G's depths along the wrong axis when |F| == |G|; geomkit does
not reproduce that bug (the oracle tests include the equal-size case).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata, ranksums

from geomkit.errors import UsageError
from geomkit.report.result import Result
from geomkit.space import as_space

DEPTHS = ("cosine", "chord", "spatial")
WEAK_DIRECTION = 0.1


# ----------------------------------------------------------------------------- statistics
def q_liu_singh(depth_ref: np.ndarray, depth_test: np.ndarray) -> float:
    """(1/n) Σ_j (1/m) #{i: D(x_i) ≤ D(y_j)}."""
    sorted_ref = np.sort(depth_ref)
    return float(np.searchsorted(sorted_ref, depth_test, side="right").mean() / depth_ref.size)


def q_package(depth_ref: np.ndarray, depth_test: np.ndarray) -> float:
    """tte-depth's q_score: mean over G of the share of the m + n pooled (average) ranks strictly
    below each G item's rank."""
    ranks = rankdata(np.concatenate([depth_ref, depth_test]))
    test_ranks = ranks[depth_ref.size:]
    below = np.searchsorted(np.sort(ranks), test_ranks, side="left")
    return float(below.mean() / ranks.size)


def cliffs_delta(depth_ref: np.ndarray, depth_test: np.ndarray) -> float:
    """P(D(X) > D(Y)) − P(D(X) < D(Y)) over all (ref, test) pairs."""
    sorted_ref = np.sort(depth_ref)
    less = np.searchsorted(sorted_ref, depth_test, side="left")  # ref strictly below y
    greater = depth_ref.size - np.searchsorted(sorted_ref, depth_test, side="right")
    return float((greater.sum() - less.sum()) / (depth_ref.size * depth_test.size))


def rank_test(depth_ref: np.ndarray, depth_test: np.ndarray, alternative: str = "greater") -> dict:
    res = ranksums(depth_ref, depth_test, alternative=alternative)
    return {"W": float(res.statistic), "p": float(res.pvalue), "alternative": alternative,
            "q_liu_singh": q_liu_singh(depth_ref, depth_test),
            "q_package": q_package(depth_ref, depth_test),
            "effect_size": cliffs_delta(depth_ref, depth_test)}


# ----------------------------------------------------------------------------- depths
class ProjectionAccumulator:
    """x̂·v for every row of a unit-row pass (cosine depth), in pass order."""

    def __init__(self, vector: np.ndarray):
        self.vector = vector
        self.rows, self.values = [], []

    def fresh(self) -> "ProjectionAccumulator":
        return ProjectionAccumulator(self.vector)

    def consume(self, rows, x):
        self.rows.append(rows.copy())
        self.values.append((x @ self.vector.astype(x.dtype)).astype(np.float64))

    def merge(self, other: "ProjectionAccumulator") -> "ProjectionAccumulator":
        self.rows += other.rows
        self.values += other.values
        return self

    def result(self):
        return np.concatenate(self.rows), np.concatenate(self.values)


def _unit_sum(space, progress: str | None = None) -> tuple[np.ndarray, int]:
    """Σ x̂ and N of a space's rows (its shared row statistics; zero rows refused)."""
    stats = space.products("row_stats", nonzero=True, progress=progress)[0]
    return stats.unit_sum, stats.n


def cosine_depths(query, ref, *, same: bool, ref_unit_sum=None, ref_n=None,
                  progress: str | None = None):
    """Cosine TTE depth of every row of ``query`` w.r.t. ``ref`` in O((N + M)·d)."""
    query, ref = as_space(query), as_space(ref)
    if ref_unit_sum is None:
        ref_unit_sum, ref_n = _unit_sum(ref)
    acc = ProjectionAccumulator(ref_unit_sum / ref_n)
    query.run(acc, unit=True, progress=progress)
    rows, dots = acc.result()
    if same:
        depth = 1.0 + (ref_n * dots - 1.0) / (ref_n - 1.0)
    else:
        depth = 1.0 + dots
    return rows, depth


def _pair_block_rows(source, extra_width: int = 0) -> int:
    """Rows per side of a query × reference block: three float64 b×b matrices within the budget."""
    side = int(np.sqrt(source.memory / (8 * 3)))
    return max(64, min(side, source.block_rows(copies=2 + extra_width)))


class PairwiseDepthAccumulator:
    """Chord or spatial depth of every row of a query pass w.r.t. all rows of ``ref`` (a
    source), each query block against the reference in blocks within the memory budget."""

    def __init__(self, ref, kind: str, same: bool, n_ref: int):
        self.ref, self.kind, self.same, self.n_ref = ref, kind, same, n_ref
        self.rows, self.depths = [], []

    def fresh(self) -> "PairwiseDepthAccumulator":
        return PairwiseDepthAccumulator(self.ref, self.kind, self.same, self.n_ref)

    def merge(self, other: "PairwiseDepthAccumulator") -> "PairwiseDepthAccumulator":
        self.rows += other.rows
        self.depths += other.depths
        return self

    def consume(self, rows, x):
        step = _pair_block_rows(self.ref)
        for a in range(0, rows.size, step):
            self._block(rows[a:a + step].copy(), x[a:a + step])

    def _block(self, q_rows, q):
        unit = self.kind == "chord"
        q_sq = np.einsum("ij,ij->i", q, q, dtype=np.float64)
        dist_sum = np.zeros(q.shape[0])
        weight_sum = np.zeros(q.shape[0])
        weighted = np.zeros((q.shape[0], q.shape[1]))
        for rb in self.ref.blocks(unit=unit, block_rows=_pair_block_rows(self.ref)):
            r = rb.x
            gram = (q @ r.T).astype(np.float64)
            if unit:
                sq = np.clip(2.0 - 2.0 * gram, 0.0, None)
            else:
                r_sq = np.einsum("ij,ij->i", r, r, dtype=np.float64)
                sq = np.clip(q_sq[:, None] + r_sq[None, :] - 2.0 * gram, 0.0, None)
            dist = np.sqrt(sq)
            if self.same:  # exclude each item itself (by row index, not by distance)
                qi, ri = _common_positions(q_rows, rb.rows)
                dist[qi, ri] = 0.0
            if unit:
                dist_sum += dist.sum(axis=1)
            else:
                w = np.divide(1.0, dist, out=np.zeros_like(dist), where=dist > 0)
                weight_sum += w.sum(axis=1)
                weighted += w @ r.astype(np.float64)
        count = self.n_ref - 1 if self.same else self.n_ref
        if unit:
            depth = 2.0 - dist_sum / count
        else:
            direction = q.astype(np.float64) * weight_sum[:, None] - weighted
            depth = 1.0 - np.linalg.norm(direction, axis=1) / count
        self.rows.append(q_rows)
        self.depths.append(depth)

    def result(self):
        return np.concatenate(self.rows), np.concatenate(self.depths)


def pairwise_depths(query, ref, kind: str, *, same: bool, progress: str | None = None):
    """Chord or spatial depth of every row of ``query`` w.r.t. ``ref``, blockwise."""
    query, ref = as_space(query), as_space(ref)
    acc = PairwiseDepthAccumulator(ref.source, kind, same, ref.n)
    query.run(acc, unit=kind == "chord", progress=progress)
    return acc.result()


def _common_positions(a: np.ndarray, b: np.ndarray):
    common, ia, ib = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    return ia, ib


def depths(query, ref, kind: str, *, same: bool, progress: str | None = None):
    if kind == "cosine":
        return cosine_depths(query, ref, same=same, progress=progress)
    if kind in ("chord", "spatial"):
        return pairwise_depths(query, ref, kind, same=same, progress=progress)
    raise UsageError(f"unknown depth '{kind}'; choose one of {', '.join(DEPTHS)}.")


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class DepthResult(Result):
    depth: str
    n_ref: int
    n_test: int | None
    mean_depth_ref: float
    mean_depth_test: float | None
    test: dict
    ref_mean_direction_norm: float
    ref_label: str = ""
    test_label: str | None = None
    ref_rows: np.ndarray = field(repr=False, default=None)
    ref_depth: np.ndarray = field(repr=False, default=None)
    test_rows: np.ndarray = field(repr=False, default=None)
    test_depth: np.ndarray = field(repr=False, default=None)
    ref_meta: object = field(repr=False, default=None)
    test_meta: object = field(repr=False, default=None)
    dd: dict | None = field(repr=False, default=None)  # depths w.r.t. TEST for the DD-plot
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "depth"

    @property
    def title(self):
        vs = f" vs {self.test_label}" if self.test_label else ""
        return f"geomkit depth ({self.depth}) {self.ref_label}{vs}"

    def to_dict(self) -> dict:
        keys = ("W", "p", "alternative", "q_liu_singh", "q_package", "effect_size")
        out = {"depth": self.depth, "n_ref": self.n_ref, "n_test": self.n_test,
               "mean_depth_ref": self.mean_depth_ref, "mean_depth_test": self.mean_depth_test}
        out.update({k: self.test.get(k) for k in keys})
        out["ref_mean_direction_norm"] = self.ref_mean_direction_norm
        out["weak_mean_direction"] = bool(self.ref_mean_direction_norm < WEAK_DIRECTION)
        out["n_dropped"] = self.n_dropped
        out["n_dropped_zero"] = self.n_dropped_zero
        return out

    def _frame(self, which: str):
        import pandas as pd
        rows = self.ref_rows if which == "ref" else self.test_rows
        depth = self.ref_depth if which == "ref" else self.test_depth
        meta = self.ref_meta if which == "ref" else self.test_meta
        frame = pd.DataFrame({"corpus": which, "row": rows, "depth": depth})
        if meta is not None and meta.ids is not None:
            frame["id"] = meta.ids[rows]
        if meta is not None and meta.texts is not None:
            frame["text"] = meta.texts[rows]
        return frame

    def per_item(self):
        import pandas as pd
        frames = [self._frame("ref")]
        if self.test_depth is not None:
            frames.append(self._frame("test"))
        return pd.concat(frames, ignore_index=True)


def compute_depth(ref, test=None, *, depth: str = "cosine", alternative: str = "greater",
                  dd: bool = False, progress: str | None = None) -> DepthResult:
    """Depths of REF items w.r.t. REF (self excluded) and, with ``test``, of TEST items w.r.t.
    REF and the rank-sum test (REF and TEST: :class:`geomkit.Space` or sources). ``dd=True``
    also computes depths w.r.t. TEST for a DD-plot. ``progress``: a label for the passes' bars."""

    def stage(what):
        return progress and f"{progress}: {what}"

    if depth not in DEPTHS:
        raise UsageError(f"unknown depth '{depth}'; choose one of {', '.join(DEPTHS)}.")
    if alternative not in ("greater", "less", "two-sided"):
        raise UsageError(f"alternative '{alternative}' is not one of greater, less, two-sided.")
    ref = as_space(ref)
    test = None if test is None else as_space(test)
    if test is not None and test.d != ref.d:
        raise UsageError(f"{ref.label} has {ref.d} dimensions but {test.label} has {test.d}.")
    if depth == "spatial":  # centre-outward on raw vectors: a zero row is a point like any other
        stats = ref.row_stats(progress=stage("REF statistics"))
        unit_sum, n_ref = stats.unit_sum, stats.n
    else:
        unit_sum, n_ref = _unit_sum(ref, progress=stage("REF statistics"))
    direction_norm = float(np.linalg.norm(unit_sum / n_ref))
    if depth == "cosine":
        ref_rows, ref_depth = cosine_depths(ref, ref, same=True, ref_unit_sum=unit_sum, ref_n=n_ref,
                                            progress=stage("REF"))
    else:
        ref_rows, ref_depth = pairwise_depths(ref, ref, depth, same=True, progress=stage("REF"))
    fields = {}
    if test is not None:
        if depth == "cosine":
            test_rows, test_depth = cosine_depths(test, ref, same=False, ref_unit_sum=unit_sum,
                                                  ref_n=n_ref, progress=stage("TEST"))
        else:
            test_rows, test_depth = pairwise_depths(test, ref, depth, same=False,
                                                    progress=stage("TEST"))
        fields = dict(n_test=int(test_depth.size), mean_depth_test=float(test_depth.mean()),
                      test=rank_test(ref_depth, test_depth, alternative), test_label=test.label,
                      test_rows=test_rows, test_depth=test_depth, test_meta=test.metadata)
        if dd:
            _, ref_wrt_test = depths(ref, test, depth, same=False, progress=stage("REF vs TEST"))
            _, test_wrt_test = depths(test, test, depth, same=True, progress=stage("TEST vs TEST"))
            fields["dd"] = {"ref": ref_wrt_test, "test": test_wrt_test}
    spaces = [ref] + ([test] if test is not None else [])
    return DepthResult(depth=depth, n_ref=int(ref_depth.size), n_test=fields.pop("n_test", None),
                       mean_depth_ref=float(ref_depth.mean()),
                       mean_depth_test=fields.pop("mean_depth_test", None),
                       test=fields.pop("test", {}), ref_mean_direction_norm=direction_norm,
                       ref_label=ref.label, ref_rows=ref_rows, ref_depth=ref_depth,
                       ref_meta=ref.metadata, n_dropped=sum(s.n_dropped for s in spaces),
                       n_dropped_zero=sum(s.n_dropped_zero for s in spaces), **fields)
