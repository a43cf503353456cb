"""Items of two spaces paired by ids or row order, and their vectors read in paired row blocks
(shared by ``compare`` and ``translate``).

:func:`pair_rows` returns the paired original rows; :func:`paired_blocks` streams the paired
vectors block by block (A's rows in file order, B's rows fetched sorted and put back in pair
order), so a pass over millions of pairs holds one block of each side. :func:`paired_pass`
feeds paired blocks to mergeable accumulators (``add(x, y)``, ``fresh()``, ``merge(other)``)
through the spaces' pass executor: in this process, or one Dask task per contiguous part of the
pairs, merged in pair order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geomkit.errors import InputError, UsageError

PAIRINGS = ("auto", "ids", "rows")


@dataclass(frozen=True)
class Pairs:
    """``a[i]`` of space A is paired with ``b[i]`` of space B (original rows, ``a`` ascending)."""

    a: np.ndarray
    b: np.ndarray
    unmatched_a: int
    unmatched_b: int
    how: str

    @property
    def n(self) -> int:
        return int(self.a.size)

    def take(self, index: np.ndarray) -> "Pairs":
        """The pairs at positions ``index`` (kept in ascending order of A's rows)."""
        index = np.sort(np.asarray(index, dtype=np.int64))
        return Pairs(self.a[index], self.b[index], self.unmatched_a, self.unmatched_b, self.how)

    def unmatched(self) -> dict:
        return {"a": self.unmatched_a, "b": self.unmatched_b}


def positions_of_ids(ids, wanted: list, where: str, what: str) -> list[int]:
    """Positions in ``ids`` of the ``wanted`` ids (in their order); an id not there is an input
    error naming ``what`` it was wanted for (axes' --low/--high, translate's anchors)."""
    if ids is None:
        raise InputError(f"{where}: has no ids to find the {what} by.")
    lookup = {str(v): i for i, v in enumerate(ids)}
    missing = [w for w in wanted if w not in lookup]
    if missing:
        raise InputError(f"{where}: no item with id {missing[0]!r} for the {what}.")
    return [lookup[w] for w in wanted]


def _unique_ids(space, ids: np.ndarray, rows: np.ndarray) -> dict:
    keys = [str(v) for v in ids[rows]]
    pos = dict(zip(keys, (int(r) for r in rows)))
    if len(pos) != len(keys):
        seen, dup = set(), None
        for key in keys:
            if key in seen:
                dup = key
                break
            seen.add(key)
        raise InputError(f"{space.label}: id {dup!r} names more than one row; pairing by ids "
                         f"needs unique ids (pair by rows with --pairs rows).")
    return pos


def pair_rows(a, b, pairs: str = "auto", *, minimum: int = 3) -> Pairs:
    """Pair the selected rows of spaces ``a`` and ``b``: by ids (``auto`` when both have ids;
    items without a partner are counted) or by row order (``rows``: equal row counts)."""
    if pairs not in PAIRINGS:
        raise UsageError(f"pairs '{pairs}' is not one of {', '.join(PAIRINGS)}.")
    ids_a, ids_b = a.metadata.ids, b.metadata.ids
    if pairs == "auto":
        pairs = "ids" if ids_a is not None and ids_b is not None else "rows"
    ra, rb = a.rows, b.rows
    if pairs == "rows":
        if ra.size != rb.size:
            raise InputError(f"{a.label} has {ra.size} rows and {b.label} {rb.size}; pairing by "
                             f"row order needs the same number (pair by ids instead).")
        return Pairs(ra, rb, 0, 0, "rows")
    if ids_a is None or ids_b is None:
        raise UsageError("pairing by ids needs an ids dataset in both inputs.")
    pos_a = _unique_ids(a, ids_a, ra)
    pos_b = _unique_ids(b, ids_b, rb)
    keep = sorted((row, pos_b[key]) for key, row in pos_a.items() if key in pos_b)
    if len(keep) < minimum:
        raise InputError(f"{a.label} and {b.label} share {len(keep)} ids; at least {minimum} "
                         f"paired items are needed.")
    keep_a = np.fromiter((r for r, _ in keep), dtype=np.int64, count=len(keep))
    keep_b = np.fromiter((r for _, r in keep), dtype=np.int64, count=len(keep))
    return Pairs(keep_a, keep_b, int(ra.size - keep_a.size), int(rb.size - keep_a.size), "ids")


def read_paired(space, rows: np.ndarray, *, nonzero: bool = False, check: bool = True
                ) -> np.ndarray:
    """The vectors of ``rows`` (any order, unique) of ``space``, in that order, validated:
    non-finite rows (and all-zero rows with ``nonzero``) are input errors naming the rows.
    ``check=False`` leaves validation to the caller (a pass that detects non-finite values from
    its own sums, then re-reads the block with the check to name the rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size < 2 or bool((rows[1:] > rows[:-1]).all()):
        x = space.read_rows(rows)  # already in file order (pairing by rows): no reordering
    else:
        order = np.argsort(rows, kind="stable")
        got = space.read_rows(rows[order])
        x = np.empty_like(got)
        x[order] = got
    if not check:
        return x
    bad = ~np.isfinite(x).all(1)
    if bad.any():
        raise space.source._nonfinite_error(rows[bad])
    if nonzero:
        zero = ~(x != 0).any(1)
        if zero.any():
            raise space.source._zero_error(rows[zero])
    return x


def paired_blocks(a, b, pairs: Pairs, *, block_rows: int = 8192, nonzero: bool = False,
                  check: bool = True):
    """Yield ``(x, y)``: the paired vectors of A and B, ``block_rows`` pairs at a time, in the
    order of ``pairs`` (validated as :func:`read_paired`, unless ``check=False``)."""
    for s in range(0, pairs.n, block_rows):
        yield (read_paired(a, pairs.a[s:s + block_rows], nonzero=nonzero, check=check),
               read_paired(b, pairs.b[s:s + block_rows], nonzero=nonzero, check=check))


def _paired_part(a, b, rows_a, rows_b, consumers, block_rows, nonzero, check):
    """One task of a paired pass: ``consumers`` (fresh) over the pairs (rows_a[i], rows_b[i])."""
    for s in range(0, rows_a.size, block_rows):
        x = read_paired(a, rows_a[s:s + block_rows], nonzero=nonzero, check=check)
        y = read_paired(b, rows_b[s:s + block_rows], nonzero=nonzero, check=check)
        for consumer in consumers:
            consumer.add(x, y)
    return consumers


def paired_pass(a, b, pairs: Pairs, consumers: list, *, block_rows: int = 8192,
                nonzero: bool = False, check: bool = True, progress: str | None = None) -> list:
    """Feed every paired block of A and B to ``consumers`` (accumulators with ``add(x, y)``) in
    one pass; with a Dask executor (A's) one task per part of the pairs on fresh accumulators,
    merged in pair order into ``consumers``. Returns ``consumers``."""
    executor = a.executor
    if executor.name == "local":
        from geomkit.report.progress import progress_bar

        with progress_bar(pairs.n, progress) as bar:
            for x, y in paired_blocks(a, b, pairs, block_rows=block_rows, nonzero=nonzero,
                                      check=check):
                for consumer in consumers:
                    consumer.add(x, y)
                bar.update(x.shape[0])
        return consumers
    edges = executor.edges(pairs.n, block_rows)
    parts = executor.map(_paired_part, [(a, b, pairs.a[lo:hi], pairs.b[lo:hi],
                                         [c.fresh() for c in consumers], block_rows, nonzero,
                                         check) for lo, hi in edges],
                         sizes=[hi - lo for lo, hi in edges], progress=progress, total=pairs.n)
    for part in parts:
        for consumer, done in zip(consumers, part):
            consumer.merge(done)
    return consumers
