"""Figures for ``geomkit intdim``: the LID histogram, GRIDE's ID against scale, highest-LID
items. The profile across layers / prefixes is the sweep's small multiples (figures.py)."""

import numpy as np

from geomkit.analysis.intdim import IntdimResult
from geomkit.report.figures import figures_for, item_labels, safe_text


@figures_for(IntdimResult)
def intdim_figures(result: IntdimResult) -> list:
    import plotly.graph_objects as go

    from geomkit.report.readings_intdim import highest_lid

    figs = []
    pos = result.distinct_positions()
    lid = result.lid_values[pos]
    lid = lid[np.isfinite(lid)]
    if lid.size:
        hist = go.Figure(go.Histogram(x=lid, nbinsx=min(80, max(10, lid.size // 20)),
                                      hovertemplate="LID %{x}: %{y} items<extra></extra>"))
        for name, value, dash in (("mean", result.lid["mean"], "dash"),
                                  ("MLE", result.mle, "dot"), ("TwoNN", result.twonn, "dashdot")):
            if value is not None:
                hist.add_vline(x=value, line={"dash": dash, "color": "gray"},
                               annotation_text=f"{name} {value:.2f}",
                               annotation_position="top right")
        hist.update_layout(title=f"Local intrinsic dimension (MLE, k = {result.k}) of "
                                 f"{lid.size} distinct items",
                           xaxis_title="LID", yaxis_title="items")
        figs.append(hist)
    if result.gride_scales:
        s = result.gride_scales
        fig = go.Figure(go.Scatter(
            x=[row["n2"] for row in s], y=[row["id"] for row in s], mode="lines+markers",
            error_y={"type": "data", "array": [row["error"] for row in s]},
            customdata=[[row["n1"], row["radius"]] for row in s],
            hovertemplate="n1 = %{customdata[0]}, n2 = %{x}<br>mean r_n2 = %{customdata[1]:.4g}"
                          "<br>ID = %{y:.3f}<extra></extra>"))
        fig.update_layout(title="GRIDE ID against neighbourhood scale (n2 = 2·n1): a drop at "
                                "small scales is noise, a plateau the manifold dimension",
                          xaxis={"title": "neighbour order n2", "type": "log"},
                          yaxis_title="intrinsic dimension")
        figs.append(fig)
    if result.lid_values is not None and result.lid_values.size:
        order = highest_lid(result, 20)
        labels = item_labels(order, rows=result.rows, ids=result.ids, limit=30)
        hover = []
        for i in order:
            parts = [safe_text(result.ids[i]) if result.ids is not None
                     else f"row {result.rows[i]}"]
            if result.texts is not None:
                parts.append(safe_text(result.texts[i], 160))
            hover.append("<br>".join(parts))
        values = np.where(np.isfinite(result.lid_values[order]), result.lid_values[order], np.nan)
        bars = go.Figure(go.Bar(y=labels, x=values, orientation="h", hovertext=hover,
                                hovertemplate="%{hovertext}<br>LID = %{x:.2f}<extra></extra>"))
        bars.update_layout(title="Items with the highest local ID",
                           xaxis_title="LID (local MLE)",
                           yaxis={"type": "category", "autorange": "reversed",
                                  "automargin": True, "title": {"text": "item (row: id)"}},
                           height=max(450, 140 + 22 * len(order)))
        figs.append(bars)
    return figs
