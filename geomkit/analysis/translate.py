"""Translate one embedding space into another (METHODS.md §6).

A map sends source vectors into the target space: ``F(x) = pre_S(x) · W + b``, where ``pre_S`` is
the source preprocessing (``unit``, ``center`` steps in the order given; VecMap's default
``unit,center,unit``), fitted on the source training rows. The target side is preprocessed the
same way with its own statistics, and the map is fitted on the preprocessed pairs.

Supervised methods (paired items; one streaming pass over the paired row blocks accumulates
n, Σx, Σy, XᵀY and, except for procrustes, XᵀX):

- ``procrustes``: W = U Vᵀ from the thin SVD of XᵀY, the orthogonal map minimising ‖XW − Y‖_F
  (``scipy.linalg.orthogonal_procrustes`` for equal dimensions). Different dimensions: with
  d_src < d_tgt it is the orthogonal map of the source zero-padded to d_tgt (norms and angles kept);
  with d_src > d_tgt the source is projected onto d_tgt orthonormal directions, then rotated.
- ``lstsq``: W = argmin ‖XW − Y‖_F from the normal equations (the minimum-norm solution when XᵀX
  is singular, as numpy's ``lstsq``).
- ``ridge``: W = (XᵀX + αI)⁻¹ XᵀY.
- ``affine``: least squares with a bias, W from the centred products and b = ȳ − x̄W.

``unsupervised`` uses no pairs (see :func:`fit_unsupervised`): the pairs, when the inputs have them,
only evaluate it.

Evaluation (vec2vec's protocol): every evaluated source item is mapped and its true target ranked
among all evaluated targets — mean cosine to the true target, top-1 / top-10 accuracy and mean rank
(random: (n + 1) / 2) — by cosine (``nn``) or CSLS (Conneau et al. 2018: 2cos(F(x), y) − r_T(F(x))
− r_S(y), r = mean cosine to the 10 nearest of the other side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np

from geomkit.engine.pairs import Pairs, pair_rows, paired_blocks, paired_pass, read_paired
from geomkit.errors import InputError, UsageError
from geomkit.report.result import Result
from geomkit.space import as_space
from geomkit.transforms import Pipeline, Step

METHODS = ("procrustes", "lstsq", "ridge", "affine", "unsupervised")
RETRIEVALS = ("nn", "csls")
K_CSLS = 10
MAP_GROUP = "geomkit_translate"
DEFAULT_NORMALIZE = ("unit", "center", "unit")


# ----------------------------------------------------------------------------- preprocessing
def parse_normalize(text) -> tuple:
    """``"unit,center,unit"`` -> ("unit", "center", "unit"); ``"none"`` -> ()."""
    if isinstance(text, (tuple, list)):
        steps = tuple(text)
    else:
        text = (text or "none").strip()
        steps = () if text == "none" else tuple(s.strip() for s in text.split(","))
    bad = [s for s in steps if s not in ("unit", "center")]
    if bad:
        raise UsageError(f"normalize step {bad[0]!r} is not one of unit, center (or none).")
    return steps


def _pipeline(steps: tuple) -> Pipeline:
    return Pipeline([Step("normalize" if s == "unit" else "center") for s in steps])


def _prepared(space, steps: tuple, rows: np.ndarray, side: str):
    """The fitted preprocessing of ``space`` (fitted on ``rows``) and the space it makes."""
    pipe = _pipeline(steps)
    if not steps:
        return pipe, space
    pipe.fit(space.subset(np.sort(rows), f"{side} training rows"))
    return pipe, space.transformed(pipe.apply_until(label=space.label),
                                   f"preprocessed {','.join(steps)}",
                                   nonzero=pipe.needs_direction)


# ----------------------------------------------------------------------------- the map
@dataclass(frozen=True)
class TranslationMap:
    """A fitted map: ``apply(x) = source.apply(x) @ matrix + bias`` (into the target space after
    the ``target`` preprocessing)."""

    method: str
    matrix: np.ndarray
    bias: np.ndarray
    source: Pipeline
    target: Pipeline
    normalize: tuple = DEFAULT_NORMALIZE
    alpha: float | None = None
    n_train: int = 0
    dims: str = "equal"
    info: dict = field(default_factory=dict)

    @property
    def d_src(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def d_tgt(self) -> int:
        return int(self.matrix.shape[1])

    def pipeline(self) -> Pipeline:
        """Source preprocessing then the linear map, as one :class:`Pipeline` (what
        ``translate apply`` writes, and ``transform --fit-from`` re-applies)."""
        return Pipeline(list(self.source.steps)
                        + [Step("linear", {}, {"matrix": self.matrix, "bias": self.bias})])

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1] != self.d_src:
            raise InputError(f"the map takes {self.d_src}-dimensional vectors, not {x.shape[1]}.")
        return self.pipeline().apply(x)

    def describe(self) -> dict:
        return {"method": self.method, "d_src": self.d_src, "d_tgt": self.d_tgt,
                "normalize": ",".join(self.normalize) or "none", "dims": self.dims,
                "alpha": self.alpha, "n_train": self.n_train}

    # ---------------------------------------------------------------- persistence (HDF5)
    def save(self, path: str) -> None:
        """Write the map file atomically: group /geomkit_translate with attributes (method,
        dimensions, preprocessing, provenance as JSON) and the source pipeline (preprocessing +
        linear step: matrix, bias) and target preprocessing as groups. Never pickle."""
        import h5py

        from geomkit import __version__
        from geomkit.io.writers import atomic_path, jsonable

        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            g = f.create_group(MAP_GROUP)
            g.attrs.update({"kind": "geomkit translation map", "method": self.method,
                            "d_src": self.d_src, "d_tgt": self.d_tgt,
                            "normalize": ",".join(self.normalize) or "none", "dims": self.dims,
                            "n_train": self.n_train, "geomkit_version": __version__,
                            "info": json.dumps(jsonable(self.info))})
            if self.alpha is not None:
                g.attrs["alpha"] = float(self.alpha)
            self.pipeline().save(g.create_group("source"))
            self.target.save(g.create_group("target"))
            g.create_dataset("matrix", data=self.matrix)  # also at the top, for other tools
            g.create_dataset("bias", data=self.bias)

    @classmethod
    def load(cls, path: str) -> "TranslationMap":
        from geomkit.io.source import damaged, open_h5

        where = f"{path}:/{MAP_GROUP}"
        with open_h5(path) as f, damaged(lambda: path):
            g = f.get(MAP_GROUP)
            if g is None or g.attrs.get("kind") != "geomkit translation map":
                raise InputError(f"{path}: is not a translation map written by geomkit translate "
                                 f"fit (no /{MAP_GROUP} group).")
            try:
                source = Pipeline.load(g["source"], f"{where}/source")
                target = Pipeline.load(g["target"], f"{where}/target")
                linear = source.steps.pop()
                matrix = np.asarray(linear.params["matrix"], dtype=np.float64)
                bias = np.asarray(linear.params["bias"], dtype=np.float64)
                attrs = {k: g.attrs[k] for k in g.attrs}
            except (KeyError, IndexError, ValueError, TypeError):
                raise InputError(f"{where}: the map is incomplete (source, target or matrix "
                                 f"missing).") from None
        if (linear.name != "linear" or matrix.ndim != 2 or bias.shape != (matrix.shape[1],)
                or not np.isfinite(matrix).all() or not np.isfinite(bias).all()):
            raise InputError(f"{where}: its matrix and bias are not a finite linear map.")
        normalize = str(attrs.get("normalize", "none"))
        return cls(method=str(attrs.get("method", "")), matrix=matrix, bias=bias, source=source,
                   target=target, normalize=parse_normalize(normalize),
                   alpha=float(attrs["alpha"]) if "alpha" in attrs else None,
                   n_train=int(attrs.get("n_train", 0)), dims=str(attrs.get("dims", "")),
                   info=json.loads(str(attrs.get("info", "{}"))))


# ----------------------------------------------------------------------------- supervised fits
class CrossProducts:
    """n, XᵀY and, where the method needs them, XᵀX (``gram``) and Σx, Σy (``sums``) of paired
    blocks, summed in float64."""

    def __init__(self, dx: int, dy: int, gram: bool = True, sums: bool = True):
        self.n = 0
        self.sx = np.zeros(dx) if sums else None
        self.sy = np.zeros(dy) if sums else None
        self.xy = np.zeros((dx, dy))
        self.xx = np.zeros((dx, dx)) if gram else None

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """A block's products in its compute dtype (float32 for float16/32 dumps, float64 for
        float64 ones: the engine's rule)."""
        dtype = np.result_type(x.dtype, y.dtype, np.float32)
        x = np.asarray(x, dtype=dtype)
        y = np.asarray(y, dtype=dtype)
        self.n += x.shape[0]
        self.xy += x.T @ y
        if self.xx is not None:
            self.xx += x.T @ x
        if self.sx is not None:
            self.sx += x.sum(0, dtype=np.float64)
            self.sy += y.sum(0, dtype=np.float64)

    def fresh(self) -> "CrossProducts":
        return CrossProducts(self.xy.shape[0], self.xy.shape[1], gram=self.xx is not None,
                             sums=self.sx is not None)

    def merge(self, other: "CrossProducts") -> "CrossProducts":
        self.n += other.n
        self.xy += other.xy
        for name in ("xx", "sx", "sy"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def finite(self) -> bool:
        """False once a block held a NaN/Inf: any such value of x makes a row of XᵀY non-finite
        (NaN·v, ±Inf·v and Inf·0 all are), any of y a column — a d×d check per block instead of
        one per value."""
        return bool(np.isfinite(self.xy).all())


def semi_orthogonal(xy: np.ndarray) -> np.ndarray:
    """argmax tr(Wᵀ XᵀY) over W with orthonormal rows or columns: U Vᵀ of the thin SVD."""
    u, _, vt = np.linalg.svd(xy, full_matrices=False)
    return u @ vt


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Minimum-norm solution of gram · W = rhs (gram symmetric positive semi-definite)."""
    import scipy.linalg

    try:
        return scipy.linalg.solve(gram, rhs, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]
    except scipy.linalg.LinAlgWarning:  # pragma: no cover - only when warnings are errors
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]


def solve_map(acc: CrossProducts, method: str, alpha: float | None = None):
    """``(W, b)`` of a supervised method from the accumulated products."""
    dx, dy = acc.xy.shape
    bias = np.zeros(dy)
    if method == "procrustes":
        return semi_orthogonal(acc.xy), bias
    if method == "lstsq":
        return _lstsq(acc.xx, acc.xy), bias
    if method == "ridge":
        return _solve(acc.xx + float(alpha) * np.eye(dx), acc.xy), bias
    if method == "affine":
        mx, my = acc.sx / acc.n, acc.sy / acc.n
        w = _lstsq(acc.xx - acc.n * np.outer(mx, mx), acc.xy - acc.n * np.outer(mx, my))
        return w, my - mx @ w
    raise UsageError(f"method '{method}' is not one of {', '.join(METHODS)}.")


def _lstsq(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Least squares from the normal equations; the minimum-norm solution (numpy's lstsq) when
    the Gram matrix is singular (fewer pairs than dimensions, collinear columns)."""
    w, vecs = np.linalg.eigh(gram)
    keep = w > w.max(initial=0.0) * gram.shape[0] * np.finfo(np.float64).eps
    if keep.all():
        return _solve(gram, rhs)
    v = vecs[:, keep]
    return v @ ((v.T @ rhs) / w[keep][:, None])


def dims_note(method: str, d_src: int, d_tgt: int) -> str:
    if d_src == d_tgt:
        return "equal"
    if method in ("procrustes", "unsupervised"):
        return (f"source zero-padded to {d_tgt} dimensions, then an orthogonal map"
                if d_src < d_tgt else
                f"source projected onto {d_tgt} orthonormal directions, then rotated")
    return f"linear map {d_src} -> {d_tgt}"


# ----------------------------------------------------------------------------- unsupervised
def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _pca_reduce(x: np.ndarray, r: int) -> np.ndarray:
    """The rows' coordinates on their top ``r`` centred principal directions, unit length."""
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return _unit(xc @ vt[:r].T)


def _sorted_similarity(z: np.ndarray, m: int) -> np.ndarray:
    """VecMap's unsupervised descriptors: each row of √(ZZᵀ) sorted (its ``m`` largest values,
    so two sides of different sizes compare), then unit, center, unit. They need no common
    dimension or orientation: an item's sorted similarities to the others."""
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    sim = (u * s) @ u.T
    sim = -np.sort(-sim, axis=1)[:, :m]
    sim = _unit(sim)
    sim -= sim.mean(0)
    return _unit(sim)


def _csls(sims: np.ndarray, k: int = K_CSLS) -> np.ndarray:
    """CSLS scores from a cosine matrix: 2 cos − r_rows − r_cols (r: mean of the k largest)."""
    k_r, k_c = min(k, sims.shape[1]), min(k, sims.shape[0])
    r_rows = -np.partition(-sims, k_r - 1, axis=1)[:, :k_r].mean(1)
    r_cols = -np.partition(-sims, k_c - 1, axis=0)[:k_c].mean(0)
    return 2 * sims - r_rows[:, None] - r_cols[None, :]


def _induce(scores: np.ndarray, keep: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary induction in both directions; ``keep`` < 1 drops each score at random first
    (VecMap's stochastic dictionary induction)."""
    if keep < 1.0:
        scores = np.where(rng.random(scores.shape, dtype=np.float32) < keep, scores, -np.inf)
    fwd = scores.argmax(1)
    bwd = scores.argmax(0)
    src = np.concatenate([np.arange(scores.shape[0]), bwd])
    tgt = np.concatenate([fwd, np.arange(scores.shape[1])])
    return src, tgt


def mutual_pairs(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) that are each other's best match."""
    fwd, bwd = scores.argmax(1), scores.argmax(0)
    i = np.flatnonzero(bwd[fwd] == np.arange(scores.shape[0]))
    return i, fwd[i]


@dataclass(frozen=True)
class Induced:
    """An unsupervised run: the induced pairs (positions in the given source/target sets), the
    forward match of every source item and the label-free confidence numbers."""

    src: np.ndarray
    tgt: np.ndarray
    forward: np.ndarray
    objective: float
    mutual_share: float
    csls_margin: float
    iterations: int
    seed: int


def fit_unsupervised(xs: np.ndarray, xt: np.ndarray, *, seed: int = 0, rank: int = 128,
                     max_iter: int = 200, patience: int = 5, start_keep: float = 0.1) -> Induced:
    """Induce pairs between two sets of (preprocessed) vectors without any correspondence.

    1. Each side is reduced to its top ``rank`` principal directions (unit rows).
    2. Initial dictionary from the sides' own similarity structure: VecMap's sorted √(ZZᵀ) rows,
       matched by CSLS in both directions (no common dimension is needed).
    3. Self-learning: orthogonal Procrustes on the current dictionary, CSLS retrieval in both
       directions, stochastic dictionary induction (each score kept with probability p, p doubled
       whenever the objective — the mean best CSLS score — has not improved for ``patience``
       iterations, until p = 1).
    4. The mutual CSLS best matches at convergence are the induced pairs.

    Confidence without labels: ``mutual_share`` (mutual best matches / the smaller side) and
    ``csls_margin`` (mean gap between each source item's best and second-best CSLS score)."""
    rng = np.random.default_rng(seed)
    r = int(min(rank, xs.shape[1], xt.shape[1], xs.shape[0] - 1, xt.shape[0] - 1))
    zs, zt = _pca_reduce(xs, r), _pca_reduce(xt, r)
    m = min(zs.shape[0], zt.shape[0])
    scores = _csls(_sorted_similarity(zs, m) @ _sorted_similarity(zt, m).T)
    src, tgt = _induce(scores, 1.0, rng)
    keep, best, since, it = start_keep, -np.inf, 0, 0
    for it in range(1, max_iter + 1):
        w = semi_orthogonal(zs[src].T @ zt[tgt])
        scores = _csls(zs @ w @ zt.T)
        objective = float(0.5 * (scores.max(1).mean() + scores.max(0).mean()))
        if objective > best + 1e-6:
            best, since = objective, 0
        else:
            since += 1
            if since >= patience:
                if keep >= 1.0:
                    break
                keep, since = min(1.0, 2 * keep), 0
        src, tgt = _induce(scores, keep, rng)
    i, j = mutual_pairs(scores)
    top2 = -np.partition(-scores, 1, axis=1)[:, :2]
    return Induced(src=i, tgt=j, forward=scores.argmax(1), objective=best,
                   mutual_share=float(i.size / min(scores.shape)),
                   csls_margin=float(np.abs(top2[:, 0] - top2[:, 1]).mean()), iterations=it,
                   seed=seed)


# ----------------------------------------------------------------------------- evaluation
def retrieval_ranks(q: np.ndarray, t: np.ndarray, *, retrieval: str = "csls",
                    memory: int = 256 * 2**20) -> np.ndarray:
    """Rank (1 = best) of ``t[i]`` among all rows of ``t`` for query ``q[i]``, by cosine or CSLS.
    Ties count against the true target (rank = 1 + number of other targets scoring at least as
    high). Products in float32 when both inputs are float32 (the engine's rule), else float64.

    CSLS's r (mean cosine of each query to its 10 nearest targets, of each target to its 10
    nearest queries) comes from the same block products as a first pass (a running top-10 per
    target column), then the ranks from a second: two products of the n × n scores in blocks,
    never the whole matrix."""
    from geomkit.engine.rows import unit_rows

    if retrieval not in RETRIEVALS:
        raise UsageError(f"retrieval '{retrieval}' is not one of {', '.join(RETRIEVALS)}.")
    dtype = np.float32 if q.dtype == t.dtype == np.float32 else np.float64
    uq = unit_rows(np.asarray(q, dtype=np.float64)).astype(dtype)
    ut = unit_rows(np.asarray(t, dtype=np.float64)).astype(dtype)
    n = uq.shape[0]
    b = max(1, min(n, memory // (np.dtype(dtype).itemsize * 3 * max(n, 1))))
    r_q = r_t = None
    if retrieval == "csls":
        k = min(K_CSLS, n)
        r_q = np.empty(n)
        top_t = None
        for s in range(0, n, b):
            sims = uq[s:s + b] @ ut.T
            r_q[s:s + b] = -np.partition(-sims, k - 1, axis=1)[:, :k].mean(1, dtype=np.float64)
            cand = sims if top_t is None else np.vstack([top_t, sims])
            top_t = -np.partition(-cand, k - 1, axis=0)[:k] if cand.shape[0] > k else cand
        r_t = top_t.mean(0, dtype=np.float64)
        r_q, r_t = r_q.astype(dtype), r_t.astype(dtype)
    ranks = np.empty(n, dtype=np.int64)
    for s in range(0, n, b):
        sims = uq[s:s + b] @ ut.T
        if r_q is not None:
            sims = 2 * sims - r_q[s:s + b, None] - r_t[None, :]
        rows = np.arange(sims.shape[0])
        true = sims[rows, s + rows]
        ranks[s:s + b] = (sims >= true[:, None]).sum(1)
    return ranks


def anchor_agreement(xs: np.ndarray, xt: np.ndarray, anchors_s: np.ndarray,
                     anchors_t: np.ndarray, *, memory: int = 256 * 2**20) -> dict:
    """Relative representations (Moschella et al. 2023): every item described by its cosines to
    N parallel anchors, r(x) = (cos(x, a_1), …, cos(x, a_N)), in each space; no map is fitted. How
    well they agree across the spaces: the mean cosine between r_S(x_i) and r_T(y_i), and the
    rank of r_T(y_i) among all items' r_T for the query r_S(x_i) (top-1, top-10, mean rank)."""
    from geomkit.engine.rows import unit_rows

    rs = unit_rows(np.asarray(xs, dtype=np.float64)) @ unit_rows(
        np.asarray(anchors_s, dtype=np.float64)).T
    rt = unit_rows(np.asarray(xt, dtype=np.float64)) @ unit_rows(
        np.asarray(anchors_t, dtype=np.float64)).T
    flat = ~((rs != 0).any(1) & (rt != 0).any(1))
    if flat.any():
        raise InputError(f"{int(flat.sum())} items are orthogonal to every anchor; their "
                         f"relative representation has no direction.")
    cos = np.einsum("ij,ij->i", unit_rows(rs), unit_rows(rt))
    ranks = retrieval_ranks(rs, rt, retrieval="nn", memory=memory)
    return {"anchors": int(anchors_s.shape[0]), "items": int(rs.shape[0]),
            "mean_cosine": float(cos.mean()), "top1": float((ranks == 1).mean()),
            "top10": float((ranks <= 10).mean()), "mean_rank": float(ranks.mean()),
            "random_rank": (rs.shape[0] + 1) / 2}


def choose_anchors(n: int, count: int | None, seed: int, *, ids=None,
                   anchor_ids: list | None = None, where: str = "") -> np.ndarray:
    """Positions (among ``n`` paired items) of the anchors: ``count`` seeded choices, or the
    items whose ``ids`` are listed in ``anchor_ids``."""
    if anchor_ids is not None:
        from geomkit.engine.pairs import positions_of_ids

        chosen = np.unique(positions_of_ids(ids, anchor_ids, where, "anchors (among the paired "
                                                                   "items)"))
    else:
        if count is None or not 1 <= count < n - 1:
            raise UsageError(f"--anchors {count}: needs between 1 and {n - 2} of the {n} paired "
                             f"items (the others are compared).")
        chosen = np.sort(np.random.default_rng(seed).choice(n, count, replace=False))
    if chosen.size >= n - 1:
        raise UsageError(f"{chosen.size} anchors leave fewer than 2 of the {n} paired items to "
                         f"compare.")
    return chosen


def read_anchor_ids(path: str) -> list:
    """One id per line (blank lines skipped)."""
    try:
        with open(path, encoding="utf-8") as fh:
            ids = [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a list of anchor ids ({exc}).") from None
    if not ids:
        raise InputError(f"{path}: lists no anchor ids.")
    return ids


def evaluate_map(tmap: TranslationMap, a, b, pairs: Pairs, *, retrieval: str = "csls",
                 max_items: int = 5000, seed: int = 0, memory: int = 256 * 2**20) -> dict:
    """Mean cosine of F(x_i) to y_i, top-1 / top-10 accuracy and mean rank of y_i among the
    evaluated targets (a seeded sample of ``max_items`` pairs when there are more)."""
    if pairs.n > max_items:
        pairs = pairs.take(np.random.default_rng(seed).choice(pairs.n, max_items, replace=False))
    # retrieval is by cosine: zero input rows are refused (or dropped) as in every cosine measure
    q = tmap.apply(read_paired(a, pairs.a, nonzero=True))
    t = tmap.target.apply(np.asarray(read_paired(b, pairs.b, nonzero=True), dtype=np.float64))
    for what, m in (("mapped source", q), ("target", t)):
        if not (m != 0).any(1).all():
            raise InputError(f"{int((~(m != 0).any(1)).sum())} {what} vectors are zero after "
                             f"the map; cosine retrieval needs a direction.")
    from geomkit.engine.rows import unit_rows

    cos = np.einsum("ij,ij->i", unit_rows(q), unit_rows(t))
    if a.compute_dtype == b.compute_dtype == np.float32:  # float32 dumps: float32 products
        q, t = q.astype(np.float32), t.astype(np.float32)
    ranks = retrieval_ranks(q, t, retrieval=retrieval, memory=memory)
    return {"n_eval": int(pairs.n), "mean_cosine": float(cos.mean()),
            "top1": float((ranks == 1).mean()), "top10": float((ranks <= 10).mean()),
            "mean_rank": float(ranks.mean()), "random_rank": (pairs.n + 1) / 2,
            "retrieval": retrieval, "ranks": ranks, "cosines": cos, "pairs": pairs}


# ----------------------------------------------------------------------------- result
KEYS = ("method", "n_train", "n_test", "d_src", "d_tgt", "mean_cosine", "top1", "top10",
        "mean_rank", "retrieval", "unmatched")


@dataclass(frozen=True)
class TranslateResult(Result):
    method: str
    n_train: int
    n_test: int
    d_src: int
    d_tgt: int
    mean_cosine: float | None
    top1: float | None
    top10: float | None
    mean_rank: float | None
    retrieval: str
    unmatched: dict | None
    evaluated_on: str = "held-out pairs"
    n_eval: int = 0
    random_rank: float | None = None
    normalize: str = "none"
    dims: str = "equal"
    alpha: float | None = None
    pairs: str = "ids"
    pairs_used: bool = True
    confidence: dict | None = None
    anchors: dict | None = None
    map_file: str | None = None
    labels: tuple = ("", "")
    eval_rows_a: np.ndarray = field(repr=False, default=None)
    eval_rows_b: np.ndarray = field(repr=False, default=None)
    ranks: np.ndarray = field(repr=False, default=None)
    cosines: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "translate"

    @property
    def title(self):
        return f"geomkit translate {self.labels[0]} -> {self.labels[1]}"

    def to_dict(self):
        out = {k: getattr(self, k) for k in KEYS}
        out.update({"evaluated_on": self.evaluated_on, "n_eval": self.n_eval,
                    "random_rank": self.random_rank, "normalize": self.normalize,
                    "dims": self.dims, "alpha": self.alpha, "pairs": self.pairs,
                    "pairs_used": self.pairs_used, "confidence": self.confidence,
                    "anchors": self.anchors,
                    "map_file": self.map_file, "n_dropped": self.n_dropped,
                    "n_dropped_zero": self.n_dropped_zero})
        return out

    def per_item(self):
        if self.ranks is None:
            return None
        import pandas as pd

        frame = pd.DataFrame({"row": self.eval_rows_a, "row_b": self.eval_rows_b,
                              "rank": self.ranks, "cosine": self.cosines})
        if self.ids is not None:
            frame.insert(1, "id", self.ids)
        return frame


def _eval_fields(ev: dict | None, a) -> dict:
    if ev is None:
        return {"mean_cosine": None, "top1": None, "top10": None, "mean_rank": None,
                "n_eval": 0, "random_rank": None}
    meta = a.metadata
    p = ev["pairs"]
    return {"mean_cosine": ev["mean_cosine"], "top1": ev["top1"], "top10": ev["top10"],
            "mean_rank": ev["mean_rank"], "n_eval": ev["n_eval"],
            "random_rank": ev["random_rank"], "eval_rows_a": p.a, "eval_rows_b": p.b,
            "ranks": ev["ranks"], "cosines": ev["cosines"],
            "ids": None if meta.ids is None else meta.ids[p.a],
            "texts": None if meta.texts is None else meta.texts[p.a]}


# ----------------------------------------------------------------------------- fitting
def split_pairs(pairs: Pairs, train_fraction: float, seed: int) -> tuple[Pairs, Pairs | None]:
    """Seeded split of the pairs into training and held-out pairs (``train_fraction`` = 1: all
    pairs train, nothing held out)."""
    if not 0 < train_fraction <= 1:
        raise UsageError(f"train fraction {train_fraction} must be in (0, 1].")
    if train_fraction >= 1:
        return pairs, None
    perm = np.random.default_rng(seed).permutation(pairs.n)
    n_train = int(round(train_fraction * pairs.n))
    if n_train < 2 or pairs.n - n_train < 2:
        raise InputError(f"{pairs.n} pairs cannot be split {train_fraction:g} / "
                         f"{1 - train_fraction:g} into at least 2 training and 2 held-out pairs.")
    return pairs.take(perm[:n_train]), pairs.take(perm[n_train:])


def fit_map(a, b, pairs: Pairs | None, *, method: str = "procrustes",
            normalize=DEFAULT_NORMALIZE, alpha: float | None = None, seed: int = 0,
            seeds: int = 1, rank: int = 128, max_items: int = 4000,
            source_rows: np.ndarray | None = None, target_rows: np.ndarray | None = None,
            block_rows: int = 8192) -> TranslationMap:
    """Fit a map from space ``a`` to space ``b``.

    Supervised methods use ``pairs`` (one streaming pass of paired blocks after the preprocessing
    is fitted). ``unsupervised`` never looks at ``pairs``: it takes ``source_rows`` of A and
    ``target_rows`` of B (default: all selected rows; a seeded sample of ``max_items`` of each
    when more), reads each side in its own random order, induces pairs with
    :func:`fit_unsupervised` (``seeds`` runs; the best objective wins, their agreement is
    reported), then fits a Procrustes map on the induced pairs."""
    a, b = as_space(a), as_space(b)
    normalize = parse_normalize(normalize)
    if method not in METHODS:
        raise UsageError(f"method '{method}' is not one of {', '.join(METHODS)}.")
    if method == "ridge" and (alpha is None or alpha < 0):
        raise UsageError("ridge needs --alpha >= 0.")
    if method != "ridge" and alpha is not None:
        raise UsageError("--alpha goes with --method ridge.")
    if method == "unsupervised":
        return _fit_unsupervised_map(a, b, normalize=normalize, seed=seed, seeds=seeds,
                                     rank=rank, max_items=max_items, source_rows=source_rows,
                                     target_rows=target_rows)
    if pairs is None or pairs.n < 2:
        raise InputError(f"{a.label} -> {b.label}: a supervised map needs paired items.")
    pipe_a, pa = _prepared(a, normalize, pairs.a, "source")
    pipe_b, pb = _prepared(b, normalize, pairs.b, "target")
    acc = CrossProducts(a.d, b.d, gram=method != "procrustes", sums=method == "affine")
    todo = pairs
    if a.executor.name != "local":  # --scheduler: the pass as tasks; a bad block found below
        paired_pass(pa, pb, pairs, [acc], block_rows=block_rows, check=False,
                    progress="translate: fit")
        if acc.finite():
            todo = pairs.take(np.arange(0))  # done: nothing left to read here
        else:
            acc = acc.fresh()
    # one pass; a NaN/Inf anywhere in a block shows in XᵀY, and only then is the block read
    # again with the row-by-row check that names the rows
    for s, (x, y) in zip(range(0, todo.n, block_rows),
                         paired_blocks(pa, pb, todo, block_rows=block_rows, check=False)):
        acc.add(x, y)
        if not acc.finite():
            part = pairs.take(np.arange(s, min(s + block_rows, pairs.n)))
            next(paired_blocks(pa, pb, part, block_rows=block_rows))
            raise InputError(f"{a.label} -> {b.label}: non-finite products in pairs {s}.."
                             f"{s + block_rows}.")
    w, bias = solve_map(acc, method, alpha)
    return TranslationMap(method=method, matrix=w, bias=bias, source=pipe_a, target=pipe_b,
                          normalize=normalize, alpha=alpha, n_train=acc.n,
                          dims=dims_note(method, a.d, b.d),
                          info={"source": a.label, "target": b.label, "pairs": pairs.how,
                                "seed": seed})


def _fit_unsupervised_map(a, b, *, normalize, seed, seeds, rank, max_items, source_rows,
                          target_rows) -> TranslationMap:
    rng = np.random.default_rng(seed)
    sides = []
    for space, rows in ((a, source_rows), (b, target_rows)):
        rows = space.rows if rows is None else np.asarray(rows, dtype=np.int64)
        if rows.size > max_items:
            rows = rows[rng.choice(rows.size, max_items, replace=False)]
        if rows.size < 2 * K_CSLS:
            raise InputError(f"{space.label}: {rows.size} rows are too few to induce pairs "
                             f"without supervision (at least {2 * K_CSLS}).")
        sides.append(rng.permutation(np.sort(rows)))  # each side in its own random order
    rs, rt = sides
    pipe_a, pa = _prepared(a, normalize, rs, "source")
    pipe_b, pb = _prepared(b, normalize, rt, "target")
    xs = np.asarray(read_paired(pa, rs), dtype=np.float64)
    xt = np.asarray(read_paired(pb, rt), dtype=np.float64)
    runs = [fit_unsupervised(xs, xt, seed=seed + i, rank=rank) for i in range(seeds)]
    best = max(runs, key=lambda r: r.objective)
    agreement = None
    if len(runs) > 1:
        agree = [float((r1.forward == r2.forward).mean())
                 for i, r1 in enumerate(runs) for r2 in runs[i + 1:]]
        agreement = float(np.mean(agree))
    if best.src.size < 2:
        raise InputError(f"{a.label} -> {b.label}: the unsupervised search found "
                         f"{best.src.size} mutual pairs; no map can be fitted.")
    w = semi_orthogonal(xs[best.src].T @ xt[best.tgt])
    confidence = {"mutual_share": best.mutual_share, "csls_margin": best.csls_margin,
                  "seed_agreement": agreement, "seeds": seeds,
                  "objective": best.objective, "iterations": best.iterations,
                  "n_source": int(rs.size), "n_target": int(rt.size)}
    confidence["verdict"] = verdict(confidence)
    return TranslationMap(method="unsupervised", matrix=w, bias=np.zeros(b.d),
                          source=pipe_a, target=pipe_b, normalize=normalize,
                          n_train=int(best.src.size), dims=dims_note("unsupervised", a.d, b.d),
                          info={"source": a.label, "target": b.label, "pairs": "none (induced)",
                                "seed": seed, "confidence": confidence})


MUTUAL_SHARE_OK = 0.9   # unrelated spaces still give ~0.7 (docs/translate.md)
SEED_AGREEMENT_OK = 0.5  # failed searches agree on < 1% of matches, converged ones on > 99%


def verdict(conf: dict) -> str:
    """A plain reading of the label-free confidence (thresholds measured in docs/translate.md):
    "converged" when most items have a mutual best match and, with several seeds, the runs
    agree on the matches; otherwise "unreliable"."""
    ok = conf["mutual_share"] >= MUTUAL_SHARE_OK
    if conf.get("seed_agreement") is not None:
        ok = ok and conf["seed_agreement"] >= SEED_AGREEMENT_OK
    return "converged" if ok else "unreliable"


def compute_translate_fit(a, b, *, method: str = "procrustes", pairs: str = "auto",
                          normalize=DEFAULT_NORMALIZE, alpha: float | None = None,
                          train_fraction: float = 1.0, seed: int = 0, seeds: int = 1,
                          retrieval: str = "csls", max_eval: int = 5000,
                          rank: int = 128, max_items: int = 4000,
                          anchors: int | None = None, anchor_ids: list | None = None,
                          memory: int = 256 * 2**20) -> tuple[TranslationMap, TranslateResult]:
    """Pair, split, fit and evaluate (``translate fit``). Without held-out pairs the evaluation
    is on the training pairs and says so. ``pairs="none"`` (unsupervised only): the items are
    not known to correspond; nothing is evaluated.

    ``anchors`` / ``anchor_ids``: parallel anchors taken from the training pairs; the relative
    representations over them (no map) are evaluated on the same items as the map, a baseline
    that needs only the anchors."""
    a, b = as_space(a), as_space(b)
    if (anchors is not None or anchor_ids is not None) and method == "unsupervised":
        raise UsageError("anchors are known pairs; --method unsupervised uses none (fit a "
                         "supervised map, or compare the spaces with anchors).")
    if retrieval not in RETRIEVALS:
        raise UsageError(f"retrieval '{retrieval}' is not one of {', '.join(RETRIEVALS)}.")
    if pairs == "none":
        if method != "unsupervised":
            raise UsageError("--pairs none (no known pairs) works only with --method "
                             "unsupervised.")
        paired = train = test = None
    else:
        paired = pair_rows(a, b, pairs, minimum=4)
        train, test = split_pairs(paired, train_fraction, seed)
    if method == "unsupervised":
        tmap = fit_map(a, b, None, method=method, normalize=normalize, seed=seed, seeds=seeds,
                       rank=rank, max_items=max_items,
                       source_rows=None if train is None else train.a,
                       target_rows=None if train is None else train.b)
    else:
        tmap = fit_map(a, b, train, method=method, normalize=normalize, alpha=alpha, seed=seed)
    evaluated = "held-out pairs" if test is not None else (
        "training pairs (in-sample: hold pairs out with --train-fraction)" if train is not None
        else "nothing (no known pairs)")
    if method == "unsupervised" and test is None and train is not None:
        evaluated = "all pairs (none was used to fit)"
    ev_pairs = test if test is not None else train
    ev = None if ev_pairs is None else evaluate_map(tmap, a, b, ev_pairs, retrieval=retrieval,
                                                    max_items=max_eval, seed=seed, memory=memory)
    relative = None
    if ev is not None and (anchors is not None or anchor_ids is not None):
        meta = a.metadata
        pos = choose_anchors(train.n, anchors, seed, anchor_ids=anchor_ids, where=a.label,
                             ids=None if meta.ids is None else meta.ids[train.a])
        held = ev["pairs"]
        items = held.take(np.flatnonzero(~np.isin(held.a, train.a[pos])))
        anchor_pairs = train.take(pos)

        def sides(p):
            return (tmap.source.apply(np.asarray(read_paired(a, p.a, nonzero=True), np.float64)),
                    tmap.target.apply(np.asarray(read_paired(b, p.b, nonzero=True), np.float64)))

        relative = anchor_agreement(*sides(items), *sides(anchor_pairs), memory=memory)
    result = TranslateResult(
        anchors=relative,
        method=method, n_train=tmap.n_train, n_test=0 if test is None else test.n,
        d_src=a.d, d_tgt=b.d, retrieval=retrieval,
        unmatched=None if paired is None else paired.unmatched(), evaluated_on=evaluated,
        normalize=",".join(tmap.normalize) or "none", dims=tmap.dims, alpha=tmap.alpha,
        pairs="none" if paired is None else paired.how, pairs_used=method != "unsupervised",
        confidence=tmap.info.get("confidence"), labels=(a.label, b.label),
        n_dropped=a.n_dropped + b.n_dropped, n_dropped_zero=a.n_dropped_zero + b.n_dropped_zero,
        **_eval_fields(ev, a))
    return tmap, result


def compute_translate_eval(tmap: TranslationMap, a, b, *, pairs: str = "auto",
                           retrieval: str = "csls", max_eval: int = 5000, seed: int = 0,
                           memory: int = 256 * 2**20, map_file: str | None = None
                           ) -> TranslateResult:
    """Evaluate a stored map on the paired items of ``a`` and ``b`` (``translate eval``)."""
    a, b = as_space(a), as_space(b)
    check_dims(tmap, a, map_file or "the map", side="source")
    check_dims(tmap, b, map_file or "the map", side="target")
    paired = pair_rows(a, b, pairs, minimum=2)
    ev = evaluate_map(tmap, a, b, paired, retrieval=retrieval, max_items=max_eval, seed=seed,
                      memory=memory)
    return TranslateResult(
        method=tmap.method, n_train=tmap.n_train, n_test=paired.n, d_src=a.d, d_tgt=b.d,
        retrieval=retrieval, unmatched=paired.unmatched(), evaluated_on="the given pairs",
        normalize=",".join(tmap.normalize) or "none", dims=tmap.dims, alpha=tmap.alpha,
        pairs=paired.how, pairs_used=tmap.method != "unsupervised",
        confidence=tmap.info.get("confidence"), map_file=map_file, labels=(a.label, b.label),
        n_dropped=a.n_dropped + b.n_dropped, n_dropped_zero=a.n_dropped_zero + b.n_dropped_zero,
        **_eval_fields(ev, a))


def check_dims(tmap: TranslationMap, space, where: str, *, side: str) -> None:
    """A map applied to vectors of the wrong dimension is an input error (one sentence)."""
    d = tmap.d_src if side == "source" else tmap.d_tgt
    if space.d != d:
        raise InputError(f"{space.label}: has {space.d}-dimensional vectors, but {where} maps "
                         f"{tmap.d_src} -> {tmap.d_tgt} dimensions (its {side} side is {d}).")


def with_map_file(result: TranslateResult, path: str) -> TranslateResult:
    return replace(result, map_file=path)
