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
- ``lcs_knn`` — mean over items of the longest common subsequence of the two *ordered* k-NN
  lists (the reference's value: not divided by k, range 0..k); ``edit_distance_knn`` — 1 − mean
  Levenshtein distance between the ordered lists / k. Both order-sensitive.
- ``similarity_spearman`` — representational similarity analysis (Kriegeskorte et al. 2008): the
  Spearman correlation between the two spaces' pairwise cosine similarities over the pairs of a
  seeded sample of ``rsa_sample`` items (all items when fewer).
- the covariance spectra of both spaces (from the same d×d products), for the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geomkit.engine.pairs import pair_rows, paired_blocks, paired_pass, read_paired
from geomkit.errors import UsageError
from geomkit.report.result import Result
from geomkit.space import as_space


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

    def fresh(self) -> "PairedCKA":
        return PairedCKA(self.sx.size, self.sy.size)

    def merge(self, other: "PairedCKA") -> "PairedCKA":
        for name in ("n", "xy", "xx", "yy", "sx", "sy", "sq_sq", "sq_x", "sq_y"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def spectra(self) -> tuple[np.ndarray, np.ndarray]:
        """Covariance eigenvalues (ddof = 1, descending) of X and of Y."""
        n = self.n
        out = []
        for gram, total in ((self.xx, self.sx), (self.yy, self.sy)):
            cov = (gram - np.outer(total, total) / n) / max(n - 1, 1)
            out.append(np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None))
        return out[0], out[1]

    def linear(self) -> float:
        """Gretton's CKA with centred features (d×d products only)."""
        n = self.n
        mx, my = self.sx / n, self.sy / n
        cxy = self.xy - n * np.outer(mx, my)
        cxx = self.xx - n * np.outer(mx, mx)
        cyy = self.yy - n * np.outer(my, my)
        return float((cxy ** 2).sum() / np.sqrt((cxx ** 2).sum() * (cyy ** 2).sum()))


class RowTerms:
    """Σᵢ (K̃1)ᵢ(L̃1)ᵢ, Σᵢ (K̃1)ᵢ², Σᵢ (L̃1)ᵢ² over paired blocks, given Σx and Σy (the second
    pass of the unbiased CKA); mergeable."""

    def __init__(self, sx: np.ndarray, sy: np.ndarray):
        self.sx, self.sy = sx, sy
        self.kl = self.kk = self.ll = 0.0

    def add(self, xb, yb) -> None:
        xb = np.asarray(xb, dtype=np.float64)
        yb = np.asarray(yb, dtype=np.float64)
        k1 = xb @ self.sx - np.einsum("ij,ij->i", xb, xb)   # (K̃1)ᵢ
        l1 = yb @ self.sy - np.einsum("ij,ij->i", yb, yb)
        self.kl += float(k1 @ l1)
        self.kk += float(k1 @ k1)
        self.ll += float(l1 @ l1)

    def fresh(self) -> "RowTerms":
        return RowTerms(self.sx, self.sy)

    def merge(self, other: "RowTerms") -> "RowTerms":
        self.kl += other.kl
        self.kk += other.kk
        self.ll += other.ll
        return self


def unbiased_cka(acc: PairedCKA, blocks) -> float:
    """CKA of Song's unbiased HSIC from the accumulated sums and one more pass over ``blocks``
    (an iterable of paired ``(x, y)`` row blocks, the same rows as ``acc``'s) for
    Σᵢ (K̃1)ᵢ(L̃1)ᵢ (needs Σx, Σy) — or the :class:`RowTerms` of that pass."""
    n = acc.n
    if n < 4:
        return float("nan")
    kx = acc.sx @ acc.sx - np.trace(acc.xx)   # 1ᵀK̃1 = ‖Σx‖² − Σ‖x‖²
    ly = acc.sy @ acc.sy - np.trace(acc.yy)
    tr_kl = (acc.xy ** 2).sum() - acc.sq_sq    # tr(K̃L̃)
    tr_kk = (acc.xx ** 2).sum() - acc.sq_x
    tr_ll = (acc.yy ** 2).sum() - acc.sq_y
    if isinstance(blocks, RowTerms):
        rt = blocks
    else:
        rt = RowTerms(acc.sx, acc.sy)
        for xb, yb in blocks:
            rt.add(xb, yb)
    kl_row, kk_row, ll_row = rt.kl, rt.kk, rt.ll

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
        # the pairs' dot products in chunks: u[r], u[c] whole would be n·k rows each
        dots = np.concatenate([np.einsum("ij,ij->i", u[r[s:s + 8192]], u[c[s:s + 8192]])
                               for s in range(0, r.size, 8192)] or [np.zeros(0)])
        return sp.csr_matrix((dots, (r, c)), shape=(n, n))

    both = np.zeros((n, k), dtype=bool)
    for i in range(k):  # is X's i-th neighbour also among Y's neighbours?
        both[:, i] = (ny == nx[:, [i]]).any(1)
    r, c = rows[both.ravel()], nx.ravel()[both.ravel()]
    kl = _hsic_unbiased_sparse(kernel(ux, r, c), kernel(uy, r, c), n)
    kx = kernel(ux, rows, nx.ravel())
    ly = kernel(uy, rows, ny.ravel())
    kk, ll = _hsic_unbiased_sparse(kx, kx, n), _hsic_unbiased_sparse(ly, ly, n)
    return float(kl / np.sqrt(kk * ll)) if kk > 0 and ll > 0 else float("nan")


def _pair_lookup(rows: np.ndarray, cols: np.ndarray, n: int):
    """Sorted keys i·n + j of directed pairs, and a function giving, for pairs (a, b), the
    position of pair (b, a) among them (−1 where absent)."""
    keys = rows.astype(np.int64) * n + cols
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]

    def reverse(a, b):
        want = b.astype(np.int64) * n + a
        at = np.minimum(np.searchsorted(sorted_keys, want), max(sorted_keys.size - 1, 0))
        hit = sorted_keys[at] == want if sorted_keys.size else np.zeros(want.size, bool)
        return np.where(hit, order[at], -1)

    return reverse


def _hsic_unbiased_pairs(rows, cols, kv, lv, n):
    """Song's unbiased HSIC of two kernels with zero diagonals given on the same directed pairs
    (i, j) (values ``kv``, ``lv``; every other entry 0): as :func:`_hsic_unbiased_sparse`."""
    rev = _pair_lookup(rows, cols, n)
    tr = 0.0
    for s in range(0, rows.size, 1 << 22):  # tr(K Lᵀ)... = Σ k_ij l_ji, in chunks
        back = rev(rows[s:s + (1 << 22)], cols[s:s + (1 << 22)])
        hit = back >= 0
        tr += float(kv[s:s + (1 << 22)][hit] @ lv[back[hit]])
    ka, lb = float(kv.sum()), float(lv.sum())
    col_k = np.bincount(cols, weights=kv, minlength=n)
    row_l = np.bincount(rows, weights=lv, minlength=n)
    row = float(col_k @ row_l)
    return (tr + ka * lb / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * row) / (n * (n - 3))


def cknna_from_lists(nx: np.ndarray, sx: np.ndarray, ny: np.ndarray, sy: np.ndarray) -> float:
    """CKNNA as :func:`cknna` from the searches themselves: ``nx``/``ny`` each item's k nearest
    in X and in Y, ``sx``/``sy`` their cosine similarities. The masked kernels only hold pairs
    (i, j) with j in i's lists, whose kernel values are exactly what the searches returned: K on
    X's list, L on Y's, both on the pairs in both lists (no vector is read again)."""
    n, k = nx.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    kx = sx.astype(np.float64).ravel()
    ly = sy.astype(np.float64).ravel()
    # pairs in both lists: X's i-th neighbour found in Y's list, and Y's similarity for it
    both = np.zeros((n, k), dtype=bool)
    l_on_x = np.zeros((n, k))
    for a in range(k):
        eq = ny == nx[:, [a]]
        both[:, a] = eq.any(1)
        l_on_x[:, a] = np.where(both[:, a], sy[np.arange(n), eq.argmax(1)], 0.0)
    m = both.ravel()
    r, c = rows[m], nx.ravel()[m].astype(np.int64)
    kl = _hsic_unbiased_pairs(r, c, kx[m], l_on_x.ravel()[m], n)
    kk = _hsic_unbiased_pairs(rows, nx.ravel().astype(np.int64), kx, kx, n)
    ll = _hsic_unbiased_pairs(rows, ny.ravel().astype(np.int64), ly, ly, n)
    return float(kl / np.sqrt(kk * ll)) if kk > 0 and ll > 0 else float("nan")


def knn_overlap(nx: np.ndarray, ny: np.ndarray):
    """Per item: |N_X ∩ N_Y| and the Jaccard |∩| / |∪| of two k-NN lists."""
    k = nx.shape[1]
    inter = np.zeros(nx.shape[0], dtype=np.int64)
    for i in range(k):
        inter += (ny == nx[:, [i]]).any(1)
    return inter, inter / (2 * k - inter)


def _in_chunks(fn, nx, ny, rows: int = 65536):
    """``fn`` over items in chunks (its temporaries are O(k²) per item)."""
    if nx.shape[0] <= rows:
        return fn(nx, ny)
    return np.concatenate([fn(nx[s:s + rows], ny[s:s + rows])
                           for s in range(0, nx.shape[0], rows)])


def lcs_lengths(nx: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """Per item: the length of the longest common subsequence of its two ordered k-NN lists
    (dynamic programming over the k × k table, vectorised over the items)."""
    if nx.shape[0] > 65536:
        return _in_chunks(lcs_lengths, nx, ny)
    n, k = nx.shape
    dp = np.zeros((k + 1, k + 1, n), dtype=np.int64)
    for i in range(1, k + 1):
        for j in range(1, k + 1):
            dp[i, j] = np.where(nx[:, i - 1] == ny[:, j - 1], dp[i - 1, j - 1] + 1,
                                np.maximum(dp[i - 1, j], dp[i, j - 1]))
    return dp[k, k]


def edit_distances(nx: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """Per item: the Levenshtein distance between its two ordered k-NN lists (insertions,
    deletions and substitutions of whole neighbours), vectorised over the items."""
    if nx.shape[0] > 65536:
        return _in_chunks(edit_distances, nx, ny)
    n, k = nx.shape
    dp = np.zeros((k + 1, k + 1, n), dtype=np.int64)
    dp[:, 0] = np.arange(k + 1)[:, None]
    dp[0, :] = np.arange(k + 1)[:, None]
    for i in range(1, k + 1):
        for j in range(1, k + 1):
            sub = dp[i - 1, j - 1] + (nx[:, i - 1] != ny[:, j - 1])
            dp[i, j] = np.minimum(sub, np.minimum(dp[i - 1, j], dp[i, j - 1]) + 1)
    return dp[k, k]


def cycle_knn(nx: np.ndarray, ny: np.ndarray) -> float:
    """Share of items i found among the X-neighbours of at least one Y-neighbour of i."""
    n = nx.shape[0]
    hits = 0
    for s in range(0, n, 65536):  # n·k·k neighbours of neighbours: in chunks of items
        part = ny[s:s + 65536]
        hits += int((nx[part] == np.arange(s, s + part.shape[0])[:, None, None]).any(
            axis=(1, 2)).sum())
    return hits / n


def similarity_spearman(ux: np.ndarray, uy: np.ndarray, sample: int, seed: int) -> tuple[float, int]:
    """Spearman correlation of the pairwise cosines of the same items in two spaces (unit rows),
    over the item pairs of a seeded sample of ``sample`` items: ``(rho, items used)``."""
    from scipy.stats import spearmanr

    n = ux.shape[0]
    pick = np.arange(n) if n <= sample else np.sort(
        np.random.default_rng(seed).choice(n, sample, replace=False))
    iu = np.triu_indices(pick.size, 1)
    sx = (ux[pick] @ ux[pick].T)[iu]
    sy = (uy[pick] @ uy[pick].T)[iu]
    if np.ptp(sx) == 0 or np.ptp(sy) == 0:
        return float("nan"), int(pick.size)
    return float(spearmanr(sx, sy).statistic), int(pick.size)


# ----------------------------------------------------------------------------- result
KEYS = ("n", "cka_linear", "cka_unbiased", "cknna", "mutual_knn", "cycle_knn",
        "similarity_spearman", "k", "knn_jaccard_mean")


@dataclass(frozen=True)
class CompareResult(Result):
    n: int
    cka_linear: float
    cka_unbiased: float
    cknna: float
    mutual_knn: float
    cycle_knn: float
    similarity_spearman: float
    lcs_knn: float
    edit_distance_knn: float
    k: int
    knn_jaccard_mean: float
    rsa_sample: int = 0
    knn_items: int = 0
    anchors: dict | None = None
    knn: dict = field(default_factory=lambda: {"exact": True, "a": None, "b": None})
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
    spectrum_a: np.ndarray = field(repr=False, default=None)
    spectrum_b: np.ndarray = field(repr=False, default=None)
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "compare"

    @property
    def title(self):
        return f"geomkit compare {self.labels[0]} vs {self.labels[1]}"

    def to_dict(self):
        out = {k: getattr(self, k) for k in KEYS}
        out.update({"lcs_knn": self.lcs_knn, "edit_distance_knn": self.edit_distance_knn,
                    "rsa_sample": self.rsa_sample, "knn_items": self.knn_items,
                    "anchors": self.anchors,
                    "pairs": self.pairs,
                    "unmatched": self.unmatched, "d": self.d,
                    "n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero,
                    "knn": self.knn})
        return out

    def per_item(self):
        import pandas as pd

        frame = pd.DataFrame({"row": self.rows_a, "row_b": self.rows_b,
                              "knn_shared": self.shared, "knn_jaccard": self.jaccard})
        if self.ids is not None:
            frame.insert(1, "id", self.ids)
        return frame


# ----------------------------------------------------------------------------- computation
def compute_compare(a, b, *, k: int = 10, pairs: str = "auto", rsa_sample: int = 2000,
                    seed: int = 0, knn_items: int = 20000, block_rows: int = 8192,
                    anchors: int | None = None, anchor_ids: list | None = None,
                    nprobe: int | None = None,
                    target_recall: float | None = None) -> CompareResult:
    """How alike spaces ``a`` and ``b`` are on their paired items (see the module docstring).

    Both CKAs and the spectra use every pair, streamed in paired row blocks (two passes; no N×N
    kernel, memory O(d²) — dumps larger than RAM work). The k-NN metrics and the per-item
    overlaps use every pair: exact neighbours in memory up to ``knn_items`` pairs, beyond that
    the approximate neighbours of each space streamed within its memory budget
    (:func:`geomkit.engine.ann.approximate_search`, ``nprobe`` lists per query, or
    tuned to ``target_recall``; recall measured
    per space and reported under ``knn``; CKNNA from the searches' own similarities,
    :func:`cknna_from_lists`). The RSA uses a seeded sample of ``rsa_sample`` items; anchors,
    beyond ``knn_items`` pairs, a seeded sample of ``knn_items`` pairs.

    ``anchors`` (a seeded choice of that many paired items) or ``anchor_ids``: relative
    representations over those parallel anchors, and how well they agree across the spaces
    (:func:`geomkit.analysis.translate.anchor_agreement`, on the other paired items)."""
    from geomkit.engine.knn import exact_knn
    from geomkit.engine.rows import unit_rows

    a, b = as_space(a), as_space(b)
    paired = pair_rows(a, b, pairs)
    n = paired.n
    if not 1 <= k < n:
        raise UsageError(f"k = {k} must be between 1 and the {n - 1} other paired items.")
    for given, marker in ((nprobe, "{nprobe}"), (target_recall, "{target_recall}")):
        if given is not None and n <= knn_items:
            raise UsageError(f"{marker} acts on approximate neighbours, searched beyond "
                             f"{knn_items} pairs; these {n} pairs get exact neighbours.")
    if n > knn_items:
        return _compare_approximate(a, b, paired, k=k, rsa_sample=rsa_sample, seed=seed,
                                    knn_items=knn_items, block_rows=block_rows, anchors=anchors,
                                    anchor_ids=anchor_ids, nprobe=nprobe,
                                    target_recall=target_recall)
    x = np.asarray(read_paired(a, paired.a, nonzero=True), dtype=np.float64)
    y = np.asarray(read_paired(b, paired.b, nonzero=True), dtype=np.float64)

    def blocks():
        return ((x[s:s + block_rows], y[s:s + block_rows]) for s in range(0, n, block_rows))

    acc, ub = _streamed_cka(a, b, paired, block_rows, blocks)
    ux, uy = unit_rows(x), unit_rows(y)
    nx = exact_knn(ux, k, metric="cosine").indices
    ny = exact_knn(uy, k, metric="cosine").indices
    rho, used = similarity_spearman(ux, uy, rsa_sample, seed)
    relative = _anchors(a, paired, ux, uy, anchors, anchor_ids, seed)
    return _result(a, b, paired, acc, ub, nx, ny, k=k, cknna_value=cknna(ux, uy, nx, ny),
                   rho=rho, used=used, relative=relative, knn_items=n,
                   knn={"exact": True, "a": None, "b": None})


def _streamed_cka(a, b, paired, block_rows, blocks):
    """The linear and unbiased CKA accumulators of every pair: over ``blocks()`` here (twice),
    or, with a Dask executor (``--scheduler``), both streaming passes as tasks."""
    acc = PairedCKA(a.d, b.d)
    if a.executor.name == "local":
        for xb, yb in blocks():
            acc.add(xb, yb)
        return acc, unbiased_cka(acc, blocks())
    paired_pass(a, b, paired, [acc], block_rows=block_rows, nonzero=True,
                progress="compare: CKA")
    terms = paired_pass(a, b, paired, [RowTerms(acc.sx, acc.sy)], block_rows=block_rows,
                        nonzero=True, progress="compare: unbiased CKA")[0]
    return acc, unbiased_cka(acc, terms)


def _anchors(a, sub, ux, uy, anchors, anchor_ids, seed):
    if anchors is None and anchor_ids is None:
        return None
    from geomkit.analysis.translate import anchor_agreement, choose_anchors

    meta = a.metadata
    pos = choose_anchors(sub.n, anchors, seed, anchor_ids=anchor_ids, where=a.label,
                         ids=None if meta.ids is None else meta.ids[sub.a])
    rest = np.setdiff1d(np.arange(sub.n), pos)
    return anchor_agreement(ux[rest], uy[rest], ux[pos], uy[pos])


def _result(a, b, paired, acc, ub, nx, ny, *, k, cknna_value, rho, used, relative, knn_items,
            knn) -> CompareResult:
    shared, jac = knn_overlap(nx, ny)
    spec_a, spec_b = acc.spectra()
    meta = a.metadata
    return CompareResult(
        n=int(paired.n), cka_linear=acc.linear(), cka_unbiased=ub, cknna=cknna_value,
        mutual_knn=float(shared.mean() / k), cycle_knn=cycle_knn(nx, ny),
        similarity_spearman=rho, rsa_sample=used, k=k, knn_items=int(knn_items),
        lcs_knn=float(lcs_lengths(nx, ny).mean()),
        edit_distance_knn=float(1.0 - edit_distances(nx, ny).mean() / k),
        knn_jaccard_mean=float(jac.mean()), pairs=paired.how,
        unmatched=paired.unmatched(), d={"a": int(a.d), "b": int(b.d)},
        rows_a=paired.a, rows_b=paired.b, jaccard=jac, shared=shared,
        ids=None if meta.ids is None else meta.ids[paired.a],
        texts=None if meta.texts is None else meta.texts[paired.a], labels=(a.label, b.label),
        spectrum_a=spec_a, spectrum_b=spec_b, anchors=relative, knn=knn,
        n_dropped=a.n_dropped + b.n_dropped, n_dropped_zero=a.n_dropped_zero + b.n_dropped_zero)


def _compare_approximate(a, b, paired, *, k, rsa_sample, seed, knn_items, block_rows, anchors,
                         anchor_ids, nprobe, target_recall=None) -> CompareResult:
    """Every pair: CKAs streamed, approximate neighbours of each space streamed within its
    budget (N×k int32 positions + float32 similarities kept per space: 8·k bytes a pair)."""
    from geomkit.engine.ann import PairFeed, approximate_search
    from geomkit.engine.rows import unit_rows

    n = paired.n
    acc, ub = _streamed_cka(a, b, paired, block_rows, lambda: paired_blocks(
        a, b, paired, block_rows=block_rows, nonzero=True))
    lists, infos = [], {}
    for side, space, rows in (("a", a, paired.a), ("b", b, paired.b)):
        res = approximate_search(PairFeed(space, rows, "cosine", block_rows), k,
                                 memory=space.memory, nprobe=nprobe, target_recall=target_recall,
                                 seed=seed, keep=True,
                                 label=space.label)
        lists.append((res.indices, (1.0 - res.distances.astype(np.float64))))
        infos[side] = res.info
    (nx, sx), (ny, sy) = lists
    # RSA: the seeded sample similarity_spearman would draw, read back
    pick = np.sort(np.random.default_rng(seed).choice(n, rsa_sample, replace=False)) \
        if n > rsa_sample else np.arange(n)
    ux_s = unit_rows(np.asarray(read_paired(a, paired.a[pick], nonzero=True), dtype=np.float64))
    uy_s = unit_rows(np.asarray(read_paired(b, paired.b[pick], nonzero=True), dtype=np.float64))
    rho, used = similarity_spearman(ux_s, uy_s, pick.size, seed)
    relative = None
    if anchors is not None or anchor_ids is not None:  # in memory: a seeded sample of pairs
        sub = paired.take(np.random.default_rng(seed).choice(n, knn_items, replace=False))
        ux = unit_rows(np.asarray(read_paired(a, sub.a, nonzero=True), dtype=np.float64))
        uy = unit_rows(np.asarray(read_paired(b, sub.b, nonzero=True), dtype=np.float64))
        relative = _anchors(a, sub, ux, uy, anchors, anchor_ids, seed)
    return _result(a, b, paired, acc, ub, nx, ny, k=k,
                   cknna_value=cknna_from_lists(nx, sx, ny, sy), rho=rho, used=used,
                   relative=relative, knn_items=n, knn={"exact": False, **infos})
