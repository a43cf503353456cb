"""``geomkit info``: what is in a file, which dataset geomkit would analyse, and quick stats."""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np

from geomkit.errors import InputError
from geomkit.io.guarded import run_guarded
from geomkit.report.result import Result


def _attr_repr(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        text = np.array2string(value, threshold=6, max_line_width=80)
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


MAX_TREE_ROWS = 10_000


def _attrs(obj) -> dict:
    """Attribute name -> short text; an attribute that cannot be read says so."""
    out = {}
    try:
        names = list(obj.attrs.keys())
    except (OSError, KeyError, ValueError, RuntimeError):
        return {"(attributes)": "unreadable"}
    for name in names[:100]:
        try:
            out[name] = _attr_repr(obj.attrs[name])
        except (OSError, KeyError, ValueError, TypeError, RuntimeError):
            out[name] = "unreadable"
    if len(names) > 100:
        out["…"] = f"{len(names) - 100} more attributes"
    return out


def file_tree(f: h5py.File) -> list[dict]:
    """Groups, datasets and links of a file, without following links out of the file. A group
    reached again (HDF5 allows hard links to a parent: cycles) is listed once, as a link to where
    it was first seen; at most :data:`MAX_TREE_ROWS` entries are listed."""
    rows: list[dict] = []
    seen = {hash(f.id): "/"}

    def visit(group: h5py.Group, prefix: str) -> None:
        try:
            names = list(group)
        except (KeyError, OSError, ValueError, RuntimeError):
            rows.append({"path": prefix or "/", "kind": "unreadable group"})
            return
        for name in names:
            if len(rows) >= MAX_TREE_ROWS:
                return
            path = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                rows.append({"path": path, "kind": "external link",
                             "target": f"{link.filename}:{link.path}"})
                continue
            try:
                obj = group.get(name)
            except (KeyError, OSError, ValueError):
                obj = None
            if obj is None:  # a soft link to nowhere (or an unreadable object)
                entry = {"path": path, "kind": "broken link"}
                if isinstance(link, h5py.SoftLink):
                    entry["target"] = link.path
                rows.append(entry)
                continue
            attrs = _attrs(obj)
            if isinstance(obj, h5py.Group):
                key = hash(obj.id)
                if key in seen:
                    rows.append({"path": path, "kind": "link to group", "target": seen[key]})
                    continue
                seen[key] = path
                rows.append({"path": path, "kind": "group", "attrs": attrs})
                visit(obj, path)
            else:
                entry = {"path": path, "kind": "dataset", "shape": list(obj.shape),
                         "dtype": str(obj.dtype), "chunks": list(obj.chunks) if obj.chunks else None,
                         "compression": obj.compression, "attrs": attrs}
                if obj.is_virtual:
                    entry["kind"] = "virtual dataset"
                if isinstance(link, h5py.SoftLink):
                    entry["target"] = link.path
                rows.append(entry)

    visit(f, "")
    return rows


@dataclass(frozen=True)
class InfoResult(Result):
    file: str
    root_attrs: dict
    tree: list
    dataset: str | None
    problem: str | None = None
    shape: list | None = None
    dtype: str | None = None
    layer: int | None = None
    metadata: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    command: str = "info"

    @property
    def title(self) -> str:
        return f"geomkit info {self.file}"

    def to_dict(self) -> dict:
        out = {"file": self.file, "dataset": self.dataset, "shape": self.shape, "dtype": self.dtype}
        if self.layer is not None:
            out["stats_layer"] = self.layer
        if self.problem:
            out["problem"] = self.problem
        out["metadata"] = self.metadata
        out.update(self.stats)
        out["attrs"] = self.root_attrs
        out["tree"] = self.tree
        return out


def inspect_file(spec: str, open_view, *, scan: bool = False) -> InfoResult:
    """Describe a file; ``open_view(spec)`` opens the analysed dataset the way commands would
    (a :class:`geomkit.Space`).

    The rows are read only with ``scan`` (one streaming pass: NaN/Inf rows, zero rows, norms);
    otherwise ``info`` answers from the file's metadata alone, at once even for 10⁹ rows. A
    ``.npy`` array has no tree or attributes: only the array is described."""
    from geomkit.io.selection import parse_selection
    from geomkit.io.source import is_npy, open_h5

    selection = parse_selection(spec)
    tree, root_attrs = [], {}
    if not is_npy(selection.path):
        f = open_h5(selection.path)
        try:
            # attributes are variable-length strings more often than not: read in a guarded child
            tree, root_attrs = run_guarded(lambda: (file_tree(f), _attrs(f)), selection.path)
        finally:
            f.close()
    base = dict(file=selection.path, root_attrs=root_attrs, tree=tree)
    try:
        space = open_view(spec)
    except InputError as exc:
        if selection.dataset is not None:
            raise
        return InfoResult(dataset=None, problem=str(exc), **base)
    with space:
        source = space.source
        stats = {"n": int(source.n_total), "d": int(source.d_full), "layers": source.n_layers,
                 "scanned": scan}
        if scan:
            s = source.scan(executor=space.executor if space.executor.name == "dask" else None)
            stats.update({
                "rows_scanned": int(s.n_rows),
                "finite_rows": int(s.n_rows - s.nonfinite_rows.size),
                "nonfinite_rows": int(s.nonfinite_rows.size),
                "first_nonfinite_rows": s.nonfinite_rows[:5].tolist(),
                "zero_rows": int(s.zero_rows.size),
                "first_zero_rows": s.zero_rows[:5].tolist(),
                "norm_mean": s.norm_mean, "norm_min": s.norm_min, "norm_max": s.norm_max,
                "duplicate_rows": s.duplicate_rows, "duplicate_groups": s.duplicate_groups,
            })
        return InfoResult(dataset=source.dataset, shape=list(source.full_shape),
                          dtype=str(source.dtype), layer=source.layer,
                          metadata=dict(source.metadata.names), stats=stats, **base)
