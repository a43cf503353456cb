"""Run an accumulator pass on Dask: one task per row range, partial accumulators merged in a tree.

Every accumulator in :mod:`geomkit.engine` is mergeable (``merge``), so a pass that runs locally as
``run_pass(source, acc)`` runs on a Dask cluster as ``dask_pass(source, MomentAccumulator)``. Tasks
carry only the file path, dataset and row range (h5py handles are not picklable); each worker opens
the file read-only itself, so the file must be visible to the workers (shared filesystem).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _partial(spec: dict, rows: np.ndarray, factories: tuple[Callable, ...], unit: bool):
    from geomkit.io.source import open_source

    accs = [make() for make in factories]
    with open_source(spec["path"] + (":" + spec["dataset"] if spec["dataset"] else ""),
                     layer=spec["layer"], dims=spec["dims"],
                     drop_nonfinite=spec["drop_nonfinite"], allow_external=spec["allow_external"],
                     memory=spec["memory"]) as src:
        for start in range(0, rows.size, src.block_rows()):
            part = rows[start:start + src.block_rows()]
            part, x = src.validate(part, np.asarray(src.read_rows(part), dtype=src.compute_dtype),
                                   unit=unit)
            for acc in accs:
                acc.consume(part, x)
    return accs


def _merge(a: list, b: list) -> list:
    return [x.merge(y) for x, y in zip(a, b)]


def dask_pass(source, *factories: Callable, unit: bool = False, partitions: int | None = None,
              scheduler=None) -> list:
    """One pass of fresh accumulators (``factories``) over ``source`` on Dask; returns merged ones.

    ``scheduler`` is anything ``dask.compute`` accepts (``"threads"``, ``"processes"``,
    ``"synchronous"``, a ``distributed.Client``); by default the active client or local threads.
    """
    import dask

    rows = source.selected_rows()
    partitions = partitions or max(1, min(64, rows.size // max(1, source.block_rows())))
    spec = {"path": source.path, "dataset": source.dataset, "layer": source.layer,
            "dims": source.dims, "drop_nonfinite": source.drop_nonfinite,
            "allow_external": source.allow_external, "memory": source.memory}
    parts = [dask.delayed(_partial)(spec, chunk, factories, unit)
             for chunk in np.array_split(rows, partitions) if chunk.size]
    while len(parts) > 1:  # pairwise tree reduction
        parts = [dask.delayed(_merge)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    kwargs = {"scheduler": scheduler} if scheduler is not None else {}
    (merged,) = dask.compute(parts[0], **kwargs)
    return merged
