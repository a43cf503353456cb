"""Apply a fitted :class:`~geomkit.transforms.Pipeline` to a whole dump, writing a new dump."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from geomkit import __version__
from geomkit.errors import InputError, UsageError
from geomkit.io.source import open_h5
from geomkit.io.writers import EmbeddingWriter, check_outputs
from geomkit.report.result import Result
from geomkit.transforms import Pipeline

PARAMS_GROUP = "geomkit_transform"


@dataclass(frozen=True)
class TransformResult(Result):
    input: str
    output: str
    n: int
    d_in: int
    d_out: int
    steps: list
    fitted_on: str
    n_dropped: int
    dtype: str
    n_dropped_zero: int = 0
    command: str = "transform"
    title: str = "geomkit transform"

    def to_dict(self) -> dict:
        return {"input": self.input, "output": self.output, "n": self.n, "d_in": self.d_in,
                "d_out": self.d_out, "dtype": self.dtype, "steps": self.steps,
                "fitted_on": self.fitted_on, "n_dropped": self.n_dropped,
                "n_dropped_zero": self.n_dropped_zero}


def load_pipeline(path: str) -> Pipeline:
    """The fitted pipeline stored by a previous ``geomkit transform`` output."""
    from geomkit.io.selection import parse_selection

    from geomkit.io.source import damaged

    selection = parse_selection(path)
    with open_h5(selection.path) as f, damaged(lambda: selection.path):
        group = f.get(PARAMS_GROUP)
        if group is None:
            raise InputError(f"{selection.path}: has no /{PARAMS_GROUP} group; {{fit_from}} takes a "
                             f"file written by geomkit transform.")
        return Pipeline.load(group, f"{selection.path}:/{PARAMS_GROUP}")


def _apply_part(source, lo, hi, apply, out_dtype, nonzero):
    """One task of the writing pass: the transformed rows of positions lo..hi-1."""
    part = source.part(lo, hi)
    out = [apply(blk.x).astype(out_dtype, copy=False) for blk in part.blocks(nonzero=nonzero)]
    return np.concatenate(out) if out else np.empty((0, 0), dtype=out_dtype)


def _applied(space, apply, out_dtype, nonzero: bool, progress):
    """The transformed row blocks in row order: read and transformed here, or (``--scheduler``)
    by the workers, a bounded window of parts at a time, and written here (one writer: HDF5 has
    no concurrent writers)."""
    from geomkit.report.progress import progress_bar

    source, executor = space.source, space.executor
    label = progress and f"{progress}: write"
    if executor.name == "local":
        for blk in source.blocks(progress=label, nonzero=nonzero):
            yield apply(blk.x).astype(out_dtype, copy=False)
        return
    # parts of at most a quarter of the memory budget each (the window holds a few)
    step = max(1, source.block_rows(copies=4))
    edges = [(a, min(a + step, source.n_selected)) for a in range(0, source.n_selected, step)]
    with progress_bar(source.n_selected, label) as bar:
        for (lo, hi), y in zip(edges, executor.imap(
                _apply_part, [(source, lo, hi, apply, out_dtype, nonzero) for lo, hi in edges])):
            bar.update(hi - lo)
            if y.size:
                yield y


def transform_file(source, pipeline: Pipeline, out: str, *, dtype: str | None = None,
                   fit_from: str | None = None, progress: str | None = None) -> TransformResult:
    """Fit (unless ``fit_from``) and apply ``pipeline`` to ``source`` (a :class:`geomkit.Space`
    or a source), writing ``out``."""
    from geomkit.space import as_space

    space = as_space(source)
    source = space.source
    check_outputs({"output": out}, [source.path] + ([fit_from] if fit_from else []))
    if fit_from is None:
        pipeline.fit(space, progress=progress)
    out_dtype = np.dtype(dtype) if dtype else (np.float64 if source.dtype == np.float64 else np.float32)
    d_out = pipeline.output_dim(source.d)
    if fit_from is not None:
        first = next(iter(pipeline.steps), None)
        expect = next((s.params["mean"].shape[0] for s in pipeline.steps if "mean" in s.params), None)
        if first is not None and expect is not None and expect != source.d:
            raise UsageError(f"{fit_from}: its transform was fitted on {expect}-dimensional vectors, "
                             f"{source.label} has {source.d}.")
    rows = source.rows
    apply = pipeline.apply_until(label=source.label)
    with EmbeddingWriter(out, rows.size, d_out, out_dtype) as writer:
        for y in _applied(space, apply, out_dtype, pipeline.needs_direction, progress):
            writer.write(y)
        writer.write_metadata(source.metadata.take(rows))
        if rows.size != source.n_total:
            writer.file.create_dataset("source_rows", data=rows)
        attrs = writer.attrs
        where = f"{source.path}:{source.dataset}" if source.dataset else source.path
        # an in-memory array (Space.from_array) is named, not a path
        attrs["source"] = (os.path.abspath(source.path) if os.path.exists(source.path)
                           else source.path)
        if source.dataset:
            attrs["source_dataset"] = source.dataset
        if source.layer is not None:
            attrs["source_layer"] = source.layer
        if source.dims is not None:
            attrs["source_dims"] = source.dims
        attrs["steps"] = json.dumps(pipeline.describe())
        attrs["fitted_on"] = fit_from or where
        attrs["geomkit_version"] = __version__
        attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        pipeline.save(writer.file.create_group(PARAMS_GROUP))
    return TransformResult(input=source.label, output=out, n=int(rows.size), d_in=source.d,
                           d_out=d_out, steps=pipeline.describe(),
                           fitted_on=fit_from or source.label, n_dropped=space.n_dropped,
                           n_dropped_zero=space.n_dropped_zero,
                           dtype=np.dtype(out_dtype).name)
