"""result -> text table | JSON | CSV, the one rendering path of every command."""

from __future__ import annotations

import csv
import io
import math

from geomkit.io.writers import dumps_json, jsonable
from geomkit.report.result import Result, flatten


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, list):
        text = ", ".join(_fmt(v) for v in value[:8])
        return f"[{text}{', ...' if len(value) > 8 else ''}]"
    return str(value)


def render_json(result: Result) -> str:
    return dumps_json(result.to_dict())


def render_csv(result: Result) -> str:
    rows = [jsonable(r) for r in result.summary_rows()]
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


TABLE_FALLBACK_WIDTH = 100  # when stdout is not a terminal and COLUMNS is unset
_MIN_TEXT_WIDTH = 8
_INDENT = "  "
_GAP = "  "


def terminal_width() -> int:
    """Columns of the terminal (``COLUMNS`` wins; :data:`TABLE_FALLBACK_WIDTH` when stdout is not a
    terminal); never below 20."""
    import shutil
    return max(20, shutil.get_terminal_size((TABLE_FALLBACK_WIDTH, 24)).columns)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _column_cells(values: list) -> tuple[list[str], bool]:
    """Cell texts of one column and whether it is numeric (right-aligned). Floats share one
    number of decimals per column (4 to 6, none when all are whole), scientific where needed."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and not math.isfinite(v))]
    numeric = bool(present) and all(_is_number(v) for v in present)
    if not numeric:
        return [_fmt(v) if not isinstance(v, str) else v for v in values], False
    floats = [float(v) for v in present if isinstance(v, float)]
    whole = all(f.is_integer() and abs(f) < 1e15 for f in floats)
    small = [abs(f) for f in floats if 1e-3 <= abs(f) < 1]
    # 4 decimals, more (up to 6) so that the smallest value keeps 3 significant digits
    decimals = min(6, max(4, 2 - math.floor(math.log10(min(small))))) if small else 4
    cells = []
    for v in values:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            cells.append("-")
        elif isinstance(v, int) or whole:
            cells.append(str(int(v)))
        elif v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            cells.append(f"{v:.4g}")
        else:
            cells.append(f"{v:.{decimals}f}")
    return cells, True


def _oneline(text: str) -> str:
    return " ".join(str(text).split()) if any(c in str(text) for c in "\n\r\t") else str(text)


def format_frame(frame, width: int, max_rows: int = 60) -> list[str]:
    """A DataFrame as text lines no wider than ``width``: text columns left-aligned and cut with
    "…" (widest first) down to a few characters, numbers right-aligned; columns that still do not
    fit continue in further blocks, each repeating the first column."""
    if len(frame.columns) == 0:
        return [f"{_INDENT}(no columns)"]
    shown = frame.head(max_rows)
    names = [_oneline(c) for c in frame.columns]
    columns = []
    for j, name in enumerate(names):
        values = [jsonable(v) for v in shown.iloc[:, j].tolist()]
        cells, numeric = _column_cells(values)
        cells = [_oneline(c) for c in cells]
        natural = max([len(name)] + [len(c) for c in cells])
        least = natural if numeric else min(natural, max(_MIN_TEXT_WIDTH, min(len(name), 16)))
        columns.append({"name": name, "cells": cells, "numeric": numeric, "natural": natural,
                        "width": natural, "min": least})
    avail = width - len(_INDENT)

    def total(cols, key="width"):
        return sum(c[key] for c in cols) + len(_GAP) * max(0, len(cols) - 1)

    def fit(cols):
        """Natural widths, then the widest text column cut down first, until the columns fit or
        every text column is at its minimum."""
        for c in cols:
            c["width"] = c["natural"]
        while total(cols) > avail:
            text = [c for c in cols if c["width"] > c["min"]]
            if not text:
                break
            max(text, key=lambda c: c["width"])["width"] -= 1

    def cell(c, text):
        text = _clip(text, c["width"])
        return text.rjust(c["width"]) if c["numeric"] else text.ljust(c["width"])

    # columns that do not fit even with text cut to its minimum continue in further blocks, each
    # repeating the first column (the row / method / layer the values belong to)
    blocks, current = [], [0]
    for j in range(1, len(columns)):
        if len(current) > 1 and total([columns[i] for i in current + [j]], "min") > avail:
            blocks.append(current)
            current = [0, j]
        else:
            current.append(j)
    blocks.append(current)
    lines = []
    for b, block in enumerate(blocks):
        cols = [columns[i] for i in block]
        fit(cols)
        if b:
            lines.append("")
        lines.append(_clip((_INDENT + _GAP.join(cell(c, c["name"]) for c in cols)).rstrip(), width))
        for r in range(len(shown)):
            line = _INDENT + _GAP.join(cell(c, c["cells"][r]) for c in cols)
            lines.append(_clip(line.rstrip(), width))
    if len(frame) > max_rows:
        lines.append(f"{_INDENT}... {len(frame) - max_rows} more rows (--format json / --per-item)")
    return lines


def render_table(result: Result) -> str:
    import textwrap

    import pandas as pd

    width = terminal_width()
    data = jsonable(result.to_dict())
    # lists of objects and objects nested two deep (per-method measures) are shown as tables
    flat = {k: v for k, v in flatten(data).items()
            if not (isinstance(v, list) and v and isinstance(v[0], dict)) and k.count(".") < 2}
    keyw = max((len(k) for k in flat), default=0)
    lines = textwrap.wrap(result.title or result.command, width=width, subsequent_indent=_INDENT,
                          break_on_hyphens=False) or [result.command]
    for k, v in flat.items():
        line = f"{_INDENT}{k.ljust(keyw)}  {_oneline(_fmt(v))}"
        lines.append(_clip(line, width))
    for title, table in result.tables():
        frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
        lines += [""] + textwrap.wrap(title, width=width, break_on_hyphens=False)
        lines += format_frame(frame, width)
    notes = result.notes()
    if notes:
        lines.append("")
        for n in notes:
            lines += textwrap.wrap(n, width=width, initial_indent="* ", subsequent_indent="  ",
                                   break_long_words=True, break_on_hyphens=False) or ["*"]
    return "\n".join(lines)


RENDERERS = {"json": render_json, "csv": render_csv, "table": render_table}
