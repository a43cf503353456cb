"""Every file geomkit writes goes through here: written to a temporary file next to the target and
renamed over it only when complete, so an existing output is replaced only on success."""

from __future__ import annotations

import contextlib
import sys
import json
import math
import os
import uuid

import numpy as np

from geomkit.errors import UsageError


def check_writable(path: str) -> None:
    """Fail early (before any computation) when an output cannot be written."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: cannot write, folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{path}: cannot write, folder {folder} is not writable.")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory.")


def input_path(text: str) -> str | None:
    """The file an input argument names (``PATH[:DATASET]``, a corpus, ...), or None when it
    names no existing file."""
    if os.path.isfile(text):
        return text
    pos = text.find(":")
    while pos != -1:
        if pos and os.path.isfile(text[:pos]):
            return text[:pos]
        pos = text.find(":", pos + 1)
    return None


def _identity(path: str):
    """(device, inode) of an existing file, following links; else its resolved path."""
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.realpath(path)


def check_outputs(outputs: dict, inputs) -> None:
    """Refuse, before any work, an output that is an input or another output.

    ``outputs`` maps a name (the option, e.g. ``--html``) to a path; ``inputs`` are the input
    arguments (``PATH[:DATASET]`` or plain paths; those naming no existing file are ignored).
    Files are compared by device and inode, so a symlink or hardlink to an input is caught.
    """
    seen = {}
    for text in inputs:
        path = input_path(text) if text else None
        if path is not None:
            seen.setdefault(_identity(path), text)
    claimed = {}
    for name, path in outputs.items():
        path = os.fspath(path)
        check_writable(path)
        ident = _identity(path)
        if ident in seen:
            raise UsageError(f"{name} {path}: is the input {seen[ident]} (the same file); writing "
                             f"it would destroy the input, choose another path.")
        real = os.path.realpath(path)
        for key in (ident, real):
            if key in claimed:
                raise UsageError(f"{name} {path}: is also the {claimed[key]} output; give each "
                                 f"output its own path.")
        claimed[ident] = claimed[real] = name


_PARTIAL: set = set()  # temporary files being written now (removed by a signal handler too)


def remove_partial_outputs() -> None:
    """Delete every temporary output still being written (the CLI's signal handler calls this
    before it exits: a killed run leaves nothing behind)."""
    for tmp in list(_PARTIAL):
        with contextlib.suppress(OSError):
            os.remove(tmp)
        _PARTIAL.discard(tmp)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path in the target's folder; rename it to ``path`` if the block succeeds."""
    path = os.fspath(path)
    check_writable(path)
    folder = os.path.dirname(os.path.abspath(path))
    # registered before it exists: a signal between creating the file and registering it would
    # leave it behind
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    _PARTIAL.add(tmp)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except BaseException:
        _PARTIAL.discard(tmp)
        raise
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        _PARTIAL.discard(tmp)


def jsonable(obj):
    """Plain JSON values: numpy scalars/arrays to Python, NaN/Inf to None (never NaN literals)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj  # strings are made valid UTF-8 once, where text is written (clean_text)


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (undecodable bytes in an HDF5 name or string)
    become U+FFFD instead of failing the write."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def dumps_json(obj) -> str:
    return json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False)


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(clean_text(text))


def write_json(path: str, obj) -> None:
    write_text(path, dumps_json(obj) + "\n")


def _strings(values) -> np.ndarray:
    """Values as an object array of valid UTF-8 strings (for an HDF5 string dataset)."""
    return np.array([clean_text(str(v)) for v in values], dtype=object)


def write_per_item(path: str, table) -> None:
    """Write per-row values (a pandas DataFrame) as ``.csv`` or ``.h5`` (one dataset a column)."""
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    lower = path.lower()
    if lower.endswith(".csv"):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, errors="replace")
    elif lower.endswith((".h5", ".hdf5")):
        import h5py
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                for col in frame.columns:
                    values = frame[col].to_numpy()
                    if values.dtype == object:
                        f.create_dataset(str(col), data=_strings(values),
                                         dtype=h5py.string_dtype("utf-8"))
                    else:
                        f.create_dataset(str(col), data=values)
    else:
        raise UsageError(f"{path}: {{per_item}} takes a .csv or .h5 path.")


class EmbeddingWriter:
    """Write an embedding dump (``embeddings`` + aligned metadata + attributes) block by block,
    atomically: the file appears at ``path`` only after :meth:`close` succeeds.

    Usage::

        with EmbeddingWriter(out, n, d, dtype) as w:
            for rows, x in ...: w.write(x)
            w.write_metadata(metadata.take(rows)); w.attrs["source"] = ...
    """

    def __init__(self, path: str, n: int, d: int, dtype="float32", dataset: str = "embeddings"):
        import h5py

        self.path = path
        self._ctx = atomic_path(path)
        tmp = self._ctx.__enter__()
        try:
            self.file = h5py.File(tmp, "w")
            chunk_rows = max(1, min(n, (1 << 20) // max(1, d * np.dtype(dtype).itemsize)))
            self.dset = self.file.create_dataset(dataset, shape=(n, d), dtype=dtype,
                                                 chunks=(chunk_rows, d))
        except BaseException:
            self._ctx.__exit__(*sys.exc_info())
            raise
        self.pos = 0
        self.n = n
        self.attrs = self.file.attrs

    def write(self, x: np.ndarray) -> None:
        self.dset[self.pos:self.pos + x.shape[0]] = x
        self.pos += x.shape[0]

    def write_metadata(self, metadata) -> None:
        import h5py

        for kind in ("ids", "texts", "labels", "counts"):
            values = getattr(metadata, kind)
            if values is None:
                continue
            if values.dtype == object or values.dtype.kind in ("U", "S"):
                self.file.create_dataset(kind, data=_strings(values),
                                         dtype=h5py.string_dtype("utf-8"))
            else:
                self.file.create_dataset(kind, data=values)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.file.close()
        finally:
            if exc[0] is None and self.pos != self.n:
                error = RuntimeError(f"wrote {self.pos} of {self.n} rows")
                self._ctx.__exit__(RuntimeError, error, None)
                raise error
            self._ctx.__exit__(*exc)
        return False
