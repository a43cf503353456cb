"""Figures for ``geomkit hubness``: k-occurrence distributions per reduction, top-hub bars."""

import numpy as np

from geomkit.analysis.hubness import HubnessResult
from geomkit.report.figures import figures_for, item_labels, safe_text


@figures_for(HubnessResult)
def hubness_figures(result: HubnessResult) -> list:
    import plotly.graph_objects as go

    dist = go.Figure()
    top = max([float(np.max(v)) for v in result.kocc.values() if len(v)] + [result.hub_size * result.k])
    for method, kocc in result.kocc.items():
        values, counts = np.unique(kocc, return_counts=True)
        # linear x: N_k = 0 (antihubs, never anyone's neighbour) must stay on the plot
        dist.add_trace(go.Scatter(x=values, y=counts, mode="lines+markers", name=safe_text(method),
                                  hovertemplate="N_k = %{x}: %{y} items"))
    dist.update_layout(title=f"k-occurrence distribution (k = {result.k}; {result.n} items; "
                             f"N_k = 0: antihubs)",
                       xaxis_title="k-occurrence N_k", yaxis_title="number of items (log)",
                       xaxis={"type": "linear", "range": [-0.03 * top - 0.5, 1.03 * top + 0.5]},
                       yaxis={"type": "log", "dtick": 1})
    dist.add_vline(x=result.hub_size * result.k, line={"dash": "dot", "color": "gray"},
                   annotation_text="hub threshold", annotation_position="top right")
    figs = [dist]
    base = result.kocc.get("none")
    if base is not None:
        order = np.argsort(-base, kind="stable")[:20]
        # unique categories: row number + truncated id (two ids cut to the same 30 characters
        # would otherwise merge into one bar); the full id and text go in the hover
        labels = item_labels(order, rows=result.rows, ids=result.ids, limit=30)
        hover = []
        for i in order:
            parts = [safe_text(result.ids[i]) if result.ids is not None else f"row {result.rows[i]}"]
            if result.texts is not None:
                parts.append(safe_text(result.texts[i], 160))
            hover.append("<br>".join(parts))
        bars = go.Figure()
        for method, kocc in result.kocc.items():
            bars.add_trace(go.Bar(y=labels, x=kocc[order], name=safe_text(method), hovertext=hover,
                                  orientation="h", hovertemplate="%{hovertext}<br>N_k = %{x}"))
        # horizontal bars: long ids stay readable; the top hub on top
        bars.update_layout(title="Top hubs (by k-occurrence without reduction): k-occurrence "
                                 "before / after each reduction",
                           xaxis_title="k-occurrence", barmode="group",
                           yaxis={"type": "category", "autorange": "reversed", "automargin": True,
                                  "title": {"text": "item (row: id)"}},
                           height=max(450, 140 + len(order) * (8 + 7 * len(result.kocc))))
        figs.append(bars)
    return figs
