"""Exact duplicate rows: a 64-bit hash per row (streaming, 8 bytes a row) and the duplicate count.

Duplicates are common in real dumps (boilerplate texts, repeated sentences) and change what
neighbour-based measures mean: identical items are each other's nearest neighbours at distance 0,
so a group of m copies puts its members in each other's k-NN lists (ties broken by row index).
``info --scan`` and ``hubness`` report them.

The hash of a row is Σ_j a_j·u_j mod 2⁶⁴ over the row's bit patterns u_j (−0.0 taken as 0.0),
with fixed odd random multipliers a_j, then mixed: equal rows always collide; two different rows
collide with probability about 2⁻⁶⁴. In memory (:func:`duplicate_groups`) members are then
compared exactly.
"""

from __future__ import annotations

import numpy as np

_SEED = 0x9E3779B97F4A7C15


def _multipliers(d: int) -> np.ndarray:
    rng = np.random.default_rng(_SEED)
    return rng.integers(0, 2**63, size=d, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def row_hashes(x: np.ndarray) -> np.ndarray:
    """uint64 hash of every row of ``x`` (float16/32/64); equal rows give equal hashes."""
    x = np.ascontiguousarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    x = x + x.dtype.type(0.0)  # −0.0 + 0.0 = +0.0: equal values, equal bits
    bits = x.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize])
    mult = _multipliers(x.shape[1])
    h = np.zeros(x.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in range(0, x.shape[1], 256):  # bounded temporaries
            h += (bits[:, a:a + 256].astype(np.uint64) * mult[a:a + 256]).sum(axis=1,
                                                                              dtype=np.uint64)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    return h


def count_duplicates(hashes: np.ndarray) -> tuple[int, int]:
    """(rows that repeat an earlier row, groups of identical rows) from row hashes."""
    if hashes.size == 0:
        return 0, 0
    _, counts = np.unique(hashes, return_counts=True)
    return int(hashes.size - counts.size), int((counts > 1).sum())


def duplicate_groups(x: np.ndarray) -> tuple[int, int]:
    """(rows that repeat an earlier row, groups) of an in-memory matrix, compared exactly."""
    h = row_hashes(x)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]])
    sizes = np.diff(np.r_[starts, hs.size])
    repeats, groups = 0, 0
    for s, m in zip(starts[sizes > 1], sizes[sizes > 1]):  # few groups: a loop over groups only
        members = x[order[s:s + m]]
        same = (members == members[0]).all(axis=1)
        if same.all():
            repeats, groups = repeats + int(m - 1), groups + 1
        else:  # a hash collision (or −0.0/NaN patterns): count exactly
            _, counts = np.unique(members, axis=0, return_counts=True)
            repeats += int(m - counts.size)
            groups += int((counts > 1).sum())
    return repeats, groups
