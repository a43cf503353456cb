"""Figures for ``geomkit hubness``: k-occurrence distributions (log-log) per reduction."""

import numpy as np

from geomkit.analysis.hubness import HubnessResult
from geomkit.report.figures import figures_for, safe_text


@figures_for(HubnessResult)
def hubness_figures(result: HubnessResult) -> list:
    import plotly.graph_objects as go

    dist = go.Figure()
    for method, kocc in result.kocc.items():
        values, counts = np.unique(kocc, return_counts=True)
        keep = values > 0
        dist.add_trace(go.Scatter(x=values[keep], y=counts[keep], mode="lines+markers", name=method))
    dist.update_layout(title=f"k-occurrence distribution (k = {result.k}; {result.n} items)",
                       xaxis_title="k-occurrence N_k", yaxis_title="number of items",
                       xaxis_type="log", yaxis_type="log")
    figs = [dist]
    base = result.kocc.get("none")
    if base is not None:
        order = np.argsort(-base, kind="stable")[:20]
        labels = [safe_text(result.ids[i] if result.ids is not None else result.rows[i], 40)
                  for i in order]
        hover = [safe_text(result.texts[i], 160) if result.texts is not None else ""
                 for i in order]
        bars = go.Figure()
        for method, kocc in result.kocc.items():
            bars.add_trace(go.Bar(x=labels, y=kocc[order], name=method, hovertext=hover))
        bars.update_layout(title="Top hubs: k-occurrence before / after each reduction",
                           xaxis_title="item", yaxis_title="k-occurrence", barmode="group")
        figs.append(bars)
    return figs
