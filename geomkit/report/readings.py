"""result -> tables, notes and CSV rows: what the table view and the HTML page show besides the
numbers and the figures. One module per command (``readings_<name>.py``) registers its functions
with :func:`tables_for`, :func:`notes_for` and :func:`summary_for`; a result holds numbers and
per-item arrays only, and :class:`geomkit.report.result.Result` finds its readings here (the
modules are imported on first use, so a result built in Python reads the same as the CLI's).
"""

from __future__ import annotations

import importlib
from typing import Callable

READING_MODULES = ("isotropy", "hubness", "depth", "norms", "infogain", "transform", "info",
                   "axes", "compare", "translate", "check", "intdim", "drift")
_REGISTRY: dict[str, dict[type, Callable]] = {"tables": {}, "notes": {}, "summary_rows": {}}
_loaded = False


def _register(kind: str, result_type: type):
    def deco(fn):
        _REGISTRY[kind][result_type] = fn
        return fn
    return deco


def tables_for(result_type: type):
    """Register ``fn(result) -> [(title, DataFrame), ...]`` (table view and HTML page)."""
    return _register("tables", result_type)


def notes_for(result_type: type):
    """Register ``fn(result) -> [str, ...]``: the numbers read in plain words."""
    return _register("notes", result_type)


def summary_for(result_type: type):
    """Register ``fn(result) -> [dict, ...]``: the rows of ``--format csv``."""
    return _register("summary_rows", result_type)


def reading(kind: str, result):
    """The registered ``kind`` function of ``result``'s type (or of a base type), or None."""
    global _loaded
    if not _loaded:
        _loaded = True
        for name in READING_MODULES:
            importlib.import_module(f"geomkit.report.readings_{name}")
    for cls in type(result).__mro__:
        fn = _REGISTRY[kind].get(cls)
        if fn is not None:
            return fn
    return None


def paired_items_frame(order, rows_a, rows_b, *, ids=None, texts=None, **columns):
    """The table of chosen paired items (compare, translate): row in A, id, row in B, the given
    per-item columns, text."""
    import pandas as pd

    frame = pd.DataFrame({"row": rows_a[order], "row_b": rows_b[order],
                          **{name: values[order] for name, values in columns.items()}})
    if ids is not None:
        frame.insert(1, "id", ids[order])
    if texts is not None:
        frame["text"] = texts[order]
    return frame
