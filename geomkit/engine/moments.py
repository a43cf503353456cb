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

from geomkit.engine.rows import RowSums, centre, column_sums, row_sums


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
    the rows; the mean comes from the block's row sums) into the next rows of a gather buffer of
    about :attr:`gather_bytes`. One BLAS syrk per full buffer adds the within-block scatters to
    a d×d sum in the data's dtype: a few large products run closer to the speed of a single XᵀX
    than one per cache-sized block (about 5% of the pass). Every ``flush_rows`` rows the group
    is folded into the float64 totals: the summed within-block scatter plus the between-block
    term Σ n_b (m_b − m_g)(m_b − m_g)ᵀ from the stored block means (one small product), then
    combined pairwise with the running totals.
    """

    flush_rows = 1 << 16
    gather_bytes = 48 << 20

    def __init__(self, *, scatter: bool = True):
        self.n = 0
        self.want_scatter = scatter
        self.mean = None
        self.m2 = None
        self._group = []  # (n_b, mean_b) of the blocks in the open group
        self._group_rows = 0
        self._filled = 0  # rows of the gather buffer waiting for their syrk
        self._group_scatter = None  # float64 sum of the group's within-block scatters
        self._acc_used = False

    takes_sums = True

    def fresh(self) -> "MomentAccumulator":
        """An empty accumulator of the same kind (one part of a parallel pass)."""
        return MomentAccumulator(scatter=self.want_scatter)

    def consume(self, rows: np.ndarray, x: np.ndarray, sums: RowSums | None = None) -> None:
        self.update(x, sums)

    def __getstate__(self):  # scratch buffers never travel (Dask pickles accumulators)
        self._fold()
        state = dict(self.__dict__)
        for key in ("_buf", "_acc"):
            state.pop(key, None)
        return state

    def _gather_rows(self, x: np.ndarray) -> np.ndarray:
        """The next ``len(x)`` free rows of the gather buffer (syrk of the full part first)."""
        nb, d = x.shape
        buf = getattr(self, "_buf", None)
        if buf is None or buf.dtype != x.dtype or buf.shape[1] != d or buf.shape[0] < nb:
            self._syrk()
            rows = max(nb, self.gather_bytes // (d * x.dtype.itemsize))
            buf = self._buf = np.empty((rows, d), dtype=x.dtype)
        elif self._filled + nb > buf.shape[0]:
            self._syrk()
        part = buf[self._filled:self._filled + nb]
        self._filled += nb
        return part

    def _syrk(self) -> None:
        """Add the scatter of the gathered, block-centred rows to the group's sum."""
        if not self._filled:
            return
        part = self._buf[:self._filled]
        d = part.shape[1]
        acc = getattr(self, "_acc", None)
        if acc is None or acc.dtype != part.dtype or acc.shape[1] != d:
            self._close_group_scatter()
            # [0]: the group's summed scatter, [1]: the latest product (matmul output)
            acc = self._acc = np.zeros((2, d, d), dtype=part.dtype)
        # numpy runs partᵀ·part as a syrk (its own BLAS: a second BLAS library's spinning
        # threads would fight numpy's for the cores)
        np.matmul(part.T, part, out=acc[1])
        acc[0] += acc[1]
        self._acc_used = True
        self._filled = 0

    def _close_group_scatter(self) -> None:
        """Move the d×d sum (the data's dtype) into the group's float64 sum."""
        if self._acc_used:
            total = self._acc[0].astype(np.float64)
            prev = self._group_scatter
            self._group_scatter = total if prev is None else prev + total
            self._acc[0] = 0
            self._acc_used = False

    def update(self, x: np.ndarray, sums: RowSums | None = None) -> "MomentAccumulator":
        """Add a block (``sums``: its row sums when the pass already made them)."""
        nb = x.shape[0]
        if nb == 0:
            return self
        mean_b = (sums.col_sum if sums is not None else column_sums(x)) / nb
        if self.want_scatter:
            # centred straight into the gather buffer (reused: no fresh pages)
            centre(x, mean_b.astype(x.dtype), self._gather_rows(x))
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
            self._syrk()
            self._close_group_scatter()
            dev = (means - mean_g) * np.sqrt(counts)[:, None]
            m2_g = self._group_scatter + dev.T @ dev
            self._group_scatter = None
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

    ``unit_sum`` = Σ x̂ (so m̄ = unit_sum / n), ``norm_sum`` = Σ ‖x‖, ``norms`` per row; ``rows``
    their original indices, or None when they are 0..n−1 (no index array for a full view).
    """

    n: int
    unit_sum: np.ndarray
    norm_sum: float
    sum: np.ndarray
    rows: np.ndarray | None
    norms: np.ndarray

    @property
    def mean_unit(self) -> np.ndarray:
        return self.unit_sum / self.n


class RowLog:
    """The original row indices a pass saw, in order: kept as (start, stop) ranges while the
    blocks are contiguous (a full view: a few numbers for 10⁹ rows), as arrays otherwise.
    :meth:`result` is None when the rows are exactly 0..n−1 (row i is original row i)."""

    def __init__(self):
        self.parts: list = []  # (start, stop) tuples or int64 arrays
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        m = rows.size
        if not m:
            return
        self.n += m
        first, last = int(rows[0]), int(rows[-1])
        if last - first == m - 1 and (m < 3 or bool((np.diff(rows) == 1).all())):
            prev = self.parts[-1] if self.parts else None
            if isinstance(prev, tuple) and prev[1] == first:
                self.parts[-1] = (prev[0], last + 1)
            else:
                self.parts.append((first, last + 1))
        else:
            self.parts.append(rows.astype(np.int64, copy=False))

    def merge(self, other: "RowLog") -> "RowLog":
        for part in other.parts:
            self.add(np.arange(*part) if isinstance(part, tuple) else part)
        return self

    def result(self) -> np.ndarray | None:
        if not self.parts:
            return np.empty(0, np.int64)
        if len(self.parts) == 1 and isinstance(self.parts[0], tuple) and self.parts[0] == (0, self.n):
            return None
        return np.concatenate([np.arange(*p, dtype=np.int64) if isinstance(p, tuple) else p
                               for p in self.parts])


def take(values, rows):
    """``values[rows]``, where ``rows`` None means every row in order (:class:`RowLog`)."""
    return values if values is None or rows is None else values[rows]


def row_numbers(rows, n: int) -> np.ndarray:
    """The original row numbers: ``rows``, or 0..n−1 where ``rows`` is None."""
    return np.arange(n, dtype=np.int64) if rows is None else rows


class RowStatAccumulator:
    def __init__(self):
        self.n = 0
        self.unit_sum = 0.0
        self.sum = 0.0
        self.norm_sum = 0.0
        self.rows = RowLog()
        self.norms: list[np.ndarray] = []

    takes_sums = True

    def fresh(self) -> "RowStatAccumulator":
        return RowStatAccumulator()

    def consume(self, rows: np.ndarray, x: np.ndarray, sums: RowSums | None = None) -> None:
        self.update(rows, x, sums)

    def update(self, rows: np.ndarray, x: np.ndarray, sums: RowSums | None = None
               ) -> "RowStatAccumulator":
        """Add a block of validated (finite) rows; ``sums``: its row sums, made here if None."""
        # squared norms in the block's dtype (768 float32 squares sum to ~1e-6 relative), Σx and
        # Σx̂ in float64 across blocks: one pass over the block (engine.rows)
        sums = sums if sums is not None else row_sums(x)
        norms = sums.norms
        self.unit_sum += sums.unit_sum
        self.sum += sums.col_sum
        self.norm_sum += float(norms.sum())
        self.n += x.shape[0]
        self.rows.add(rows)
        self.norms.append(norms)
        return self

    def merge(self, other: "RowStatAccumulator") -> "RowStatAccumulator":
        self.n += other.n
        self.unit_sum += other.unit_sum
        self.sum += other.sum
        self.norm_sum += other.norm_sum
        self.rows.merge(other.rows)
        self.norms += other.norms
        return self

    def result(self) -> RowStats:
        rows = self.rows.result()
        norms = np.concatenate(self.norms) if self.norms else np.empty(0)
        return RowStats(self.n, np.array(self.unit_sum, dtype=float), self.norm_sum,
                        np.array(self.sum, dtype=float), rows, norms)


Transform = Callable[[np.ndarray], np.ndarray]


def run_pass(source, *consumers, transform: Transform | None = None, unit: bool = False,
             nonzero: bool = False, dtype=None, progress: str | None = None) -> None:
    """One pass over a source's (or a :class:`geomkit.Space`'s) blocks feeding every consumer,
    through the space's pass executor (:mod:`geomkit.engine.executor`).

    Consumers must not keep ``x``: blocks are read into one reused buffer. Consumers with
    ``takes_sums`` get ``consume(rows, x, sums)``: the block's row sums, made once while the
    block is validated, or None when a transform changed the rows. ``nonzero``: zero rows (of
    the input) are an input error (cosine measures need them)."""
    from geomkit.space import as_space

    space = as_space(source)
    if transform is not None:
        space = space.transformed(transform, "transform")
    space.run(*consumers, unit=unit, nonzero=nonzero, dtype=dtype, progress=progress)


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
