"""Parse ``PATH[:DATASET]`` selections and resolve which dataset of a file is analysed.

Rules (docs/format.md): the part before the first ``:`` that names an existing file is the path;
the rest, if any, is the dataset (``/`` prefix optional). Without a dataset, ``embeddings`` in the
root group is used if present, else the only 2-D/3-D floating dataset of the file, else an error
that lists the candidates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py

from geomkit.errors import InputError

DEFAULT_DATASET = "embeddings"


@dataclass(frozen=True)
class Selection:
    path: str
    dataset: str | None  # None: resolve by the default rule

    def __str__(self) -> str:
        return f"{self.path}:{self.dataset}" if self.dataset else self.path


def parse_selection(text: str) -> Selection:
    """Split ``file.h5:/group/dataset`` into path and dataset; the path must exist."""
    if os.path.exists(text):
        return Selection(text, None)
    pos = text.find(":")
    while pos != -1:
        head, tail = text[:pos], text[pos + 1:]
        if head and os.path.exists(head):
            dataset = tail.strip() or None
            if dataset is not None and not dataset.startswith("/"):
                dataset = "/" + dataset
            return Selection(head, dataset)
        pos = text.find(":", pos + 1)
    head = text.split(":", 1)[0] if ":" in text and not os.path.exists(text) else text
    raise InputError(f"{head}: no such file.")


def _float_datasets(f: h5py.File) -> list[tuple[str, tuple, str]]:
    """All 2-D/3-D floating datasets reachable without leaving the file."""
    found: list[tuple[str, tuple, str]] = []
    seen = {hash(f.id)}  # a group hard-linked under itself is visited once (cycles are legal)

    def visit(group: h5py.Group, prefix: str) -> None:
        try:
            names = list(group)
        except (KeyError, OSError, ValueError, RuntimeError):
            return
        for name in names:
            try:
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    continue
                obj = group.get(name)
            except (KeyError, OSError, ValueError, RuntimeError):
                continue
            full = f"{prefix}/{name}"
            if isinstance(obj, h5py.Group):
                if hash(obj.id) not in seen:
                    seen.add(hash(obj.id))
                    visit(obj, full)
            elif isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) and obj.dtype.kind == "f":
                found.append((full, obj.shape, str(obj.dtype)))

    visit(f, "")
    return found


def resolve_dataset(f: h5py.File, path: str, dataset: str | None) -> str:
    """Return the absolute dataset name to analyse in the open file ``f``."""
    if dataset is not None:
        return dataset
    link = f.get(DEFAULT_DATASET, getlink=True)
    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
        return "/" + DEFAULT_DATASET  # the reader says where the link goes, or why it fails
    if DEFAULT_DATASET in f and isinstance(f.get(DEFAULT_DATASET), h5py.Dataset):
        return "/" + DEFAULT_DATASET
    candidates = _float_datasets(f)
    if len(candidates) == 1:
        return candidates[0][0]
    if not candidates:
        raise InputError(f"{path}: no 2-D or 3-D floating-point dataset found; "
                         f"name one as {path}:/group/dataset.")
    listing = ", ".join(f"{name} {shape} {dt}" for name, shape, dt in candidates[:10])
    more = f" and {len(candidates) - 10} more" if len(candidates) > 10 else ""
    raise InputError(f"{path}: several candidate datasets ({listing}{more}) and none is called "
                     f"'{DEFAULT_DATASET}'; choose one as {path}:DATASET.")
