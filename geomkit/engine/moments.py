"""Streaming mean and covariance (and row statistics) in float64, one pass over row blocks.

Each block is centred on its own mean and its scatter matrix formed with one BLAS product in the
block's dtype (float32 for float16/32 dumps: XᵀX is the expensive part, and a block-centred product
loses nothing that matters); blocks are combined with Chan et al.'s pairwise update in float64,
which stays accurate when the mean is large compared with the spread (no E[xxᵀ] − μμᵀ cancellation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Moments:
    """n rows, their mean, and the centred scatter matrix M2 = Σ (x − μ)(x − μ)ᵀ (float64)."""

    n: int
    mean: np.ndarray
    scatter: np.ndarray | None

    def cov(self, ddof: int = 1) -> np.ndarray:
        """Sample covariance (ddof=1 by default, as IsoScore and BERT-whitening use)."""
        return self.scatter / (self.n - ddof)

    def second_moment(self) -> np.ndarray:
        """Uncentred second moment XᵀX / n."""
        return self.scatter / self.n + np.outer(self.mean, self.mean)


class MomentAccumulator:
    """Mergeable accumulator of n, mean and scatter (Chan, Golub & LeVeque 1979).

    Each block is centred on its own mean (no cancellation, whatever the offset or the order of
    the rows) and its scatter (BLAS syrk) added into a d×d buffer in the data's dtype. Every
    ``flush_rows`` rows the group is folded into the float64 totals: the summed within-block
    scatter plus the between-block term Σ n_b (m_b − m_g)(m_b − m_g)ᵀ from the stored block means
    (one small product), then combined pairwise with the running totals. So the per-block work
    is one column-sum product, the centring, the syrk and a d×d add in the data's dtype.
    """

    flush_rows = 1 << 16

    def __init__(self, *, scatter: bool = True):
        self.n = 0
        self.want_scatter = scatter
        self.mean = None
        self.m2 = None
        self._group = []  # (n_b, mean_b) of the blocks in the open group
        self._group_rows = 0

    def consume(self, rows: np.ndarray, x: np.ndarray) -> None:
        self.update(x)

    def __getstate__(self):  # scratch buffers never travel (Dask pickles accumulators)
        self._fold()
        state = dict(self.__dict__)
        for key in ("_buf", "_acc"):
            state.pop(key, None)
        return state

    def _buffer(self, x: np.ndarray) -> np.ndarray:
        buf = getattr(self, "_buf", None)
        if buf is None or buf.dtype != x.dtype or buf.shape[1] != x.shape[1] or buf.shape[0] < x.shape[0]:
            buf = self._buf = np.empty_like(x)
        return buf[:x.shape[0]]

    def update(self, x: np.ndarray) -> "MomentAccumulator":
        nb = x.shape[0]
        if nb == 0:
            return self
        # column sums as one matrix-vector product in the block's dtype (float64 across blocks)
        mean_b = (np.ones(nb, dtype=x.dtype) @ x).astype(np.float64) / nb
        if self.want_scatter:
            acc = getattr(self, "_acc", None)
            if acc is None or acc.dtype != x.dtype or acc.shape[1] != x.shape[1]:
                self._fold()
                # [0]: the group's summed scatter, [1]: the current block's (matmul output)
                acc = self._acc = np.zeros((2, x.shape[1], x.shape[1]), dtype=x.dtype)
            buf = self._buffer(x)
            np.subtract(x, mean_b.astype(x.dtype), out=buf)  # reused buffer: no fresh pages
            # numpy runs bufᵀ·buf as a syrk (its own BLAS: a second BLAS library's spinning
            # threads would fight numpy's for the cores)
            np.matmul(buf.T, buf, out=acc[1])
            acc[0] += acc[1]
        self._group.append((nb, mean_b))
        self._group_rows += nb
        if self._group_rows >= self.flush_rows:
            self._fold()
        return self

    def _fold(self) -> None:
        """Fold the open group of blocks into (n, mean, m2)."""
        if not self._group:
            return
        counts = np.array([g[0] for g in self._group], dtype=np.float64)
        means = np.stack([g[1] for g in self._group])
        ng = float(counts.sum())
        mean_g = counts @ means / ng
        m2_g = None
        if self.want_scatter:
            dev = (means - mean_g) * np.sqrt(counts)[:, None]
            m2_g = self._acc[0].astype(np.float64) + dev.T @ dev
            self._acc[0] = 0
        self._group, self._group_rows = [], 0
        self._combine(int(ng), mean_g, m2_g)

    def _combine(self, nb: int, mean_b: np.ndarray, m2_b: np.ndarray | None) -> None:
        if self.mean is None:
            self.mean = np.zeros_like(mean_b)
            self.m2 = None if m2_b is None else np.zeros_like(m2_b)
        na = self.n
        n = na + nb
        delta = mean_b - self.mean
        if self.m2 is not None:
            self.m2 += m2_b
            if na:
                self.m2 += np.outer(delta, delta) * (na * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    def merge(self, other: "MomentAccumulator") -> "MomentAccumulator":
        self._fold()
        other._fold()
        if other.n:
            self._combine(other.n, other.mean, other.m2)
        return self

    def result(self) -> Moments:
        self._fold()
        m2 = None if self.m2 is None else (self.m2 + self.m2.T) / 2
        return Moments(self.n, self.mean.copy(), m2)


@dataclass
class RowStats:
    """Per-row norms and the sums every cosine-based measure needs.

    ``unit_sum`` = Σ x̂ (so m̄ = unit_sum / n), ``norm_sum`` = Σ ‖x‖, ``rows``/``norms`` per row.
    """

    n: int
    unit_sum: np.ndarray
    norm_sum: float
    sum: np.ndarray
    rows: np.ndarray
    norms: np.ndarray

    @property
    def mean_unit(self) -> np.ndarray:
        return self.unit_sum / self.n


class RowStatAccumulator:
    def __init__(self):
        self.n = 0
        self.unit_sum = 0.0
        self.sum = 0.0
        self.norm_sum = 0.0
        self.rows: list[np.ndarray] = []
        self.norms: list[np.ndarray] = []

    def consume(self, rows: np.ndarray, x: np.ndarray) -> None:
        self.update(rows, x)

    def update(self, rows: np.ndarray, x: np.ndarray) -> "RowStatAccumulator":
        # squared norms in the block's dtype (a float64 einsum on float32 data is ~6x slower;
        # 768 float32 squares sum to ~1e-6 relative), then float64
        norms = np.sqrt(np.einsum("ij,ij->i", x, x).astype(np.float64))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        # Σ x̂ and Σ x as matrix-vector products (no normalised copy of the block); the block's
        # partial sums are in its dtype, the running sums in float64
        self.unit_sum += (inv.astype(x.dtype) @ x).astype(np.float64)
        self.sum += (np.ones(x.shape[0], dtype=x.dtype) @ x).astype(np.float64)
        self.norm_sum += float(norms.sum())
        self.n += x.shape[0]
        self.rows.append(np.asarray(rows))
        self.norms.append(norms)
        return self

    def merge(self, other: "RowStatAccumulator") -> "RowStatAccumulator":
        self.n += other.n
        self.unit_sum += other.unit_sum
        self.sum += other.sum
        self.norm_sum += other.norm_sum
        self.rows += other.rows
        self.norms += other.norms
        return self

    def result(self) -> RowStats:
        rows = np.concatenate(self.rows) if self.rows else np.empty(0, np.int64)
        norms = np.concatenate(self.norms) if self.norms else np.empty(0)
        return RowStats(self.n, np.array(self.unit_sum, dtype=float), self.norm_sum,
                        np.array(self.sum, dtype=float), rows, norms)


Transform = Callable[[np.ndarray], np.ndarray]


def run_pass(source, *consumers, transform: Transform | None = None, unit: bool = False,
             dtype=None, progress: str | None = None) -> None:
    """One pass over a source's blocks, feeding every consumer ``consume(rows, x)``.

    Fuse what an analysis needs into one pass: ``run_pass(src, moments, rowstats)``. Consumers
    must not keep ``x``: blocks are read into one reused buffer.
    """
    for blk in source.blocks(unit=unit, dtype=dtype, progress=progress, reuse=True):
        x = transform(blk.x) if transform is not None else blk.x
        for consumer in consumers:
            consumer.consume(blk.rows, x)


def streaming_moments(source, *, transform: Transform | None = None, scatter: bool = True,
                      progress: str | None = None) -> Moments:
    """Mean and scatter of a source's rows (optionally after ``transform``) in one pass."""
    acc = MomentAccumulator(scatter=scatter)
    run_pass(source, acc, transform=transform, progress=progress)
    return acc.result()


def streaming_row_stats(source, *, transform: Transform | None = None,
                        progress: str | None = None) -> RowStats:
    """Norms and unit-vector sums of a source's rows in one pass."""
    acc = RowStatAccumulator()
    run_pass(source, acc, transform=transform, progress=progress)
    return acc.result()


def eigh_descending(sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, negatives from round-off clipped to 0) and eigenvectors (columns)."""
    values, vectors = np.linalg.eigh(sym)
    order = np.argsort(values)[::-1]
    return np.clip(values[order], 0.0, None), vectors[:, order]
