"""The ``geomkit report`` page: a summary with a traffic light per concern, a map of the space, then
one section per analysis — the same readings, tables and figures as the command's own page, the
command line that reproduces its numbers — in one self-contained HTML (plotly.js inlined once)."""

from __future__ import annotations

import html

import numpy as np

from geomkit import __version__
from geomkit.analysis.suite import ReportResult, SpaceMap
from geomkit.report.figures import safe_text
from geomkit.report.html import figure_html, page, result_parts

_STYLE = """
.verdicts{list-style:none;padding-left:0}.verdicts li{margin:.35em 0}
.light{display:inline-block;width:.9em;height:.9em;border-radius:50%;margin-right:.5em;
vertical-align:-.1em}.green{background:#2e9e44}.amber{background:#e6a100}.red{background:#d33}
.grey{background:#aaa}.cmd{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;
background:#f5f5f5;padding:.3em .5em;overflow-x:auto;white-space:pre}
.error{color:#a00}section{margin-top:2em}
"""


def map_figure(m: SpaceMap):
    """WebGL scatter of the 2-D projection; a dropdown recolours it (norm, k-occurrence,
    label); hover shows id and text."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    hover = None
    if m.ids is not None or m.texts is not None:
        hover = []
        for i in range(m.rows.size):
            parts = [safe_text(m.ids[i], 80)] if m.ids is not None else [f"row {m.rows[i]}"]
            if m.texts is not None:
                parts.append(safe_text(m.texts[i], 120))
            hover.append("<br>".join(parts))
    options = []
    for name, (values, kind) in m.colours.items():
        if kind == "category":
            cats, codes = np.unique(values.astype(str), return_inverse=True)
            palette = qualitative.Plotly
            n = max(len(cats), 1)
            scale = []
            for j in range(n):  # a stepped scale: code j -> colour j
                colour = palette[j % len(palette)]
                scale += [[j / n, colour], [(j + 1) / n, colour]]
            options.append((name, codes.astype(float), scale, False,
                            ", ".join(safe_text(c, 30) for c in cats[:12])
                            + (" …" if len(cats) > 12 else ""), (-0.5, n - 0.5)))
        else:
            options.append((name, np.asarray(values, dtype=float), "Viridis", True, "", None))
    first = options[0] if options else None
    marker = {"size": 3, "opacity": 0.7}
    if first is not None:
        marker.update(color=first[1], colorscale=first[2], showscale=first[3],
                      colorbar={"title": {"text": safe_text(first[0], 30)}})
    fig = go.Figure(go.Scattergl(x=m.xy[:, 0], y=m.xy[:, 1], mode="markers", marker=marker,
                                 hovertext=hover, hoverinfo="text" if hover else "x+y"))
    buttons = []
    for name, values, scale, numeric, legend, crange in options:
        update = {"marker.color": [values], "marker.colorscale": [scale],
                  "marker.showscale": [numeric], "marker.colorbar.title.text": [name]}
        if crange is not None:
            update.update({"marker.cmin": [crange[0]], "marker.cmax": [crange[1]]})
        else:
            update.update({"marker.cmin": [None], "marker.cmax": [None]})
        buttons.append({"label": safe_text(name, 40), "method": "restyle", "args": [update]})
    shown = (f"{m.rows.size:,} of {m.n_total:,} rows (seeded sample)"
             if m.rows.size < m.n_total else f"all {m.n_total:,} rows")
    if m.explained is not None:
        axes = {"xaxis_title": f"PC1 ({100 * m.explained[0]:.1f}% of the variance)",
                "yaxis_title": f"PC2 ({100 * m.explained[1]:.1f}%)"}
    else:
        axes = {"xaxis_title": "UMAP 1", "yaxis_title": "UMAP 2"}
    fig.update_layout(
        title=f"{m.method.upper()} map of the space: {shown}", height=650, **axes,
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right",
                      "y": 1.12, "yanchor": "top", "showactive": True}] if buttons else [])
    return fig


def render_report(r: ReportResult) -> str:
    e = html.escape
    body = [f"<h1>{e(r.title)}</h1>",
            f'<p class="meta">{r.n:,} rows × {r.d} dimensions'
            + (" · --quick: the O(N²) parts on a seeded sample (said in each section)"
               if r.quick else "") + f" · geomkit {e(__version__)}</p>",
            "<h2>Summary</h2>"]
    if r.verdicts:
        body.append('<ul class="verdicts">' + "".join(
            f'<li><span class="light {e(v.light)}" title="{e(v.light)}"></span>'
            f"<b>{e(v.concern)}</b>: {e(v.text)}</li>" for v in r.verdicts) + "</ul>")
    failed = [s for s in r.sections if s.error]
    if failed:
        body.append("<p>" + ", ".join(e(s.name) for s in failed)
                    + " could not run here (see below).</p>")
    n_figures = 0
    if r.space_map is not None:
        body.append('<section><h2>Map of the space</h2><p class="meta">Colour by the dropdown; '
                    'hover for the id and text.</p>')
        body.append(figure_html(map_figure(r.space_map)))
        body.append("</section>")
        n_figures += 1
    for s in r.sections:
        body.append(f"<section><h2>{e(s.title)}</h2>")
        if s.argv:
            body.append(f'<div class="cmd">{e(s.command_line)}</div>')
        if s.sample:
            body.append(f'<p class="meta">on a seeded sample of {s.sample:,} rows (--quick)</p>')
        if s.error:
            body.append(f'<p class="error">Not computed: {e(s.error)}</p>')
        else:
            parts, figs = result_parts(s.result, level=3)
            body += parts
            n_figures += figs
        body.append("</section>")
    return page(r.title, body, plotly=n_figures > 0, style=_STYLE)
