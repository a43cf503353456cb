"""The one way geomkit reads embeddings: an :class:`EmbeddingSource` over an HDF5 dataset.

A source is a *view* of one dataset: which layer of an (N, L, d) stack, which prefix of the vector
(Matryoshka ``--dims``), which rows (``--sample``), and the row metadata (ids, texts, labels,
counts). Analyses never touch h5py: they iterate :meth:`EmbeddingSource.blocks`, which yields
bounded row blocks with their original row indices, validated (non-finite rows are an error or are
dropped; zero rows are an error when unit vectors are asked for).

Files are opened read-only; HDF5 external links, external raw storage and virtual datasets whose
sources lie in other files are refused unless ``allow_external=True``.
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass, field
from typing import Iterator

import h5py
import numpy as np

from geomkit.engine.rows import RowSums, row_sq_norms, row_sums, unit_rows
from geomkit.errors import GeomkitError, InputError, UsageError
from geomkit.io.guarded import read_many, read_values
from geomkit.io.selection import Selection, parse_selection, resolve_dataset

_NO_ROWS = np.empty(0, dtype=np.int64)
DEFAULT_MEMORY = 256 * 2**20  # bytes a block may use, working copies included
READ_WINDOW_BYTES = 16 * 2**20  # read_rows: the span one range read may cover
RANGE_DENSITY = 64  # read_rows: a window is read as a range when it holds >= 1/64 of its span
METADATA_NAMES = ("ids", "texts", "labels", "counts")
STREAM_BLOCK_BYTES = 8 * 2**20  # a streaming block stays in the last-level cache
# a float32 block whose largest squared norm passes this is widened to float64: a scatter or
# Gram product sums up to ~10⁵ such terms in float32 (max 3.4e38) before it reaches float64
WIDEN_SQ_NORM = 1e30
# beyond this even float64 sums of squares over 10¹² rows can overflow: refused
MAX_SQ_NORM = 1e280
WIDEN_TINY_SQ = 1e-30
# an error about bad rows counts them all by a scan only up to this many values (~1 s)
SCAN_FOR_MESSAGE = 2**28


@dataclass
class Block:
    """``rows``: original row indices (int64), ``x``: the vectors of those rows (float);
    ``sums``: their row sums (squared norms, Σx, Σx̂: :mod:`geomkit.engine.rows`) when asked for."""

    rows: np.ndarray
    x: np.ndarray
    sums: "RowSums | None" = None


@dataclass
class Metadata:
    """Per-row metadata aligned with the dataset's rows (full length N, original order)."""

    ids: np.ndarray | None = None
    texts: np.ndarray | None = None
    labels: np.ndarray | None = None
    counts: np.ndarray | None = None
    names: dict = field(default_factory=dict)  # kind -> dataset name it was read from

    def take(self, rows: np.ndarray) -> "Metadata":
        def sub(a):
            return None if a is None else a[rows]
        return Metadata(sub(self.ids), sub(self.texts), sub(self.labels), sub(self.counts),
                        dict(self.names))

    def label_of(self, rows: np.ndarray) -> np.ndarray:
        """Ids for rows, or the row numbers themselves when the dump has no ids."""
        return self.ids[rows] if self.ids is not None else np.asarray(rows)

    def class_labels(self, where: str) -> np.ndarray:
        """The labels as class names (object array of str) for k-NN error, groups and splits.

        Float labels are refused: a float column is a measurement (a score, a year as 1999.0),
        and taking each distinct value as a class silently gives groups of one."""
        return class_labels(self.labels, f"{where}:{self.names.get('labels', '/labels')}")


def class_labels(values: np.ndarray | None, where: str) -> np.ndarray:
    """``values`` as class names (object array of str); float or missing values are an
    :class:`InputError` naming ``where`` (file:dataset)."""
    if values is None:
        raise InputError(f"{where}: no labels dataset (name one with {{labels}}).")
    values = np.asarray(values)
    if values.dtype.kind in "fc":
        raise InputError(f"{where}: labels have float dtype {values.dtype}; class labels must be "
                         f"integers or strings (a float column is a measurement, not a class).")
    if values.dtype.kind not in "iubOSU":
        raise InputError(f"{where}: labels have dtype {values.dtype}; class labels must be "
                         f"integers or strings.")
    return np.asarray([str(v) for v in values], dtype=object)


def _first_rows(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def _decode(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in ("S", "O"):
        return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                         for v in values], dtype=object)
    return values


class EmbeddingSource:
    """A validated, read-only view of one embedding dataset. Use :func:`open_source` to make one."""

    def __init__(self, selection: Selection, *, layer: int | None = None, dims: int | None = None,
                 sample: int | None = None, seed: int = 0, drop_nonfinite: bool = False,
                 drop_zero: bool = False, allow_external: bool = False,
                 metadata_names: dict | None = None, memory: int = DEFAULT_MEMORY,
                 layer_required: bool = True):
        self.layer_required = layer_required
        self.selection = selection
        self.path = selection.path
        self.drop_nonfinite = drop_nonfinite
        self.drop_zero = drop_zero
        self.allow_external = allow_external
        self.memory = int(memory)
        self.seed = seed
        self._open(metadata_names or {})
        shape = self._dset.shape
        self.full_shape = shape
        self.n_total = shape[0]
        self.n_layers = shape[1] if len(shape) == 3 else None
        self.d_full = shape[-1]
        self.layer = self._check_layer(layer)
        self.dims = self._check_dims(dims)
        self.d = self.dims if self.dims is not None else self.d_full
        self.sample = sample
        self._subset_name = None
        # None: every row of the dataset, with no index array kept (a few bytes per row at most
        # are allowed for bookkeeping: a dump may have 10⁹ rows); else sorted original indices
        self._rows: np.ndarray | None = self._choose_rows(sample, seed)
        self._fresh_state()

    def _fresh_state(self) -> None:
        """What passes learn about the view's rows (reset for every new view)."""
        # original indices dropped (non-finite with drop_nonfinite, zero with drop_zero), known
        # after a complete pass; empty from the start when nothing may be dropped
        self._dropped: np.ndarray | None = (None if self.drop_nonfinite or self.drop_zero
                                            else _NO_ROWS)
        self._n_zero_dropped: int | None = None if self.drop_zero else 0
        self._finite_in: set = set()  # dtypes in which a complete pass found no non-finite row
        self._wide: bool = False  # a block's squares overflow the compute dtype: widen blocks
        self._nonzero_checked = False  # a complete pass found no zero row
        self._scan = None
        self._space = None  # the Space wrapping this view (geomkit.space.as_space)

    def _open(self, metadata_names: dict) -> None:
        """Open the HDF5 file, resolve and validate the dataset, read the metadata."""
        self._file = open_h5(self.path)
        try:
            with damaged(lambda: self._err("")):
                self.dataset = self._resolve(self.selection.dataset)
                self._dset = self._file[self.dataset]
                self._validate_dataset()
                self.metadata = self._read_metadata(metadata_names)
        except BaseException:
            self.close()
            raise

    # a source travels to Dask workers by pickling: the file is opened again there
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_file", None)
        state.pop("_dset", None)
        state["_space"] = None  # its cache stays here
        if isinstance(state.get("path"), str) and os.path.exists(state["path"]):
            # a worker may run in another directory
            state["path"] = os.path.abspath(state["path"])
        return state

    def __setstate__(self, state):
        # opened again on first use, not here: a Dask scheduler unpickles task graphs too, and
        # only the workers that read rows need (and must see) the file
        self.__dict__.update(state)
        self.__dict__["_closed_state"] = True

    def __getattr__(self, name):
        if name in ("_file", "_dset", "_array") and self.__dict__.get("_closed_state"):
            self.__dict__["_closed_state"] = False
            try:
                self._reopen()
            except (InputError, OSError) as exc:
                from geomkit.engine.executor import worker_error

                reason = ("no such file" if not os.path.exists(self.path) else
                          str(exc).split(": ", 1)[-1] if isinstance(exc, InputError)
                          else (exc.strerror or str(exc)))
                error = worker_error(self.path, reason)
                if error is None:
                    raise
                raise error from None
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _reopen(self) -> None:
        self._file = open_h5(self.path)
        with damaged(lambda: self._err("")):
            self._dset = self._file[self.dataset]

    # ------------------------------------------------------------------ opening and validation
    def _err(self, problem: str) -> InputError:
        where = f"{self.path}:{self.dataset}" if getattr(self, "dataset", None) else self.path
        return InputError(f"{where}: {problem}")

    def _resolve(self, dataset: str | None) -> str:
        name = resolve_dataset(self._file, self.path, dataset)
        self._check_links(name)
        try:
            obj = self._file.get(name)
        except (OSError, KeyError) as exc:
            raise InputError(f"{self.path}:{name}: cannot be read ({_short(exc)}).") from None
        if obj is None:
            available = ", ".join(n for n, _, _ in _list_datasets(self._file)[:10]) or "none"
            raise InputError(f"{self.path}: no dataset '{name}' (datasets in the file: {available}).")
        if not isinstance(obj, h5py.Dataset):
            raise InputError(f"{self.path}:{name}: is a group, not a dataset.")
        return obj.name

    def _check_links(self, name: str) -> None:
        parts = [p for p in name.split("/") if p]
        group = self._file
        for i, part in enumerate(parts):
            link = group.get(part, getlink=True)
            if link is None:
                return
            here = "/" + "/".join(parts[:i + 1])
            if isinstance(link, h5py.ExternalLink):
                if not self.allow_external:
                    raise InputError(
                        f"{self.path}:{name}: '{here}' is an external link to "
                        f"{link.filename}:{link.path}; refused (pass {{allow_external}} to follow "
                        f"it).")
                if _dangling(group, part):
                    raise InputError(f"{self.path}:{name}: '{here}' is an external link to "
                                     f"{link.filename}:{link.path}, which cannot be opened "
                                     f"(missing file or object).")
            elif isinstance(link, h5py.SoftLink) and _dangling(group, part):
                raise InputError(f"{self.path}:{name}: '{here}' is a soft link to {link.path}, "
                                 f"which does not exist in the file.")
            if i < len(parts) - 1:
                group = group.get(part)

    def _validate_dataset(self) -> None:
        ds = self._dset
        if ds.is_virtual and not self.allow_external:
            outside = sorted({vs.file_name for vs in ds.virtual_sources()
                              if vs.file_name not in (".", self.path)
                              and os.path.abspath(vs.file_name) != os.path.abspath(self.path)})
            if outside:
                raise self._err(f"is a virtual dataset reading from other files "
                                f"({', '.join(outside[:3])}); refused (pass {{allow_external}}).")
        if ds.external and not self.allow_external:
            raise self._err(f"stores its data in external files ({ds.external[0][0]}); "
                            f"refused (pass {{allow_external}}).")
        kind = ds.dtype.kind
        if kind == "f" and ds.dtype.itemsize not in (2, 4, 8):
            raise self._err(f"has extended-precision float dtype {ds.dtype}; geomkit reads "
                            f"float16, float32 or float64 vectors (convert it, e.g. to float64).")
        if kind != "f":
            what = {"i": "integer", "u": "unsigned integer", "c": "complex", "S": "string",
                    "O": "string", "V": "compound", "b": "boolean"}.get(kind, "non-float")
            raise self._err(f"has {what} dtype {ds.dtype}; geomkit needs floating-point vectors "
                            f"(float16, float32 or float64).")
        if ds.ndim not in (2, 3):
            raise self._err(f"has {ds.ndim} dimensions, shape {ds.shape}; expected (N, d) vectors "
                            f"or an (N, L, d) layer stack.")
        if 0 in ds.shape:
            raise self._err(f"is empty (shape {ds.shape}).")
        if ds.shape[0] < 2:
            raise self._err("has 1 row; at least 2 are needed.")

    def _read_metadata(self, names: dict) -> Metadata:
        parent = self._dset.parent
        meta = Metadata()
        found = []  # (kind, dataset, label) after the checks that need no values
        for kind in METADATA_NAMES:
            asked = names.get(kind)
            name = asked if asked else kind
            try:
                obj = self._file.get(name) if name.startswith("/") else parent.get(name)
            except (OSError, KeyError):
                obj = None
            if obj is None or not isinstance(obj, h5py.Dataset):
                if asked:
                    raise InputError(f"{self.path}: no {kind} dataset '{asked}' "
                                     f"(looked in {parent.name}).")
                continue
            label = f"{self.path}:{obj.name}"
            if obj.ndim != 1:
                if asked:
                    raise InputError(f"{label}: {kind} must be 1-D, found shape {obj.shape}.")
                continue
            if obj.shape[0] != self._dset.shape[0]:
                raise InputError(f"{label}: has {obj.shape[0]} {kind} but {self.dataset} has "
                                 f"{self._dset.shape[0]} rows; metadata must align row by row.")
            found.append((kind, obj, label))
        if not found:
            return meta
        # the variable-length ones (ids, texts) in one guarded child: one fork per file
        where = (found[0][2] if len(found) == 1 else
                 f"{self.path}:{', '.join(obj.name for _, obj, _ in found)}")
        try:
            read = read_many([(obj, label) for _, obj, label in found], where, describe=_short)
        except OSError as exc:
            raise InputError(f"{where}: cannot be read ({_short(exc)}).") from None
        for (kind, obj, label), values in zip(found, read):
            values = _decode(values)
            if kind == "counts":
                if values.dtype.kind not in "iuf":
                    raise InputError(f"{label}: counts must be numeric, found {obj.dtype}.")
                bad = np.flatnonzero(~np.isfinite(values.astype(float)) | (values < 0))
                if bad.size:
                    raise InputError(f"{label}: {bad.size} counts are negative or not finite "
                                     f"(rows {_first_rows(bad)}).")
            setattr(meta, kind, values)
            meta.names[kind] = obj.name
        return meta

    def read_aligned(self, name: str, what: str) -> tuple[np.ndarray, str]:
        """A 1-D dataset with one value per row of the embeddings (``what`` names its use in
        messages), resolved like the metadata: relative to the embeddings' group, or absolute.
        Returns ``(values, "file:/dataset")``."""
        parent = self._dset.parent
        try:
            obj = self._file.get(name) if name.startswith("/") else parent.get(name)
        except (OSError, KeyError, ValueError):
            obj = None
        if not isinstance(obj, h5py.Dataset) or obj.ndim != 1:
            raise InputError(f"{self.path}: no 1-D dataset '{name}' for {what} "
                             f"(looked in {parent.name}).")
        where = f"{self.path}:{obj.name}"
        if obj.shape[0] != self.n_total:
            raise InputError(f"{where}: has {obj.shape[0]} entries but {self.dataset} has "
                             f"{self.n_total} rows; {what} must align row by row.")
        try:
            return _decode(read_values(obj, where)), where
        except OSError as exc:
            raise InputError(f"{where}: cannot be read ({_short(exc)}).") from None

    def _check_layer(self, layer):
        if self.n_layers is None:
            if layer is not None:
                raise UsageError(f"{self.path}:{self.dataset}: {{layer}} needs an (N, L, d) layer "
                                 f"stack, this dataset is {self.full_shape}.")
            return None
        if layer is None and not self.layer_required:
            return self.n_layers - 1
        if layer is None:
            raise UsageError(f"{self.path}:{self.dataset}: is a layer stack of shape "
                             f"{self.full_shape}; pass {{layer_int}} (0..{self.n_layers - 1}, negative "
                             f"counts from the end) or {{layer_all}}.")
        if not -self.n_layers <= layer < self.n_layers:
            raise UsageError(f"{self.path}:{self.dataset}: {{layer}} {layer} is out of range for "
                             f"{self.n_layers} layers.")
        return layer % self.n_layers

    def _check_dims(self, dims):
        if dims is None:
            return None
        if not 1 <= dims <= self.d_full:
            raise UsageError(f"{self.path}:{self.dataset}: {{dims}} {dims} is out of range "
                             f"(vectors have {self.d_full} dimensions).")
        return None if dims == self.d_full else dims

    def _choose_rows(self, sample, seed) -> np.ndarray | None:
        if sample is None or sample >= self.n_total:
            return None
        if sample < 2:
            raise UsageError("{sample} must be at least 2.")
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(self.n_total, size=sample, replace=False)).astype(np.int64)

    # ------------------------------------------------------------------ views
    def view(self, *, layer=..., dims=...) -> "EmbeddingSource":
        """The same file and rows with another layer and/or vector prefix (what earlier passes
        learnt about the rows is not carried over: another layer has other values)."""
        v = copy.copy(self)
        if layer is not ...:
            v.layer = self._check_layer(layer)
        if dims is not ...:
            v.dims = self._check_dims(dims)
            v.d = v.dims if v.dims is not None else v.d_full
        v._fresh_state()
        return v

    def subset(self, rows: np.ndarray, name: str | None = None) -> "EmbeddingSource":
        """A view restricted to the given original rows (e.g. one label's rows for --split-by)."""
        v = self.view()
        v._rows = np.unique(np.asarray(rows, dtype=np.int64))
        v.sample = int(v._rows.size)
        v._subset_name = name
        if v._rows.size < 2:
            raise InputError(f"{self.label}: {name or 'the subset'} has {v._rows.size} rows; "
                             f"at least 2 are needed.")
        return v

    def part(self, lo: int, hi: int) -> "EmbeddingSource":
        """The view's rows at positions lo..hi-1 (before dropping): one task of a parallel pass."""
        v = self.view()
        v._rows = (np.arange(lo, hi, dtype=np.int64) if self._rows is None
                   else self._rows[lo:hi])
        return v

    def dropped_state(self):
        """``(dropped original rows, zero rows among them)`` after a complete pass."""
        if self._dropped is None:
            return None
        return self._dropped, int(self._n_zero_dropped or 0)

    def learn_dropped(self, state, *, nonzero: bool = False) -> None:
        """What a parallel pass over all the parts found (:meth:`dropped_state` merged)."""
        if state is not None and self._dropped is None:
            self._set_dropped(np.sort(state[0]), zero=state[1])
        if nonzero or self.drop_zero:
            self._nonzero_checked = True

    @property
    def label(self) -> str:
        """``file.h5:/dataset`` plus the view, for messages."""
        extra = []
        if self.layer is not None:
            extra.append(f"layer {self.layer}")
        if self.dims is not None:
            extra.append(f"first {self.dims} dims")
        if self._subset_name:
            extra.append(self._subset_name)
        where = f"{self.path}:{self.dataset}" if self.dataset else self.path
        return where + (f" ({', '.join(extra)})" if extra else "")

    @property
    def dtype(self) -> np.dtype:
        return self._dset.dtype

    @property
    def compute_dtype(self) -> np.dtype:
        """float64 for float64 dumps, float32 otherwise (products in float32, sums in float64)."""
        return np.dtype(np.float64) if self._dset.dtype == np.float64 else np.dtype(np.float32)

    @property
    def chunk_rows(self) -> int | None:
        return self._dset.chunks[0] if self._dset.chunks else None

    @property
    def n_selected(self) -> int:
        """Rows of the view before any non-finite row is dropped."""
        return self.n_total if self._rows is None else int(self._rows.size)

    def selected_rows(self) -> np.ndarray:
        """Original indices of the view's rows before dropping (materialised: 8 bytes a row)."""
        return np.arange(self.n_total, dtype=np.int64) if self._rows is None else self._rows

    @property
    def n_dropped(self) -> int | None:
        """Rows dropped (non-finite with ``drop_nonfinite``, all-zero with ``drop_zero``); None
        until a complete pass has run."""
        return None if self._dropped is None else int(self._dropped.size)

    @property
    def n_dropped_zero(self) -> int | None:
        """Of :attr:`n_dropped`, the all-zero rows (``drop_zero``); None until known."""
        return self._n_zero_dropped

    @property
    def rows(self) -> np.ndarray:
        """Original indices of the rows analysed (after --sample and dropping; a scan pass when
        dropping and none has run). Materialised on request: streaming passes never need it."""
        if self._dropped is None:
            self.scan()
        base = self.selected_rows()
        if self._dropped.size:
            base = base[~np.isin(base, self._dropped, assume_unique=True)]
        return base

    @property
    def n(self) -> int:
        if self._dropped is None:
            self.scan()
        return self.n_selected - int(self._dropped.size)

    def block_rows(self, width: int | None = None, copies: int = 4) -> int:
        """Rows per block so that ``copies`` copies of a block (in the compute dtype) fit the
        memory budget."""
        width = width or self.d
        rows = max(1, self.memory // (self.compute_dtype.itemsize * width * copies))
        chunk = self.chunk_rows
        if chunk and rows > chunk:
            rows -= rows % chunk
        return int(rows)

    def stream_block_rows(self, dtype=None) -> int:
        """Rows per block of a streaming pass: within the budget and at most
        :data:`STREAM_BLOCK_BYTES`, so that a block read from the file is still in the CPU cache
        when the pass's products and reductions go over it (whole chunks when chunked)."""
        itemsize = np.dtype(dtype).itemsize if dtype is not None else self.compute_dtype.itemsize
        rows = min(self.block_rows(), max(1, STREAM_BLOCK_BYTES // (itemsize * self.d)))
        chunk = self.chunk_rows
        if chunk:
            rows = min(chunk, self.block_rows()) if rows < chunk else rows - rows % chunk
        return int(rows)

    # ------------------------------------------------------------------ reading
    def _select(self, a: int, b: int):
        dim = slice(0, self.dims) if self.dims is not None else slice(None)
        if self.n_layers is not None:
            return (slice(a, b), self.layer, dim)
        return (slice(a, b), dim)

    def _read_range(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows a..b-1 of the view; into ``out[:b - a]`` (a reused buffer) when given."""
        try:
            if out is None:
                return self._dset[self._select(a, b)]
            return self._read_into(a, b, out)
        except DAMAGE as exc:
            raise self._err(f"rows {a}..{b - 1} cannot be read; the file may be truncated or "
                            f"corrupt ({_short(exc)}).") from None

    def _read_into(self, a: int, b: int, out: np.ndarray) -> np.ndarray:
        """Rows a..b-1 into ``out[:b - a]`` through h5py's low-level read (a hyperslab of the
        file's dataspace, no selection objects per call: ~6% faster than ``read_direct``)."""
        dest = out[:b - a]  # _raw_blocks' buffer: C order, the dataset's dtype
        space = self._dset.id.get_space()
        if self.n_layers is not None:
            space.select_hyperslab((a, self.layer, 0), (b - a, 1, self.d))
        else:
            space.select_hyperslab((a, 0), (b - a, self.d))
        self._dset.id.read(h5py.h5s.create_simple(dest.shape), space, dest)
        return dest

    def read_rows(self, idx: np.ndarray) -> np.ndarray:
        """Vectors of the given original rows (sorted, unique), in the dump's dtype."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return np.empty((0, self.d), dtype=self._dset.dtype)
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        if hi - lo == idx.size:
            return self._read_range(lo, hi)
        out = np.empty((idx.size, self.d), dtype=self._dset.dtype)
        # Windows of at most READ_WINDOW_BYTES and twice the rows asked (a range read holds no
        # more than twice the result): a window holding at least 1/RANGE_DENSITY of its span is
        # read as one range and the rows picked (a row picked by h5py's point selection costs
        # ~70 row reads of a range on a chunked dump); sparser windows by point selection.
        window = max(256, min(2 * idx.size,
                              READ_WINDOW_BYTES // max(1, self.d * self._dset.dtype.itemsize)))
        s = 0
        while s < idx.size:
            e = int(np.searchsorted(idx, idx[s] + window, side="left"))
            part = idx[s:e]
            a, b = int(part[0]), int(part[-1]) + 1
            if (b - a) <= RANGE_DENSITY * part.size:
                out[s:e] = self._read_range(a, b)[part - a]
            else:
                sel = list(self._select(0, 1))
                sel[0] = part
                try:
                    out[s:e] = self._dset[tuple(sel)]
                except DAMAGE as exc:
                    raise self._err(f"rows cannot be read; the file may be truncated or corrupt "
                                    f"({_short(exc)}).") from None
            s = e
        return out

    def _raw_blocks(self, block_rows: int, reuse: bool = False
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rows = self._rows
        if rows is None:
            # one buffer for all blocks (no fresh pages per block) when the caller allows it
            buf = (np.empty((min(block_rows, self.n_total), self.d), dtype=self._dset.dtype)
                   if reuse else None)
            for a in range(0, self.n_total, block_rows):
                b = min(a + block_rows, self.n_total)
                yield np.arange(a, b, dtype=np.int64), self._read_range(a, b, buf)
        else:
            for s in range(0, rows.size, block_rows):
                part = rows[s:s + block_rows]
                yield part, self.read_rows(part)

    def blocks(self, *, unit: bool = False, dtype=None, block_rows: int | None = None,
               progress: str | None = None, reuse: bool = False, sums: bool = False,
               nonzero: bool = False) -> Iterator[Block]:
        """Validated row blocks of the view.

        ``reuse=True`` reads every block into the same buffer: a block's array is then valid only
        until the next block is read (streaming accumulators, which never keep it).

        ``unit=True`` divides each row by its L2 norm and refuses zero rows (cosine needs them);
        ``nonzero=True`` refuses zero rows without normalising (cosine measures over raw rows).
        ``dtype`` defaults to :attr:`compute_dtype`. Non-finite rows raise :class:`InputError`
        naming how many and the first ones, unless the source drops them (``drop_nonfinite``).
        Once a complete pass has found none, later passes over the same view skip that check.

        ``sums=True`` (not with ``unit``) validates with the row sums (engine.rows) and hands
        them on as ``Block.sums``, so that a pass's norms and sums cost no further pass over the
        block.
        """
        dtype = np.dtype(dtype) if dtype is not None else self.compute_dtype
        block_rows = block_rows or self.stream_block_rows(dtype)
        dropped_parts = [] if self._dropped is None else None
        from geomkit.report.progress import progress_bar
        clean = True  # no row dropped so far
        tally = [0]  # zero rows dropped by this pass (drop_zero)
        with progress_bar(self.n_selected, progress) as bar:
            for rows, raw in self._raw_blocks(block_rows, reuse):
                x = np.asarray(raw, dtype=dtype)
                read = rows
                if sums and not unit:
                    rows, x, summed = self._validate_summed(rows, x, tally)
                    if nonzero and not (summed.sq_norms > 0).all():  # _widen made non-zero > 0
                        raise self._zero_error(rows[summed.sq_norms == 0])
                elif (dtype in self._finite_in and not unit and not self._wide
                      and (not nonzero or self._nonzero_checked)):
                    summed = None  # a complete earlier pass checked these rows: none non-finite
                else:
                    (rows, x), summed = self.validate(rows, x, unit=unit, nonzero=nonzero,
                                                     tally=tally), None
                if rows.size != read.size:
                    clean = False
                    if dropped_parts is not None:
                        dropped_parts.append(np.setdiff1d(read, rows, assume_unique=True))
                bar.update(raw.shape[0])
                if rows.size:
                    yield Block(rows, x, summed)
        # the file is open read-only: later passes over this view need not check finiteness again
        if clean:
            self._finite_in.add(dtype)
        if nonzero or unit or self.drop_zero:
            self._nonzero_checked = True
        if dropped_parts is not None:
            self._set_dropped(np.concatenate(dropped_parts) if dropped_parts else _NO_ROWS,
                              zero=tally[0])

    def validate(self, rows: np.ndarray, x: np.ndarray, *, unit: bool = False,
                 nonzero: bool = False, tally: list | None = None):
        """The checks every block passes: non-finite rows (error, or dropped with
        ``drop_nonfinite``), magnitudes whose products would overflow the block's dtype (the
        block is widened to float64, or refused when even float64 overflows), all-zero rows
        (dropped with ``drop_zero``, counted in ``tally[0]``; else, for ``unit`` or
        ``nonzero``, an error) and, for ``unit``, L2 normalisation."""
        # a squared norm is finite unless the row has NaN/Inf or overflows: check those exactly
        with np.errstate(over="ignore", invalid="ignore"):
            sq = row_sq_norms(x)
        rows, x, sq = self._drop_nonfinite(rows, x, np.flatnonzero(~np.isfinite(sq)), sq)
        wide = self._widen(x, sq)
        if wide is not x:
            x, sq = wide, row_sq_norms(wide)
        rows, x, sq = self._drop_zero_rows(rows, x, sq, tally)
        if (unit or nonzero) and not (sq > 0).all():  # _widen made every non-zero square > 0
            raise self._zero_error(rows[sq == 0])
        if unit:
            x = unit_rows(x, sq)
        return rows, x

    def _drop_zero_rows(self, rows, x, sq, tally):
        """With ``drop_zero``: the rows whose squared norm is 0 removed (counted in tally)."""
        if self.drop_zero and sq.size and not (sq > 0).all():
            keep = sq > 0
            if tally is not None:
                tally[0] += int(keep.size - keep.sum())
            return rows[keep], x[keep], sq[keep]
        return rows, x, sq

    def _validate_summed(self, rows: np.ndarray, x: np.ndarray, tally: list | None = None):
        """:meth:`validate` read off the block's row sums: a squared norm is finite unless the
        row has NaN/Inf (or overflows). Returns ``(rows, x, sums)``."""
        summed = row_sums(x)
        suspect = np.flatnonzero(~np.isfinite(summed.sq_norms))
        if suspect.size:  # rare: the sums of what is kept
            rows, x, _ = self._drop_nonfinite(rows, x, suspect)
            summed = row_sums(x)
        wide = self._widen(x, summed.sq_norms)
        if wide is not x:
            x, summed = wide, row_sums(wide)
        if self.drop_zero and not (summed.sq_norms > 0).all():
            rows, x, _ = self._drop_zero_rows(rows, x, summed.sq_norms, tally)
            summed = row_sums(x)
        return rows, x, summed

    def _widen(self, x: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """``x`` in float64 when a squared norm (``sq``, finite rows) is beyond
        :data:`WIDEN_SQ_NORM` in a narrower dtype: its products (scatter, Gram) would overflow
        float32. A float64 block whose squares overflow is refused with one sentence."""
        if not sq.size:
            return x
        top = float(np.max(sq))
        low = float(np.min(sq))
        # squares below float32's normal range lose their digits (1e-40 → 0): a non-zero row
        # with such a square is widened too (a zero row stays a zero row)
        tiny = low < WIDEN_TINY_SQ and bool(np.any(np.abs(x[sq < WIDEN_TINY_SQ]) > 0))
        if x.dtype != np.float64 and (top > WIDEN_SQ_NORM or not np.isfinite(top) or tiny):
            self._wide = True
            x = x.astype(np.float64)
            sq = row_sq_norms(x)
            top = float(np.max(sq))
        if not np.isfinite(top) or top > MAX_SQ_NORM:
            biggest = float(np.max(np.abs(x)))
            raise self._err(f"values up to {biggest:.3g} are too large: their squares overflow "
                            f"float64 (rescale the vectors).")
        return x

    def _drop_nonfinite(self, rows: np.ndarray, x: np.ndarray, suspect: np.ndarray, sq=None):
        """Rows whose quick check failed (``suspect``) checked exactly: an error naming the
        file, or dropped with ``drop_nonfinite``. Returns ``(rows, x, sq)`` (``sq`` kept aligned
        when given)."""
        if suspect.size:
            bad = suspect[~np.isfinite(x[suspect]).all(axis=1)]
            if bad.size:
                if not self.drop_nonfinite:
                    raise self._nonfinite_error(rows[bad])
                keep = np.ones(x.shape[0], dtype=bool)
                keep[bad] = False
                x, rows = x[keep], rows[keep]
                sq = None if sq is None else sq[keep]
        return rows, x, sq

    def _set_dropped(self, dropped: np.ndarray, zero: int = 0) -> None:
        self._dropped = np.asarray(dropped, dtype=np.int64)
        self._n_zero_dropped = int(zero)
        kept = self.n_selected - self._dropped.size
        if kept < 2:
            what = " and ".join(w for w, on in (("non-finite", self.drop_nonfinite),
                                                 ("all-zero", self.drop_zero)) if on)
            raise self._err(f"has {kept} rows left after dropping {self._dropped.size} {what} "
                            f"ones; at least 2 are needed.")

    def scan(self, executor=None) -> "ScanSummary":
        """One streaming pass: non-finite rows, zero rows, norm range. Sets the dropped rows when
        dropping. Memory: the indices of the bad rows only, never an array per row (the 64-bit
        row hashes that count exact duplicates aside: 8 bytes a row). ``executor`` (e.g. a
        :class:`~geomkit.engine.executor.DaskExecutor`) scans contiguous parts of the rows as
        tasks and merges them in row order."""
        if getattr(self, "_scan", None) is not None:
            return self._scan
        from geomkit.engine.duplicates import count_duplicates

        if executor is None:
            parts = [_scan_part(self, 0, self.n_selected, progress="scan")]
        else:
            edges = executor.edges(self.n_selected, self.stream_block_rows())
            parts = executor.map(_scan_part, [(self, a, b) for a, b in edges],
                                 sizes=[b - a for a, b in edges], progress="scan")
        bad, zero_rows, hashes = (np.concatenate([p[i] for p in parts]) if parts else _NO_ROWS
                                  for i in range(3))
        count = sum(p[3] for p in parts)
        total = sum(p[4] for p in parts)
        low = min((p[5] for p in parts), default=np.inf)
        high = max((p[6] for p in parts), default=0.0)
        repeats, groups = count_duplicates(hashes.astype(np.uint64))
        if self._dropped is None:  # dropping: what a complete pass drops is known now
            drop = ([bad] if self.drop_nonfinite else []) + ([zero_rows] if self.drop_zero else [])
            self._set_dropped(np.sort(np.concatenate(drop)) if drop else _NO_ROWS,
                              zero=zero_rows.size if self.drop_zero else 0)
        self._scan = ScanSummary(
            n_rows=self.n_selected, nonfinite_rows=bad,
            zero_rows=zero_rows,
            norm_mean=total / count if count else None, norm_min=low if count else None,
            norm_max=high if count else None, duplicate_rows=repeats, duplicate_groups=groups)
        return self._scan

    def _bad_rows(self, found: np.ndarray, kind: str, verb: str) -> str:
        """"3 of 40 rows contain NaN or Inf (rows 2, 9, 30)": counted over the whole view by a
        scan when that is cheap (up to :data:`SCAN_FOR_MESSAGE` values), else the rows of the
        block at hand (a scan of 10⁹ rows only to count them would take hours)."""
        if self.n_selected * self.d <= SCAN_FOR_MESSAGE:
            every = getattr(self.scan(), kind)
            return f"{every.size} of {self.n_selected} rows {verb} (rows {_first_rows(every)})"
        return (f"rows {_first_rows(found)} {verb} (the first found; the other of the "
                f"{self.n_selected} rows were not all checked)")

    def _nonfinite_error(self, found: np.ndarray) -> InputError:
        err = self._err(f"{self._bad_rows(found, 'nonfinite_rows', 'contain NaN or Inf')}; "
                        f"pass {{drop_nonfinite}} to skip them.")
        err.bad_rows = ("nonfinite", np.asarray(found))  # a Dask part's: told again for the view
        return err

    def _zero_error(self, found: np.ndarray) -> InputError:
        err = self._err(f"{self._bad_rows(found, 'zero_rows', 'are all zero')}; cosine "
                        f"geometry needs non-zero vectors (pass {{drop_zero}} to skip them).")
        err.bad_rows = ("zero", np.asarray(found))
        return err

    def bad_rows_error(self, exc: BaseException) -> BaseException:
        """A task's error about bad rows of one part, told for this whole view (how many of
        its rows, which first); any other error unchanged."""
        bad = getattr(exc, "bad_rows", None)
        if bad is None:
            return exc
        return (self._nonfinite_error if bad[0] == "nonfinite" else self._zero_error)(bad[1])

    def to_array(self, *, unit: bool = False, dtype=None, max_bytes: int | None = None,
                 nonzero: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """All rows of the view in memory: ``(rows, X)``. For analyses that need the whole matrix
        (kNN candidates, small dumps); refuses when it would exceed ``max_bytes``; ``nonzero``
        refuses zero rows (cosine)."""
        dtype = np.dtype(dtype) if dtype is not None else self.compute_dtype
        need = self.n_selected * self.d * dtype.itemsize
        if max_bytes is not None and need > max_bytes:
            raise UsageError(f"{self.label}: this analysis needs the {self.n_selected} x {self.d} "
                             f"matrix in memory ({need / 2**30:.1f} GiB) which exceeds the "
                             f"budget; use {{sample}}.")
        rows_parts, x_parts = [], []
        for blk in self.blocks(unit=unit, dtype=dtype, nonzero=nonzero):
            rows_parts.append(blk.rows)
            x_parts.append(blk.x)
        return np.concatenate(rows_parts), np.concatenate(x_parts)

    # ------------------------------------------------------------------ sweeps
    def sweep(self, layers: str | None, dims: list[int] | None
              ) -> list[tuple[str | None, int | None, "EmbeddingSource"]]:
        """Views for ``--layer all`` and ``--dims a,b,c``: ``[(kind, value, view), ...]``."""
        if layers == "all" and dims and len(dims) > 1:
            raise UsageError("{layer_all} and {dims_sweep} cannot be combined; sweep one at a time.")
        if layers == "all":
            return [("layer", i, self.view(layer=i)) for i in range(self.n_layers)]
        if dims and len(dims) > 1:
            return [("dims", k, self.view(dims=k)) for k in dims]
        return [(None, None, self)]

    def close(self) -> None:
        if self.__dict__.get("_closed_state"):
            return  # a copy that never opened its file
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - closing a broken file must not mask the real error
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _scan_part(source: EmbeddingSource, lo: int, hi: int, progress: str | None = None):
    """The scan of positions lo..hi-1 of a view's rows: (non-finite rows, zero rows, row hashes,
    finite rows, Σ norm, min norm, max norm)."""
    from geomkit.report.progress import progress_bar

    part = source if (lo, hi) == (0, source.n_selected) else source.part(lo, hi)
    nonfinite, zero, hashes = [], [], []
    count, total, low, high = 0, 0.0, np.inf, 0.0

    with progress_bar(part.n_selected, progress) as bar:
        for rows, raw in part._raw_blocks(part.stream_block_rows()):
            bar.update(rows.size)
            scanned = _scan_block(part, rows, raw)
            for store, found in zip((nonfinite, zero, hashes), scanned[:3]):
                if found is not None:
                    store.append(found)
            if scanned[3]:
                count += scanned[3]
                total += scanned[4]
                low, high = min(low, scanned[5]), max(high, scanned[6])
    join = (lambda a, dt: np.concatenate(a) if a else np.empty(0, dt))
    return (join(nonfinite, np.int64), join(zero, np.int64), join(hashes, np.uint64), count,
            total, low, high)


def _scan_block(part, rows, raw):
    """(non-finite rows, zero rows, hashes of the finite rows, finite count, Σ norm, min norm,
    max norm) of one raw block."""
    from geomkit.engine.duplicates import row_hashes

    x = np.asarray(raw, dtype=part.compute_dtype)
    fin = np.isfinite(x).all(axis=1)
    nonfinite = None
    if not fin.all():
        nonfinite = rows[~fin]
        x, rows, raw = x[fin], rows[fin], raw[fin]
    hashes = row_hashes(raw)  # 8 bytes a row
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    if not norms.size:
        return nonfinite, None, hashes, 0, 0.0, np.inf, 0.0
    return (nonfinite, rows[norms == 0], hashes, norms.size, float(norms.sum()),
            float(norms.min()), float(norms.max()))


@dataclass
class ScanSummary:
    n_rows: int
    nonfinite_rows: np.ndarray  # original indices
    zero_rows: np.ndarray  # original indices (finite rows whose norm is 0)
    norm_mean: float | None  # over the finite rows
    norm_min: float | None
    norm_max: float | None
    duplicate_rows: int = 0  # finite rows that repeat an earlier row exactly (64-bit row hash)
    duplicate_groups: int = 0


def open_h5(path: str) -> h5py.File:
    """Open an HDF5 file read-only (no file locking), or raise one clear :class:`InputError`."""
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an HDF5 file.")
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if not is_h5:
        raise InputError(f"{path}: is not an HDF5 file.")
    try:
        return h5py.File(path, "r", locking=False)
    except DAMAGE as exc:
        raise InputError(f"{path}: cannot be opened as HDF5; the file may be truncated or "
                         f"corrupt ({_short(exc)}).") from None


# what h5py raises on a damaged file besides OSError: RuntimeError ("bad symbol table node
# signature"), ValueError (a type with impossible precision), KeyError, TypeError, UnicodeError
DAMAGE = (OSError, RuntimeError, ValueError, KeyError, TypeError, UnicodeError, AttributeError,
          IndexError, OverflowError)


@contextlib.contextmanager
def damaged(where):
    """Turn what h5py raises on a damaged file into one :class:`InputError` naming the file
    (``where()`` gives the "file:dataset: " prefix as an InputError)."""
    try:
        yield
    except GeomkitError:
        raise
    except DAMAGE as exc:
        prefix = str(where()).rstrip(": ")
        raise InputError(f"{prefix}: cannot be read; the file may be truncated or corrupt "
                         f"({_short(exc)}).") from None


def _dangling(group, name: str) -> bool:
    """A soft or external link in ``group`` whose target cannot be reached."""
    try:
        return group.get(name) is None
    except (KeyError, OSError, ValueError):
        return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _list_datasets(f: h5py.File) -> list[tuple[str, tuple, str]]:
    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out.append(("/" + name, obj.shape, str(obj.dtype)))
    try:
        f.visititems(visit)
    except (OSError, KeyError):
        pass
    return out


class _MemoryDataset:
    """What :class:`EmbeddingSource` needs of a dataset (shape, dtype, chunks, slicing) over an
    in-memory or memory-mapped array."""

    chunks = None
    is_virtual = False
    external = None

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, key):
        return np.asarray(self.array[key])


class ArraySource(EmbeddingSource):
    """A view of an in-memory array (``(N, d)`` or an ``(N, L, d)`` stack) with optional
    metadata, read in row blocks like a file (:meth:`geomkit.Space.from_array`)."""

    def __init__(self, array, *, name: str = "array", ids=None, texts=None, labels=None,
                 counts=None, **options):
        self._array = np.asarray(array)
        self._given_meta = {"ids": ids, "texts": texts, "labels": labels, "counts": counts}
        super().__init__(Selection(name, None), **options)

    def _open(self, metadata_names: dict) -> None:
        self._file = None
        self.dataset = None
        self._dset = _MemoryDataset(self._array)
        self._validate_dataset()
        self.metadata = self._given_metadata()

    def _given_metadata(self) -> Metadata:
        meta = Metadata()
        for kind, values in self._given_meta.items():
            if values is None:
                continue
            values = _decode(np.asarray(values))
            if values.ndim != 1 or values.shape[0] != self.n_rows_stored:
                raise InputError(f"{self.path}: {kind} must be 1-D with one value per row "
                                 f"({self.n_rows_stored}), found shape {values.shape}.")
            if kind == "counts":
                if values.dtype.kind not in "iuf":
                    raise InputError(f"{self.path}: counts must be numeric, found {values.dtype}.")
                if (~np.isfinite(values.astype(float)) | (values < 0)).any():
                    raise InputError(f"{self.path}: counts must be finite and non-negative.")
            setattr(meta, kind, values)
            meta.names[kind] = kind
        return meta

    @property
    def n_rows_stored(self) -> int:
        return self._dset.shape[0]

    def _read_into(self, a: int, b: int, out: np.ndarray) -> np.ndarray:
        dest = out[:b - a]
        np.copyto(dest, self._dset.array[self._select(a, b)])
        return dest

    def read_aligned(self, name: str, what: str):
        raise InputError(f"{self.path}: has no datasets beside the vectors; give {what} "
                         f"values directly.")

    def _reopen(self) -> None:
        self._dset = _MemoryDataset(self._array)

    def close(self) -> None:
        pass


class NpySource(ArraySource):
    """A ``.npy`` file (``np.save``) memory-mapped and read in row blocks; no metadata."""

    def __init__(self, path: str, **options):
        self._npy_path = path
        super().__init__(_load_npy(path), name=path, **options)

    def _reopen(self) -> None:
        self._array = _load_npy(self._npy_path)
        super()._reopen()

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_array", None)  # the worker maps the file itself
        return state


def _load_npy(path: str) -> np.ndarray:
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a .npy file.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot be read as a .npy array; the file may be truncated "
                         f"or not written by np.save ({_short(exc)}).") from None
    if not isinstance(array, np.ndarray):
        raise InputError(f"{path}: holds several arrays (.npz); give one .npy array.")
    return array


def is_npy(path: str) -> bool:
    """A ``.npy`` file by its magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(6) == b"\x93NUMPY"
    except OSError:
        return False


def open_source(spec: str | Selection, *, layer: int | None = None, dims: int | None = None,
                sample: int | None = None, seed: int = 0, drop_nonfinite: bool = False,
                drop_zero: bool = False, allow_external: bool = False,
                metadata_names: dict | None = None, memory: int = DEFAULT_MEMORY,
                layer_required: bool = True) -> EmbeddingSource:
    """Open ``PATH[:DATASET]`` (HDF5) or ``PATH`` (a ``.npy`` array, memory-mapped) read-only
    and validate it. Raises :class:`InputError`.

    A layer stack needs ``layer`` unless ``layer_required=False`` (then the last layer is used).
    """
    selection = parse_selection(spec) if isinstance(spec, str) else spec
    options = dict(layer=layer, dims=dims, sample=sample, seed=seed,
                   drop_nonfinite=drop_nonfinite, drop_zero=drop_zero, memory=memory,
                   layer_required=layer_required)
    if not os.path.isdir(selection.path) and is_npy(selection.path):
        if selection.dataset is not None:
            raise UsageError(f"{selection.path}: is a .npy array; it has no dataset "
                             f"'{selection.dataset}' to select.")
        if metadata_names:
            raise UsageError(f"{selection.path}: is a .npy array; metadata ("
                             f"{', '.join(sorted(metadata_names))}) is read from HDF5 dumps only.")
        return NpySource(selection.path, **options)
    return EmbeddingSource(selection, allow_external=allow_external,
                           metadata_names=metadata_names, **options)
