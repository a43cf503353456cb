"""Figures for ``geomkit norms``: histogram per group, norm vs frequency, Δ‖u‖² ranking."""

import numpy as np

from geomkit.analysis.norms import NormsResult
from geomkit.report.figures import figures_for, safe_text


@figures_for(NormsResult)
def norms_figures(result: NormsResult) -> list:
    import plotly.graph_objects as go

    hist = go.Figure()
    if result.group_of is not None:
        for name in sorted(set(result.group_of)):
            hist.add_trace(go.Histogram(x=result.norms[result.group_of == name], name=safe_text(name),
                                        opacity=0.6, histnorm="probability"))
    else:
        hist.add_trace(go.Histogram(x=result.norms, name="all"))
    hist.update_layout(title="Norm distribution", xaxis_title="‖x‖", yaxis_title="share",
                       barmode="overlay")
    figs = [hist]
    if result.counts is not None:
        labels = [safe_text(i, 40) for i in (result.ids if result.ids is not None else result.rows)]
        scatter = go.Figure(go.Scattergl(x=result.counts, y=result.norms, mode="markers", name="items",
                                         text=labels, hoverinfo="text+x+y",
                                         marker={"size": 4, "opacity": 0.5}))
        bins = result.frequency["bins"]
        scatter.add_trace(go.Scatter(x=[2 ** (b["log2_count"] + 0.5) for b in bins],
                                     y=[b["median_norm"] for b in bins], mode="lines+markers",
                                     name="median per log2 bin"))
        scatter.update_layout(title="Norm vs frequency", xaxis_title="count", xaxis_type="log",
                              yaxis_title="‖x‖")
        figs.append(scatter)
        top = np.argsort(-result.delta_norm_sq, kind="stable")[:30]
        figs.append(go.Figure(go.Bar(x=[labels[i] for i in top], y=result.delta_norm_sq[top]))
                    .update_layout(title="Largest frequency-debiased Δ‖u‖²",
                                   yaxis_title="Δ‖u‖²"))
    return figs
