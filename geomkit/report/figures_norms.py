"""Figures for ``geomkit norms``: histogram per group, norm vs frequency, Δ‖u‖² ranking."""

import numpy as np

from geomkit.analysis.norms import NormsResult
from geomkit.report.figures import figures_for, item_labels, safe_text


@figures_for(NormsResult)
def norms_figures(result: NormsResult) -> list:
    import plotly.graph_objects as go

    # every histogram is normalised (histnorm="probability"), so the axis says share, and groups
    # of different sizes compare
    hist = go.Figure()
    if result.group_of is not None:
        for name in sorted(set(result.group_of)):
            members = result.group_of == name
            hist.add_trace(go.Histogram(x=result.norms[members],
                                        name=f"{safe_text(name, 60)} (n={int(members.sum())})",
                                        opacity=0.6, histnorm="probability"))
        ytitle = "share of the group's items"
    else:
        hist.add_trace(go.Histogram(x=result.norms, name=f"all (n={result.norms.size})",
                                    histnorm="probability"))
        ytitle = "share of items"
    hist.update_layout(title="Norm distribution", xaxis_title="‖x‖", yaxis_title=ytitle,
                       barmode="overlay")
    figs = [hist]
    if result.counts is not None:
        names = result.ids if result.ids is not None else result.row_numbers
        hover = [safe_text(i, 60) for i in names]
        scatter = go.Figure(go.Scattergl(x=result.counts, y=result.norms, mode="markers", name="items",
                                         text=hover, hoverinfo="text+x+y",
                                         marker={"size": 4, "opacity": 0.5}))
        bins = result.frequency["bins"]
        scatter.add_trace(go.Scatter(x=[2 ** (b["log2_count"] + 0.5) for b in bins],
                                     y=[b["median_norm"] for b in bins], mode="lines+markers",
                                     name="median per log2 bin"))
        scatter.update_layout(title="Norm vs frequency", xaxis_title="count", xaxis_type="log",
                              yaxis_title="‖x‖")
        figs.append(scatter)
        top = np.argsort(-result.delta_norm_sq, kind="stable")[:30]
        labels = item_labels(top, rows=result.row_numbers, ids=result.ids, limit=30)
        full = [safe_text(names[i]) for i in top]
        figs.append(go.Figure(go.Bar(y=labels, x=result.delta_norm_sq[top], hovertext=full,
                                     orientation="h",
                                     hovertemplate="%{hovertext}<br>Δ‖u‖² = %{x:.4g}<extra></extra>"))
                    .update_layout(title="Largest frequency-debiased Δ‖u‖²", xaxis_title="Δ‖u‖²",
                                   yaxis={"type": "category", "autorange": "reversed",
                                          "automargin": True, "title": {"text": "item (row: id)"}},
                                   height=max(450, 140 + 18 * len(top))))
    return figs
