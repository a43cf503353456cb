"""How alike are two spaces of the same items? (METHODS.md §7; Kornblith et al. 2019, Huh et al.
2024 "The Platonic Representation Hypothesis", minyoungg/platonic-rep.)

Items are paired by ids (the default when both inputs have ids; unmatched ids are counted) or by
row order. Dimensions may differ.

- ``cka_linear`` — linear CKA with centred features (Gretton's biased HSIC):
  ‖XcᵀYc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F); the reference's ``cka`` without its +1e-6.
- ``cka_unbiased`` — CKA from the unbiased HSIC of Song et al. (2012) on the linear kernels
  K = XXᵀ, L = YYᵀ (diagonals zeroed): every term from d×d cross-products, column sums and row
  norms — tr(K̃L̃) = ‖XᵀY‖²_F − Σ‖xᵢ‖²‖yᵢ‖², 1ᵀK̃1 = ‖Σx‖² − Σ‖x‖², (K̃1)ᵢ = xᵢ·Σx − ‖xᵢ‖² — so
  no N×N kernel is built. Both CKAs stream over paired row blocks (one pass).
- ``mutual_knn`` — mean over items of |N_k^X(i) ∩ N_k^Y(i)| / k (cosine neighbours, self
  excluded: the reference's values on L2-normalised inputs); ``knn_jaccard`` per item
  |∩| / |∪|, its mean ``knn_jaccard_mean``.
- ``cknna`` — CKA restricted to each item's k nearest neighbours in both spaces (the reference's
  default: mask = k-NN in X and in Y, row-wise; unbiased HSIC of the masked cosine kernels).
- ``cycle_knn`` — share of items i that are among the X-neighbours of some Y-neighbour of i.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geomkit.errors import InputError, UsageError
from geomkit.report.result import Result
from geomkit.space import as_space


# ----------------------------------------------------------------------------- pairing
def pair_rows(a, b, pairs: str = "auto"):
    """``(rows of A, rows of B, unmatched A, unmatched B, how)``: paired original rows."""
    ids_a, ids_b = a.metadata.ids, b.metadata.ids
    if pairs == "auto":
        pairs = "ids" if ids_a is not None and ids_b is not None else "rows"
    ra, rb = a.rows, b.rows
    if pairs == "rows":
        if ra.size != rb.size:
            raise InputError(f"{a.label} has {ra.size} rows and {b.label} {rb.size}; pairing by "
                             f"row order needs the same number (pair by ids instead).")
        return ra, rb, 0, 0, "rows"
    if ids_a is None or ids_b is None:
        raise UsageError("pairing by ids needs an ids dataset in both inputs.")
    pos_b = {str(v): int(r) for r, v in zip(rb, ids_b[rb])}
    keep_a, keep_b = [], []
    for r in ra:
        j = pos_b.get(str(ids_a[r]))
        if j is not None:
            keep_a.append(int(r))
            keep_b.append(j)
    if len(keep_a) < 3:
        raise InputError(f"{a.label} and {b.label} share {len(keep_a)} ids; at least 3 paired "
                         f"items are needed.")
    return (np.asarray(keep_a), np.asarray(keep_b), int(ra.size - len(keep_a)),
            int(rb.size - len(keep_a)), "ids")


# ----------------------------------------------------------------------------- CKA, streamed
class PairedCKA:
    """Accumulates what both CKAs need over paired row blocks: XᵀY, XᵀX, YᵀY, Σx, Σy, Σ‖x‖²‖y‖²
    and the row terms of 1ᵀK̃L̃1 (which need Σx and Σy first: a second pass of blocks)."""

    def __init__(self, dx: int, dy: int):
        self.n = 0
        self.xy = np.zeros((dx, dy))
        self.xx = np.zeros((dx, dx))
        self.yy = np.zeros((dy, dy))
        self.sx = np.zeros(dx)
        self.sy = np.zeros(dy)
        self.sq_sq = 0.0
        self.sq_x = 0.0
        self.sq_y = 0.0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        nx, ny = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        self.n += x.shape[0]
        self.xy += x.T @ y
        self.xx += x.T @ x
        self.yy += y.T @ y
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.sq_sq += float(nx @ ny)
        self.sq_x += float(nx @ nx)
        self.sq_y += float(ny @ ny)

    def linear(self) -> float:
        """Gretton's CKA with centred features (d×d products only)."""
        n = self.n
        mx, my = self.sx / n, self.sy / n
        cxy = self.xy - n * np.outer(mx, my)
        cxx = self.xx - n * np.outer(mx, mx)
        cyy = self.yy - n * np.outer(my, my)
        return float((cxy ** 2).sum() / np.sqrt((cxx ** 2).sum() * (cyy ** 2).sum()))


def unbiased_cka(x: np.ndarray, y: np.ndarray, acc: PairedCKA, step: int = 8192) -> float:
    """CKA of Song's unbiased HSIC from the accumulated sums and one more pass of paired row
    blocks for Σᵢ (K̃1)ᵢ(L̃1)ᵢ (needs Σx, Σy)."""
    n = acc.n
    if n < 4:
        return float("nan")
    kx = acc.sx @ acc.sx - np.trace(acc.xx)   # 1ᵀK̃1 = ‖Σx‖² − Σ‖x‖²
    ly = acc.sy @ acc.sy - np.trace(acc.yy)
    tr_kl = (acc.xy ** 2).sum() - acc.sq_sq    # tr(K̃L̃)
    tr_kk = (acc.xx ** 2).sum() - acc.sq_x
    tr_ll = (acc.yy ** 2).sum() - acc.sq_y
    kl_row = kk_row = ll_row = 0.0
    for s in range(0, n, step):
        xb = np.asarray(x[s:s + step], dtype=np.float64)
        yb = np.asarray(y[s:s + step], dtype=np.float64)
        k1 = xb @ acc.sx - np.einsum("ij,ij->i", xb, xb)   # (K̃1)ᵢ
        l1 = yb @ acc.sy - np.einsum("ij,ij->i", yb, yb)
        kl_row += float(k1 @ l1)
        kk_row += float(k1 @ k1)
        ll_row += float(l1 @ l1)

    def hsic(tr, a, b, row):
        return (tr + a * b / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * row) / (n * (n - 3))

    hkl, hkk, hll = hsic(tr_kl, kx, ly, kl_row), hsic(tr_kk, kx, kx, kk_row), hsic(tr_ll, ly, ly, ll_row)
    return float(hkl / np.sqrt(hkk * hll)) if hkk > 0 and hll > 0 else float("nan")


# ----------------------------------------------------------------------------- k-NN metrics
def _hsic_unbiased_sparse(k, l, n):
    """Song's unbiased HSIC of two sparse kernels with zero diagonals (CKNNA's masked kernels)."""
    tr = float(k.multiply(l.T).sum())
    ka, lb = float(k.sum()), float(l.sum())
    row = float(np.asarray(k.sum(0)).ravel() @ np.asarray(l.sum(1)).ravel())
    return (tr + ka * lb / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * row) / (n * (n - 3))


def cknna(ux: np.ndarray, uy: np.ndarray, nx: np.ndarray, ny: np.ndarray) -> float:
    """CKNNA (the reference's default): sim(K, L) / √(sim(K, K)·sim(L, L)), sim = Song's
    unbiased HSIC of the cosine kernels masked to pairs (i, j) with j among i's k nearest in
    both kernels (row-wise); for sim(K, K) that is K's own k-NN."""
    import scipy.sparse as sp

    n, k = nx.shape
    rows = np.repeat(np.arange(n), k)

    def kernel(u, r, c):
        return sp.csr_matrix((np.einsum("ij,ij->i", u[r], u[c]), (r, c)), shape=(n, n))

    both = np.zeros((n, k), dtype=bool)
    for i in range(k):  # is X's i-th neighbour also among Y's neighbours?
        both[:, i] = (ny == nx[:, [i]]).any(1)
    r, c = rows[both.ravel()], nx.ravel()[both.ravel()]
    kl = _hsic_unbiased_sparse(kernel(ux, r, c), kernel(uy, r, c), n)
    kx = kernel(ux, rows, nx.ravel())
    ly = kernel(uy, rows, ny.ravel())
    kk, ll = _hsic_unbiased_sparse(kx, kx, n), _hsic_unbiased_sparse(ly, ly, n)
    return float(kl / np.sqrt(kk * ll)) if kk > 0 and ll > 0 else float("nan")


def knn_overlap(nx: np.ndarray, ny: np.ndarray):
    """Per item: |N_X ∩ N_Y| and the Jaccard |∩| / |∪| of two k-NN lists."""
    k = nx.shape[1]
    inter = np.zeros(nx.shape[0], dtype=np.int64)
    for i in range(k):
        inter += (ny == nx[:, [i]]).any(1)
    return inter, inter / (2 * k - inter)


def cycle_knn(nx: np.ndarray, ny: np.ndarray) -> float:
    """Share of items i found among the X-neighbours of at least one Y-neighbour of i."""
    n = nx.shape[0]
    hits = (nx[ny] == np.arange(n)[:, None, None]).any(axis=(1, 2))
    return float(hits.mean())


# ----------------------------------------------------------------------------- result
KEYS = ("n", "cka_linear", "cka_unbiased", "cknna", "mutual_knn", "cycle_knn", "k",
        "knn_jaccard_mean")


@dataclass(frozen=True)
class CompareResult(Result):
    n: int
    cka_linear: float
    cka_unbiased: float
    cknna: float
    mutual_knn: float
    cycle_knn: float
    k: int
    knn_jaccard_mean: float
    pairs: str = "rows"
    unmatched: dict = field(default_factory=dict)
    d: dict = field(default_factory=dict)
    rows_a: np.ndarray = field(repr=False, default=None)
    rows_b: np.ndarray = field(repr=False, default=None)
    jaccard: np.ndarray = field(repr=False, default=None)
    shared: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    labels: tuple = ("", "")
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "compare"

    @property
    def title(self):
        return f"geomkit compare {self.labels[0]} vs {self.labels[1]}"

    def to_dict(self):
        out = {k: getattr(self, k) for k in KEYS}
        out.update({"pairs": self.pairs, "unmatched": self.unmatched, "d": self.d,
                    "n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero})
        return out

    def per_item(self):
        import pandas as pd

        frame = pd.DataFrame({"row": self.rows_a, "row_b": self.rows_b,
                              "knn_shared": self.shared, "knn_jaccard": self.jaccard})
        if self.ids is not None:
            frame.insert(1, "id", self.ids)
        return frame


# ----------------------------------------------------------------------------- computation
def compute_compare(a, b, *, k: int = 10, pairs: str = "auto",
                    max_bytes: int = 8 * 2**30) -> CompareResult:
    """How alike spaces ``a`` and ``b`` are on their paired items (see the module docstring)."""
    from geomkit.engine.knn import exact_knn
    from geomkit.engine.rows import unit_rows

    a, b = as_space(a), as_space(b)
    if pairs not in ("auto", "ids", "rows"):
        raise UsageError(f"pairs '{pairs}' is not one of auto, ids, rows.")
    ra, rb, miss_a, miss_b, how = pair_rows(a, b, pairs)
    n = ra.size
    if not 1 <= k < n:
        raise UsageError(f"k = {k} must be between 1 and the {n - 1} other paired items.")
    for space, rows in ((a, ra), (b, rb)):
        need = rows.size * space.d * 8
        if need > max_bytes:
            raise UsageError(f"{space.label}: the {rows.size} x {space.d} paired rows need "
                             f"{need / 2**30:.1f} GiB in memory for the k-NN metrics; use {{sample}}.")
    order_b = np.argsort(rb, kind="stable")
    x = np.asarray(a.read_rows(ra), dtype=np.float64)
    yb = np.asarray(b.read_rows(rb[order_b]), dtype=np.float64)
    y = np.empty_like(yb)
    y[order_b] = yb
    for space, m, rows in ((a, x, ra), (b, y, rb)):
        bad = ~np.isfinite(m).all(1)
        if bad.any():
            raise space.source._nonfinite_error(rows[bad])
        zero = ~(m != 0).any(1)
        if zero.any():
            raise space.source._zero_error(rows[zero])
    acc = PairedCKA(x.shape[1], y.shape[1])
    step = 8192
    for s in range(0, n, step):
        acc.add(x[s:s + step], y[s:s + step])
    ub = unbiased_cka(x, y, acc, step)
    ux, uy = unit_rows(x), unit_rows(y)
    nx = exact_knn(ux, k, metric="cosine").indices
    ny = exact_knn(uy, k, metric="cosine").indices
    shared, jac = knn_overlap(nx, ny)
    meta = a.metadata
    return CompareResult(
        n=int(n), cka_linear=acc.linear(), cka_unbiased=ub, cknna=cknna(ux, uy, nx, ny),
        mutual_knn=float(shared.mean() / k), cycle_knn=cycle_knn(nx, ny), k=k,
        knn_jaccard_mean=float(jac.mean()), pairs=how,
        unmatched={"a": miss_a, "b": miss_b}, d={"a": int(x.shape[1]), "b": int(y.shape[1])},
        rows_a=ra, rows_b=rb, jaccard=jac, shared=shared,
        ids=None if meta.ids is None else meta.ids[ra],
        texts=None if meta.texts is None else meta.texts[ra], labels=(a.label, b.label),
        n_dropped=a.n_dropped + b.n_dropped, n_dropped_zero=a.n_dropped_zero + b.n_dropped_zero)
