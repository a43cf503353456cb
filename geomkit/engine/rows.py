"""Row-wise helpers shared by every analysis: the one L2 normalisation of rows.

Unit rows are made in one place (here) with one policy: a zero row has no direction. Cosine
analyses never see one (the :class:`geomkit.Space` refuses zero rows for them, or drops and
counts them with ``drop_zero``); for a caller that hands in a zero row anyway it stays the zero
vector (its cosine with anything is 0), never NaN.
"""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray, sq: np.ndarray | None = None) -> np.ndarray:
    """``x`` with every row divided by its L2 norm (in ``x``'s dtype; the norms in float64).
    ``sq``: the rows' squared norms when already known. Zero rows stay zero."""
    if sq is None:
        sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    norms = np.sqrt(np.asarray(sq, dtype=np.float64))
    norms[norms == 0] = 1.0  # a zero row divided by 1 stays the zero vector
    return x / norms.astype(x.dtype)[:, None]
