"""The one pass executor: every streaming pass of every analysis runs through it.

A pass feeds the validated row blocks of a source to a list of accumulators (``consume(rows, x)``
or, with ``takes_sums``, ``consume(rows, x, sums)``). :class:`LocalExecutor` runs it in this
process (the default); :class:`DaskExecutor` splits the rows into contiguous parts, runs one
task per part on fresh accumulators (``fresh()``) and merges them pairwise in row order
(``merge``), so every accumulator of every command runs unchanged on a Dask cluster. The source
travels to the workers pickled (an HDF5 source reopens its file there: the file must be visible
to the workers, and the workers must see the file at the same path: a worker that cannot is an
input error naming the worker and the path, :func:`worker_error`).

With a ``distributed.Client`` the parts are submitted as futures: a progress bar counts the rows
of the finished parts (on a terminal, not with ``--quiet``), the merge tree runs on the cluster,
and a task lost with its worker is run again by Dask (``distributed.scheduler.allowed-failures``)
on the same part, so the result does not change. :meth:`DaskExecutor.map` runs any function
over a list of arguments the same way (passes that are not accumulators: ``info --scan``, the
paired passes of ``compare`` and ``translate``).
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

    def edges(self, n: int, block_rows: int) -> list[tuple[int, int]]:
        """One part: everything, in this process."""
        return [(0, n)] if n else []

    def map(self, fn, args: list, *, sizes=None, progress=None, total=None) -> list:
        return [fn(*a) for a in args]

    def imap(self, fn, args: list, *, window: int = 4):
        """``fn(*a)`` for each ``a``, lazily, in order."""
        for a in args:
            yield fn(*a)


def on_worker() -> str | None:
    """The address of the Dask worker this runs on, or None outside one."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def worker_error(path: str, reason: str):
    """The input error of a worker that cannot open an input (None outside a worker: the
    caller raises its own error)."""
    from geomkit.errors import InputError

    where = on_worker()
    if where is None:
        return None
    return InputError(f"Dask worker {where} cannot open {path} ({reason.rstrip('.')}); workers "
                      f"open the inputs themselves, so every worker must see them at the same "
                      f"path (a shared filesystem).")


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

    def _client(self):
        try:
            from distributed import Client
        except ImportError:
            return None
        return self.scheduler if isinstance(self.scheduler, Client) else None

    def edges(self, n: int, block_rows: int) -> list[tuple[int, int]]:
        """The parts of n rows (or pairs): contiguous, in order; by default one per ~16
        streaming blocks, at least two per worker (down to 64 rows a part), at most 64."""
        parts = self.partitions
        if not parts:
            client = self._client()
            workers = len(client.scheduler_info().get("workers", ())) if client else 1
            parts = max(n // max(1, 16 * block_rows), 2 * max(1, workers))
            parts = max(1, min(64, parts, n // 64))
        edges = np.linspace(0, n, min(parts, n) + 1).astype(np.int64)
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def map(self, fn, args: list, *, sizes: list | None = None, progress: str | None = None,
            total: int | None = None) -> list:
        """``[fn(*a) for a in args]`` as Dask tasks, in order; ``sizes`` (rows per task) feed the
        progress bar."""
        client = self._client()
        if client is None:
            import dask

            kwargs = {"scheduler": self.scheduler} if self.scheduler is not None else {}
            return list(dask.compute(*[dask.delayed(fn)(*a) for a in args], **kwargs))
        futures = [client.submit(fn, *a, pure=False) for a in args]
        self._wait(futures, sizes, progress, total)
        return client.gather(futures)

    def imap(self, fn, args: list, *, window: int | None = None):
        """``fn(*a)`` for each ``a`` as tasks, yielded in order with at most ``window`` results
        in flight (default: two per worker), so a caller that writes them (``transform``) holds
        a bounded number of parts."""
        client = self._client()
        if client is None:
            yield from self.map(fn, args)
            return
        window = window or 2 * max(1, len(client.scheduler_info().get("workers", ())))
        pending = []
        for a in args:
            pending.append(client.submit(fn, *a, pure=False))
            if len(pending) >= window:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()

    def _wait(self, futures, sizes, progress, total) -> None:
        from distributed import as_completed

        from geomkit.report.progress import progress_bar

        sizes = sizes or [1] * len(futures)
        size_of = {f.key: s for f, s in zip(futures, sizes)}
        with progress_bar(total if total is not None else sum(sizes), progress) as bar:
            for done in as_completed(futures):
                if done.status == "error":
                    done.result()  # raises the task's own exception here
                bar.update(size_of[done.key])

    def run(self, source, consumers, *, transform: Transform | None = None, unit: bool = False,
            nonzero: bool = False, dtype=None, progress: str | None = None) -> None:
        parts = self.edges(source.n_selected, source.stream_block_rows(dtype))
        options = dict(transform=transform, unit=unit, nonzero=nonzero, dtype=dtype)
        try:
            merged, dropped = self._run_parts(source, consumers, parts, options, progress)
        except Exception as exc:  # noqa: BLE001 - bad rows of a part are told for the view
            told = source.bad_rows_error(exc)
            if told is exc:
                raise
            raise told from None
        for consumer, part in zip(consumers, merged):
            consumer.merge(part)
        source.learn_dropped(dropped, nonzero=nonzero or unit)

    def _run_parts(self, source, consumers, parts, options, progress):
        import dask

        client = self._client()
        if client is not None:
            futures = [client.submit(_part_pass, source, a, b, list(consumers), options,
                                     pure=False) for a, b in parts]
            self._wait(futures, [b - a for a, b in parts], progress, source.n_selected)
            while len(futures) > 1:  # pairwise on the cluster, keeping row order
                futures = [client.submit(_merge_pair, futures[i], futures[i + 1], pure=False)
                           if i + 1 < len(futures) else futures[i]
                           for i in range(0, len(futures), 2)]
            return futures[0].result()
        else:
            tasks = [dask.delayed(_part_pass)(source, a, b, list(consumers), options)
                     for a, b in parts]
            while len(tasks) > 1:
                tasks = [dask.delayed(_merge_pair)(tasks[i], tasks[i + 1]) if i + 1 < len(tasks)
                         else tasks[i] for i in range(0, len(tasks), 2)]
            kwargs = {"scheduler": self.scheduler} if self.scheduler is not None else {}
            return dask.compute(tasks[0], **kwargs)[0]
