"""Isotropy / anisotropy of an embedding space (METHODS.md §2).

From one streaming pass (mean, covariance, norms, Σx̂) and a second pass (partition function and
per-item conformity):

- ``isoscore`` — IsoScore (Rudman et al. 2022) of the covariance eigenvalues (ddof = 1).
- ``isoscore_star`` — IsoScore* (Rudman & Eickhoff, ICLR 2024): IsoScore of the eigenvalues of
  (1 − ζ)·C + ζ·C0, C0 = identity or a covariance from a larger dump.
- ``avg_cosine`` — exact mean cosine over all pairs i ≠ j: (‖Σ x̂‖² − N) / (N(N − 1)) (Ethayarajh 2019
  samples pairs; the exact value costs O(N·d)).
- ``partition_isotropy`` — Mu & Viswanath (2018): min_c Z(c) / max_c Z(c), Z(c) = Σ_i exp(cᵀx_i), c over
  ± the eigenvectors of XᵀX (uncentred), evaluated in log space.
- ``effective_rank`` — Roy & Vetterli (2007), exp of the entropy of the normalised singular values
  of the centred matrix; ``effective_rank_uncentred`` the same for the raw matrix.
- ``top_pc_share`` — variance share of the top 1 and top 10 principal components.
- ``mean_norm_ratio`` — ‖mean‖ / mean ‖x‖, the strength of the common direction.
- ``uniformity`` — Wang & Isola (2020), log mean_{i<j} exp(−t‖x̂_i − x̂_j‖²), t = 2; exact over all pairs
  up to ``uniformity_max_n`` rows, else over a seeded random sample of that many rows.
- per item: conformity (Levi & Gilboa) mean_{j≠i} cos(x_i, x_j) = (N x̂_i·m̄ − 1)/(N − 1), and the norm.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from geomkit.engine.rows import row_sums
from geomkit.engine.moments import RowLog, row_numbers, take
from geomkit.errors import UsageError
from geomkit.report.result import Result
from geomkit.space import as_space

DEFAULT_ZETA = 0.2  # IsoScore*'s shrinkage when none is given (Rudman & Eickhoff 2024)
UNIFORMITY_T = 2.0
UNIFORMITY_MAX_N = 10_000
COSINE_BINS = np.linspace(-1.0, 1.0, 101)


# ----------------------------------------------------------------------------- pure formulas
def isoscore_from_eigenvalues(eigenvalues: np.ndarray) -> float:
    """IsoScore of a covariance spectrum (n = number of dimensions), in [0, 1].

    λ̂ = √n·λ/‖λ‖₂; δ = ‖λ̂ − 1‖₂ / √(2(n − √n)); k = (n − δ²(n − √n))²/n; IsoScore = (k − 1)/(n − 1).
    k equal-variance dimensions out of n give exactly (k − 1)/(n − 1).
    """
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    n = lam.size
    if n < 2:
        return float("nan")
    top = lam.max()
    if top > 0:
        lam = lam / top  # scale-free; squares of eigenvalues near 1e160+ would overflow
    norm = np.linalg.norm(lam)
    if norm == 0:
        return float("nan")
    root = np.sqrt(n)
    lam_hat = root * lam / norm
    delta = np.linalg.norm(lam_hat - 1.0) / np.sqrt(2.0 * (n - root))
    k = (n - delta ** 2 * (n - root)) ** 2 / n
    return float((k - 1.0) / (n - 1.0))


def isoscore_of_covariance(cov: np.ndarray) -> float:
    return isoscore_from_eigenvalues(np.linalg.eigvalsh((cov + cov.T) / 2))


def isoscore_star(cov: np.ndarray, zeta: float, c0: np.ndarray | None = None) -> float:
    """IsoScore* : IsoScore of (1 − ζ)·C + ζ·C0 (C0 = identity when None)."""
    c0 = np.eye(cov.shape[0]) if c0 is None else c0
    return isoscore_of_covariance((1.0 - zeta) * cov + zeta * c0)


def effective_rank_from_singular_values(singular: np.ndarray) -> float:
    """exp(H(p)), p_k = σ_k / Σσ (Roy & Vetterli 2007); in [1, d]."""
    s = np.clip(np.asarray(singular, dtype=np.float64), 0.0, None)
    total = s.sum()
    if total == 0:
        return float("nan")
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def avg_cosine_from_unit_sum(unit_sum: np.ndarray, n: int) -> float:
    """Exact mean cosine over all ordered pairs i ≠ j: (‖Σ x̂‖² − N) / (N(N − 1))."""
    return float((unit_sum @ unit_sum - n) / (n * (n - 1)))


# ----------------------------------------------------------------------------- accumulators
class PartitionAccumulator:
    """log Z(±c) = log Σ_i exp(±cᵀx_i) for every column c of ``directions`` (second pass).

    Kept as a running (max, scaled sum) pair per direction, so no exp overflows and each block costs
    one product and two element-wise exps in the block's dtype.
    """

    def __init__(self, directions: np.ndarray):
        self.directions = directions
        m = directions.shape[1]
        self.shift = np.full(2 * m, -np.inf)
        self.total = np.zeros(2 * m)

    def fresh(self) -> "PartitionAccumulator":
        return PartitionAccumulator(self.directions)

    def merge(self, other: "PartitionAccumulator") -> "PartitionAccumulator":
        self._add(other.shift, other.total)
        return self

    def _add(self, shift: np.ndarray, sums: np.ndarray) -> None:
        new_shift = np.maximum(self.shift, shift)
        with np.errstate(invalid="ignore"):  # -inf - -inf: a side with nothing added yet
            mine = np.where(np.isfinite(self.shift), self.total * np.exp(self.shift - new_shift), 0.0)
            theirs = np.where(np.isfinite(shift), sums * np.exp(shift - new_shift), 0.0)
        self.total = mine + theirs
        self.shift = new_shift

    def consume(self, rows, x):
        proj = x @ self.directions.astype(x.dtype)
        hi, lo = proj.max(axis=0), proj.min(axis=0)
        block_shift = np.concatenate([hi, -lo]).astype(np.float64)
        sums = np.concatenate([np.exp(proj - hi).sum(axis=0, dtype=np.float64),
                               np.exp(lo - proj).sum(axis=0, dtype=np.float64)])
        self._add(block_shift, sums)

    @property
    def log_z(self) -> np.ndarray:
        return self.shift + np.log(self.total)

    def result(self) -> float:
        log_z = self.log_z
        return float(np.exp(log_z.min() - log_z.max()))


class ConformityAccumulator:
    """x̂_i · m̄ for every row (second pass, m̄ = mean unit vector from the first pass).

    ``known=(rows, norms)``: the first pass's norms, so that this pass needs no row sums of its own
    (one matrix-vector product per block); rows that do not line up with them are summed here.
    """

    def __init__(self, mean_unit: np.ndarray, known: tuple | None = None):
        self.mean_unit = mean_unit
        self.rows, self.dots = RowLog(), []
        self._known, self._pos = known, 0
        self.takes_sums = known is None  # the pass then hands over the block's row sums

    def fresh(self) -> "ConformityAccumulator":
        """An empty one for one part of a parallel pass (it sums its blocks itself: the
        first pass's norms are aligned with the whole pass, not with a part)."""
        return ConformityAccumulator(self.mean_unit)

    def merge(self, other: "ConformityAccumulator") -> "ConformityAccumulator":
        self.rows.merge(other.rows)
        self.dots += other.dots
        return self

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_known"] = None  # per-row norms never travel to a worker
        return state

    def _norms(self, rows, x, sums):
        if self._known is not None:
            known_rows, known_norms = self._known  # known_rows None: 0..n−1
            end = self._pos + rows.size
            if (np.array_equal(known_rows[self._pos:end], rows) if known_rows is not None else
                    rows.size and rows[0] == self._pos and rows[-1] == end - 1):
                norms, self._pos = known_norms[self._pos:end], end
                return norms
        return (sums if sums is not None else row_sums(x)).norms

    def consume(self, rows, x, sums=None):
        norms = self._norms(rows, x, sums)
        dots = (x @ self.mean_unit.astype(x.dtype)).astype(np.float64)
        self.rows.add(rows)
        self.dots.append(np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0))

    def result(self):
        return self.rows.result(), np.concatenate(self.dots)


def uniformity_and_cosines(unit: np.ndarray, t: float = UNIFORMITY_T, block: int = 2048):
    """Exact uniformity over all pairs i < j of the given unit vectors, blockwise, and the histogram
    of their pairwise cosines (bins ``COSINE_BINS``).

    ‖x̂_i − x̂_j‖² = 2 − 2cos ∈ [0, 4], so every term exp(−t(2 − 2cos)) lies in [e^{−4t}, 1]: a plain
    float64 sum cannot overflow or underflow for t = 2."""
    n = unit.shape[0]
    total = 0.0
    bins = COSINE_BINS.size - 1
    hist = np.zeros(bins, dtype=np.int64)
    for a in range(0, n, block):
        xa = unit[a:a + block]
        for b in range(a, n, block):
            cos = np.clip((xa @ unit[b:b + block].T).astype(np.float64), -1.0, 1.0)
            if b == a:
                cos = cos[np.triu_indices(cos.shape[0], k=1, m=cos.shape[1])]
            total += np.exp(-t * (2.0 - 2.0 * cos)).sum()
            hist += np.bincount(np.minimum(((cos + 1.0) * (bins / 2.0)).astype(np.int64), bins - 1).ravel(),
                                minlength=bins)
    pairs = n * (n - 1) / 2
    return float(np.log(total / pairs)), hist


# ----------------------------------------------------------------------------- result
KEYS = ("n", "d", "isoscore", "isoscore_star", "avg_cosine", "partition_isotropy", "effective_rank",
        "effective_rank_uncentred", "top_pc_share", "mean_norm_ratio", "uniformity")


@dataclass(frozen=True)
class IsotropyResult(Result):
    n: int
    d: int
    isoscore: float
    isoscore_star: float | None
    avg_cosine: float
    partition_isotropy: float
    effective_rank: float
    effective_rank_uncentred: float
    top_pc_share: dict
    mean_norm_ratio: float
    uniformity: float
    # carried for tables, figures and notes (not part of the JSON contract)
    eigenvalues: np.ndarray = field(repr=False, default=None)
    cosine_histogram: np.ndarray = field(repr=False, default=None)
    uniformity_rows: int = 0
    zeta: float | None = None
    c0_label: str | None = None
    n_dropped: int = 0
    n_dropped_zero: int = 0
    rows: np.ndarray = field(repr=False, default=None)  # None: rows 0..n−1 (a full view)
    conformity: np.ndarray = field(repr=False, default=None)
    norms: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    transform: str | None = None
    after: "IsotropyResult | None" = field(repr=False, default=None)
    label: str = ""
    command: str = "isotropy"

    @property
    def title(self):
        return f"geomkit isotropy {self.label}".strip()

    def values(self) -> dict:
        return {k: getattr(self, k) for k in KEYS}

    def to_dict(self) -> dict:
        out = self.values()
        out["n_dropped"] = self.n_dropped
        out["n_dropped_zero"] = self.n_dropped_zero
        if self.after is not None:
            out["after_transform"] = {"transform": self.transform, **self.after.values()}
        return out

    def per_item(self):
        import pandas as pd
        frame = pd.DataFrame({"row": row_numbers(self.rows, self.conformity.size),
                              "conformity": self.conformity, "norm": self.norms})
        if self.ids is not None:
            frame.insert(1, "id", self.ids)
        return frame



# ----------------------------------------------------------------------------- computation
def compute_isotropy(space, *, zeta: float | None = None, c0: np.ndarray | None = None,
                     c0_label: str = "identity", uniformity_max_n: int = UNIFORMITY_MAX_N,
                     seed: int = 0, transform=None, transform_name: str | None = None,
                     progress: str | None = None) -> IsotropyResult:
    """All isotropy measures of ``space`` (a :class:`geomkit.Space`, or a source).

    With ``transform`` (a fitted :class:`geomkit.transforms.Pipeline` or a function of a row
    block), the returned result describes the raw space and ``after`` the transformed one.
    ``zeta`` None: IsoScore* only when N < d, then with ζ = 0.2 (the shrinkage is literal:
    C0 = identity is not rescaled to C).
    """
    space = as_space(space)
    options = dict(zeta=zeta, c0=c0, c0_label=c0_label, uniformity_max_n=uniformity_max_n,
                   seed=seed, progress=progress)
    raw = _compute(space, **options)
    if transform is None:
        return raw
    apply = getattr(transform, "apply", transform)
    after = _compute(space.transformed(apply, transform_name), **options)
    return replace(raw, after=after, transform=transform_name)


def _compute(space, *, zeta, c0, c0_label, uniformity_max_n, seed, progress):
    # cosine measures (avg cosine, conformity, uniformity) are undefined for a zero row
    m, s = space.products("moments", "row_stats", nonzero=True, progress=progress)
    n, d = m.n, m.mean.size
    cov = m.cov()
    lam, _ = space.spectrum()
    second_values, second_vectors = space.spectrum(centred=False)

    iso = isoscore_from_eigenvalues(lam)
    if zeta is None and n < d:
        zeta = DEFAULT_ZETA
    star = None
    if zeta is not None:
        if c0 is not None and c0.shape != cov.shape:
            raise UsageError(f"the IsoScore* target covariance {{c0}} is {c0.shape[0]}-"
                             f"dimensional, the data {d}-dimensional.")
        star = isoscore_star(cov, zeta, c0)

    partition = PartitionAccumulator(second_vectors)
    conformity = ConformityAccumulator(s.mean_unit, known=(s.rows, s.norms))
    space.run(partition, conformity, progress=progress)
    rows, dots = conformity.result()

    unif_rows = min(n, uniformity_max_n)
    uniformity, hist = uniformity_and_cosines(space.unit_sample(unif_rows, seed)[1])

    total = lam.sum()
    mean_norm = s.norm_sum / n
    meta = space.metadata
    return IsotropyResult(
        n=n, d=d, isoscore=iso, isoscore_star=star,
        avg_cosine=avg_cosine_from_unit_sum(s.unit_sum, n),
        partition_isotropy=partition.result(),
        effective_rank=effective_rank_from_singular_values(np.sqrt(lam)),
        effective_rank_uncentred=effective_rank_from_singular_values(np.sqrt(second_values)),
        top_pc_share={"top1": float(lam[0] / total) if total > 0 else None,
                      "top10": float(lam[:10].sum() / total) if total > 0 else None},
        mean_norm_ratio=float(np.linalg.norm(m.mean) / mean_norm) if mean_norm > 0 else None,
        uniformity=uniformity, eigenvalues=lam, cosine_histogram=hist, uniformity_rows=unif_rows,
        zeta=zeta, c0_label=c0_label if zeta is not None else None,
        n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero, rows=rows,
        conformity=(n * dots - 1.0) / (n - 1.0),
        norms=_align(s.rows, s.norms, rows), label=space.label,
        ids=take(meta.ids, rows), texts=take(meta.texts, rows))


def _align(src_rows, values: np.ndarray, rows) -> np.ndarray:
    """values (ordered as src_rows) reordered to follow rows (None: 0..n−1 for either)."""
    if src_rows is None and rows is None:
        return values
    src_rows, rows = row_numbers(src_rows, values.size), row_numbers(rows, values.size)
    if np.array_equal(src_rows, rows):
        return values
    order = np.argsort(src_rows)
    return values[order][np.searchsorted(src_rows[order], rows)]
