"""Row-wise statistics of a block, and the one L2 normalisation of rows.

:func:`row_sums` returns, from one pass over a block, each row's squared norm (in the block's
dtype: non-finite for a row with NaN/Inf, which is how validation finds them), the column sums
Σx and the sums of the unit vectors Σx̂ (float64, over the finite rows). Streaming passes
validate a block and hand every accumulator the same :class:`RowSums`
(:meth:`geomkit.io.EmbeddingSource.blocks` with ``sums=True``), so norms and sums cost no second
pass over the block. (A compiled C kernel for this was measured on whole commands, 700 000 × 768:
1.05–1.07× — below the 1.3× that would pay for a compile step; docs/performance.md. It was
removed: one numpy code path.)

Unit rows are made in one place (:func:`unit_rows`) with one policy: a zero row has no
direction. Cosine analyses never see one (the :class:`geomkit.Space` refuses zero rows for them,
or drops and counts them with ``drop_zero``); a caller that hands in a zero row anyway gets the
zero vector back (its cosine with anything is 0), never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PART = 4096  # rows per matrix-vector product of the column sums


@dataclass
class RowSums:
    """``sq_norms`` per row (the block's dtype); ``col_sum`` Σx and ``unit_sum`` Σx/‖x‖
    (float64, finite rows only; a zero row adds nothing to ``unit_sum``)."""

    sq_norms: np.ndarray
    col_sum: np.ndarray
    unit_sum: np.ndarray

    @property
    def norms(self) -> np.ndarray:
        return np.sqrt(self.sq_norms.astype(np.float64))


def row_sq_norms(x: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each row, in the block's dtype (numpy's vecdot: a dot product per
    row, about 2x faster than the equivalent einsum)."""
    vecdot = getattr(np, "vecdot", None)  # numpy >= 2.0
    return vecdot(x, x) if vecdot is not None else np.einsum("ij,ij->i", x, x)


def column_sums(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Σ_i w_i x_i (w = 1 by default) in float64: matrix-vector products in the block's dtype over
    at most 4096 rows each (one product over a long narrow float32 block would drift by ~1e-6
    relative), summed in float64."""
    out = np.zeros(x.shape[1])
    ones = np.ones(min(_PART, x.shape[0]), dtype=x.dtype) if weights is None else None
    for a in range(0, x.shape[0], _PART):
        part = x[a:a + _PART]
        w = ones[:part.shape[0]] if weights is None else weights[a:a + _PART]
        out += w @ part
    return out


def row_sums(x: np.ndarray) -> RowSums:
    """Squared norms, column sums and unit-vector sums of a block (non-finite rows left out of
    the sums)."""
    with np.errstate(over="ignore", invalid="ignore"):
        sq = row_sq_norms(x)
    finite = np.isfinite(sq)
    xs, sq_kept = (x, sq) if finite.all() else (x[finite], sq[finite])
    norms = np.sqrt(sq_kept.astype(np.float64))
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return RowSums(sq, column_sums(xs), column_sums(xs, inv.astype(x.dtype)))


def centre(x: np.ndarray, mean: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = x − mean`` (``mean`` in x's dtype; ``out`` x's shape and dtype)."""
    return np.subtract(x, mean, out=out)


def unit_rows(x: np.ndarray, sq: np.ndarray | None = None) -> np.ndarray:
    """``x`` with every row divided by its L2 norm (in ``x``'s dtype; the norms in float64).
    ``sq``: the rows' squared norms when already known. Zero rows stay zero."""
    if sq is None:
        sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    norms = np.sqrt(np.asarray(sq, dtype=np.float64))
    norms[norms == 0] = 1.0  # a zero row divided by 1 stays the zero vector
    return x / norms.astype(x.dtype)[:, None]
