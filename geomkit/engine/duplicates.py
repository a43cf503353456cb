"""Exact duplicate rows: a 64-bit hash per row (streaming, 8 bytes a row) and the duplicate count.

Duplicates are common in real dumps (boilerplate texts, repeated sentences) and change what
neighbour-based measures mean: identical items are each other's nearest neighbours at distance 0,
so a group of m copies puts its members in each other's k-NN lists (ties broken by row index).
``info --scan`` and ``hubness`` report them.

The hash of a row is Σ_j a_j·u_j mod 2⁶⁴ over the row's bit patterns u_j (−0.0 taken as 0.0),
with fixed odd random multipliers a_j, then mixed: equal rows always collide; two different rows
collide with probability about 2⁻⁶⁴. In memory (:func:`duplicate_representatives`,
:func:`duplicate_groups`) rows with equal hashes are then compared exactly.

``hubness`` uses the representatives (lowest equal row of each row) to give exact copies a
distance of exactly 0 under the cosine and euclidean metrics: computed through Gram products
they round to anything from 0 to ~1e-3·‖x‖ (float32), which would make local scales of copies
rounding noise instead of the 0 whose limits the reductions define (geomkit/transforms/hubness.py).
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


def duplicate_representatives(x: np.ndarray) -> np.ndarray | None:
    """For every row of an in-memory matrix the lowest index of a row equal to it (itself when
    unique), or None when all rows are distinct. Rows are grouped by :func:`row_hashes` and then
    compared exactly (−0.0 equals 0.0), vectorised: O(N·d), no loop over rows or groups."""
    n = x.shape[0]
    if n < 2:
        return None
    h = row_hashes(x)
    order = np.argsort(h, kind="stable")  # equal hashes: ascending row index
    hs = h[order]
    new = np.r_[True, hs[1:] != hs[:-1]]
    if new.all():
        return None
    run = np.cumsum(new) - 1  # run id of each sorted position
    first = order[np.flatnonzero(new)][run]  # lowest row of its hash run, per sorted position
    pos = np.flatnonzero(first != order)  # sorted positions that may repeat an earlier row
    rows, heads = order[pos], first[pos]
    same = np.ones(pos.size, dtype=bool)
    step = max(1, 2**22 // max(1, x.shape[1]))  # bounded temporaries
    for a in range(0, pos.size, step):
        same[a:a + step] = (x[rows[a:a + step]] == x[heads[a:a + step]]).all(axis=1)
    if not same.all():  # a 64-bit hash collision: group those rows exactly
        _, inverse = np.unique(np.ascontiguousarray(x + x.dtype.type(0)), axis=0,
                               return_inverse=True)
        inverse = inverse.ravel()
        lowest = np.full(inverse.max() + 1, n, dtype=np.int64)
        np.minimum.at(lowest, inverse, np.arange(n))
        rep = lowest[inverse]
        return None if (rep == np.arange(n)).all() else rep
    rep = np.arange(n, dtype=np.int64)
    rep[rows] = heads
    return rep


def count_representatives(rep: np.ndarray | None) -> tuple[int, int]:
    """(rows that repeat an earlier row, groups of identical rows) from
    :func:`duplicate_representatives`."""
    if rep is None:
        return 0, 0
    copies = rep != np.arange(rep.size)
    return int(copies.sum()), int(np.unique(rep[copies]).size)


def duplicate_groups(x: np.ndarray) -> tuple[int, int]:
    """(rows that repeat an earlier row, groups) of an in-memory matrix, compared exactly."""
    return count_representatives(duplicate_representatives(x))


# ----------------------------------------------------------------------------- streaming
class RowHashAccumulator:
    """:func:`row_hashes` of every row of a pass, in pass order (8 bytes a row). Rows are hashed
    as float64 values, so a block widened to float64 by validation hashes like its neighbours."""

    def __init__(self):
        self.parts: list[np.ndarray] = []

    def fresh(self) -> "RowHashAccumulator":
        return RowHashAccumulator()

    def consume(self, rows, x):
        self.parts.append(row_hashes(np.asarray(x, dtype=np.float64)))

    def merge(self, other: "RowHashAccumulator") -> "RowHashAccumulator":
        self.parts += other.parts
        return self

    def result(self) -> np.ndarray:
        return (np.concatenate(self.parts) if self.parts else np.empty(0, dtype=np.uint64))


class SparseDuplicates:
    """Exact copies of a streamed matrix without a per-row array: ``pos`` the positions (sorted)
    of every row that has an equal row, ``rep`` the lowest equal position of each (itself for the
    lowest of its group). ``representatives(p)`` gives the representative of any positions, -1
    for rows without a copy."""

    def __init__(self, pos: np.ndarray, rep: np.ndarray, n: int):
        order = np.argsort(pos, kind="stable")
        self.pos = np.asarray(pos, dtype=np.int64)[order]
        self.rep = np.asarray(rep, dtype=np.int64)[order]
        self.n = int(n)

    def __bool__(self) -> bool:
        return bool(self.pos.size)

    def representatives(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        if not self.pos.size:
            return np.full(positions.shape, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.pos, positions), self.pos.size - 1)
        return np.where(self.pos[at] == positions, self.rep[at], -1)

    def counts(self) -> tuple[int, int]:
        """(rows that repeat an earlier row, groups): as :func:`count_representatives`."""
        copies = self.rep != self.pos
        return int(copies.sum()), int(np.unique(self.rep[copies]).size)

    def dense(self) -> np.ndarray | None:
        """The :func:`duplicate_representatives` array (N entries), or None without copies."""
        if not self.pos.size:
            return None
        rep = np.arange(self.n, dtype=np.int64)
        rep[self.pos] = self.rep
        return rep


def stream_duplicates(space, *, nonzero: bool = False, progress: str | None = None,
                      products=()) -> SparseDuplicates:
    """The exact copies among the rows of ``space`` (a :class:`geomkit.Space`) in one streaming
    pass of row hashes (8 bytes a row, run by the space's executor) and reads of the rows whose
    hashes repeat, which are compared exactly (a 64-bit collision between different rows is
    resolved by grouping those rows by value). The same groups as
    :func:`duplicate_representatives` of the whole matrix; positions count the analysed rows.
    ``products``: shared products of the space ("moments", "row_stats") computed in the same
    pass (:meth:`geomkit.Space.run_with`), one read fewer for a command that needs both."""
    acc = RowHashAccumulator()
    space.run_with(acc, products=products, nonzero=nonzero, progress=progress)
    h = acc.result()
    n = h.size
    s = np.sort(h)
    repeated = s[1:][s[1:] == s[:-1]]
    del s
    if not repeated.size:
        return SparseDuplicates(np.empty(0, np.int64), np.empty(0, np.int64), n)
    repeated = np.unique(repeated)
    cand = []
    for a in range(0, n, 1 << 20):  # positions whose hash repeats, in bounded chunks
        part = h[a:a + (1 << 20)]
        at = np.minimum(np.searchsorted(repeated, part), repeated.size - 1)
        cand.append(a + np.flatnonzero(repeated[at] == part))
    pos = np.concatenate(cand)
    hp = h[pos]
    del h
    order = np.lexsort((pos, hp))  # by hash, then position
    pos, hp = pos[order], hp[order]
    new = np.r_[True, hp[1:] != hp[:-1]]
    head = pos[np.flatnonzero(new)][np.cumsum(new) - 1]  # lowest position of each hash run
    rows_of = _original_rows(space)
    same = np.ones(pos.size, dtype=bool)
    step = max(1, space.memory // (4 * 8 * max(1, space.d)))  # two float64 copies per pair
    check = np.flatnonzero(pos != head)
    for a in range(0, check.size, step):
        sel = check[a:a + step]
        need = np.unique(np.r_[pos[sel], head[sel]])
        x = np.asarray(space.read_rows(rows_of(need)), dtype=np.float64)
        mine = x[np.searchsorted(need, pos[sel])]
        theirs = x[np.searchsorted(need, head[sel])]
        same[sel] = (mine == theirs).all(axis=1)
    rep = head.copy()
    if not same.all():  # a 64-bit collision: the runs that hold it grouped by value
        run_id = np.cumsum(new) - 1
        for r in np.unique(run_id[~same]):
            members = np.flatnonzero(run_id == r)
            x = np.asarray(space.read_rows(rows_of(pos[members])), dtype=np.float64) + 0.0
            _, inverse = np.unique(x, axis=0, return_inverse=True)
            inverse = inverse.ravel()
            lowest = np.full(inverse.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(lowest, inverse, pos[members])
            rep[members] = lowest[inverse]
    # rows alone in their value group (after a collision) have no copy
    group_size = np.bincount(np.searchsorted(np.unique(rep), rep))
    keep = group_size[np.searchsorted(np.unique(rep), rep)] > 1
    return SparseDuplicates(pos[keep], rep[keep], n)


def _original_rows(space):
    """Position (0..N-1 over the analysed rows) → original row, without an array when the view
    is every row of the dataset (nothing sampled or dropped)."""
    if space.source._rows is None and not space.n_dropped:
        return lambda p: np.asarray(p, dtype=np.int64)
    rows = space.rows
    return lambda p: rows[np.asarray(p, dtype=np.int64)]
