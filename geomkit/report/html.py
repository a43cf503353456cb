"""One self-contained HTML page per result: plotly.js inlined (works with no network) when the page
has a figure, every user string escaped."""

from __future__ import annotations

import html
import math

from geomkit import __version__
from geomkit.io.writers import jsonable, write_text
from geomkit.report.figures import build_figures
from geomkit.report.result import Result, flatten

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.table-wrap{overflow-x:auto;max-width:100%;margin:.5em 0}
table{border-collapse:collapse;font-size:.9em;margin:0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top;max-width:40em}
th{background:#f5f5f5}.num{text-align:right;font-variant-numeric:tabular-nums}
.notes li{margin:.3em 0}.meta{color:#666;font-size:.85em}
"""


def _cell(value) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}" if math.isfinite(value) else "–"
        return f'<td class="num">{text}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    if value is None:
        return "<td>–</td>"
    return f"<td>{html.escape(str(value))}</td>"


def frame_html(frame, max_rows: int = 200) -> str:
    cols = [html.escape(str(c)) for c in frame.columns]
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        body.append("<tr>" + "".join(_cell(jsonable(v)) for v in row) + "</tr>")
    more = ""
    if len(frame) > max_rows:
        more = f'<p class="meta">first {max_rows} of {len(frame)} rows</p>'
    return _wrap(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>") + more


def _wrap(table: str) -> str:
    """Wide tables scroll sideways inside the page instead of being cut off at its edge."""
    return f'<div class="table-wrap">{table}</div>'


def result_parts(result: Result, *, level: int = 2) -> tuple[list[str], int]:
    """The HTML of a result's body — reading, summary table, figures, tables — and how many
    figures it drew (``level``: the heading level of its sub-sections)."""
    import pandas as pd

    data = jsonable(result.to_dict())
    # lists of objects and objects nested two deep (per-method measures) are shown as tables
    flat = {k: v for k, v in flatten(data).items()
            if not (isinstance(v, list) and v and isinstance(v[0], dict)) and k.count(".") < 2}
    summary = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v if not isinstance(v, list) else str(v))}</tr>"
                      for k, v in flat.items())
    h = f"h{level}"
    parts = []
    notes = result.notes()
    if notes:
        parts.append(f'<{h}>Reading</{h}><ul class="notes">'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append(f"<{h}>Summary</{h}>{_wrap(f'<table>{summary}</table>')}")
    figures = build_figures(result)
    for fig in figures:
        # to_html escapes "</" inside the JSON it embeds, so texts cannot close the script tag
        parts.append(figure_html(fig))
    for title, table in result.tables():
        frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
        parts.append(f"<{h}>{html.escape(title)}</{h}>{frame_html(frame)}")
    return parts, len(figures)


def figure_html(fig) -> str:
    """One plotly figure as a div (plotly.js itself is inlined once per page, by :func:`page`)."""
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False,
                       config={"displaylogo": False})


def page(title: str, body: list[str], *, plotly: bool, style: str = "") -> str:
    """A whole self-contained page; plotly.js (~4.8 MB) inlined once, only when it draws."""
    from plotly.offline import get_plotlyjs

    script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if plotly else ""
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}{style}</style>{script}</head>"
            f"<body>{''.join(body)}</body></html>")


def render_html(result: Result, *, source_label: str = "") -> str:
    parts = [f"<h1>{html.escape(result.title or result.command)}</h1>",
             f'<p class="meta">{html.escape(source_label)} · geomkit {html.escape(__version__)}</p>']
    body, n_figures = result_parts(result)
    return page(f"geomkit {result.command}: {source_label}", parts + body, plotly=n_figures > 0)


def write_html(path: str, result: Result, *, source_label: str = "") -> None:
    write_text(path, render_html(result, source_label=source_label))
