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


def render_table(result: Result) -> str:
    import pandas as pd

    data = jsonable(result.to_dict())
    # lists of objects and objects nested two deep (per-method measures) are shown as tables
    flat = {k: v for k, v in flatten(data).items()
            if not (isinstance(v, list) and v and isinstance(v[0], dict)) and k.count(".") < 2}
    width = max((len(k) for k in flat), default=0)
    lines = [result.title or result.command]
    lines += [f"  {k.ljust(width)}  {_fmt(v)}" for k, v in flat.items()]
    for title, table in result.tables():
        frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
        lines += ["", title]
        with pd.option_context("display.max_colwidth", 60, "display.width", 160,
                               "display.max_rows", 60):
            lines += ["  " + line for line in frame.to_string(index=False).splitlines()]
    notes = result.notes()
    if notes:
        lines += [""] + [f"* {n}" for n in notes]
    return "\n".join(lines)


RENDERERS = {"json": render_json, "csv": render_csv, "table": render_table}
