"""The one pass executor: every streaming pass of every analysis runs through it.

A pass feeds the validated row blocks of a source to a list of accumulators (``consume(rows, x)``
or, with ``takes_sums``, ``consume(rows, x, sums)``). :class:`LocalExecutor` runs it in this
process (the default); :class:`DaskExecutor` splits the rows into contiguous parts, runs one
task per part on fresh accumulators (``fresh()``) and merges them pairwise in row order
(``merge``), so every accumulator of every command runs unchanged on a Dask cluster. The source
travels to the workers pickled (an HDF5 source reopens its file there: the file must be visible
to the workers).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]


class LocalExecutor:
    """Passes in this process, block after block."""

    name = "local"

    def run(self, source, consumers, *, transform: Transform | None = None, unit: bool = False,
            nonzero: bool = False, dtype=None, progress: str | None = None) -> None:
        takes = [getattr(c, "takes_sums", False) for c in consumers]
        sums = any(takes) and transform is None and not unit
        for blk in source.blocks(unit=unit, dtype=dtype, progress=progress, reuse=True,
                                 sums=sums, nonzero=nonzero):
            x = transform(blk.x) if transform is not None else blk.x
            for consumer, take in zip(consumers, takes):
                if take:
                    consumer.consume(blk.rows, x, blk.sums)
                else:
                    consumer.consume(blk.rows, x)


def _part_pass(source, lo: int, hi: int, consumers, options):
    """One Dask task: fresh accumulators over positions lo..hi-1 of the source's rows."""
    part = source.part(lo, hi)
    fresh = [c.fresh() for c in consumers]
    LocalExecutor().run(part, fresh, **options)
    return fresh, part.dropped_state()


def _merge_pair(a, b):
    (accs_a, drop_a), (accs_b, drop_b) = a, b
    return [x.merge(y) for x, y in zip(accs_a, accs_b)], _merge_dropped(drop_a, drop_b)


def _merge_dropped(a, b):
    if a is None or b is None:
        return None
    return np.concatenate([a[0], b[0]]), a[1] + b[1]


class DaskExecutor:
    """Passes as Dask tasks: one per contiguous part of the rows, merged in a pairwise tree.

    ``scheduler``: anything ``dask.compute`` accepts ("threads", "processes", "synchronous", a
    ``distributed.Client``); None uses the active client or Dask's default. ``partitions``: the
    number of tasks (default: one per ~16 streaming blocks, at most 64)."""

    name = "dask"

    def __init__(self, scheduler=None, partitions: int | None = None):
        self.scheduler = scheduler
        self.partitions = partitions

    def run(self, source, consumers, *, transform: Transform | None = None, unit: bool = False,
            nonzero: bool = False, dtype=None, progress: str | None = None) -> None:
        import dask

        n = source.n_selected
        parts = self.partitions or max(1, min(64, n // max(1, 16 * source.stream_block_rows())))
        edges = np.linspace(0, n, min(parts, n) + 1).astype(np.int64)
        options = dict(transform=transform, unit=unit, nonzero=nonzero, dtype=dtype)
        tasks = [dask.delayed(_part_pass)(source, int(a), int(b), list(consumers), options)
                 for a, b in zip(edges[:-1], edges[1:]) if b > a]
        while len(tasks) > 1:  # pairwise, keeping row order
            tasks = [dask.delayed(_merge_pair)(tasks[i], tasks[i + 1]) if i + 1 < len(tasks)
                     else tasks[i] for i in range(0, len(tasks), 2)]
        kwargs = {"scheduler": self.scheduler} if self.scheduler is not None else {}
        (merged, dropped), = dask.compute(tasks[0], **kwargs)
        for consumer, part in zip(consumers, merged):
            consumer.merge(part)
        source.learn_dropped(dropped, nonzero=nonzero or unit)
