"""Figures for ``geomkit compare``: how much each item's neighbourhood changes between the spaces,
the items that change most, and the two covariance spectra side by side."""

import numpy as np

from geomkit.analysis.compare import CompareResult
from geomkit.report.figures import figures_for, item_labels, safe_text


@figures_for(CompareResult)
def compare_figures(r: CompareResult) -> list:
    import plotly.graph_objects as go

    figs = []
    hist = go.Figure(go.Histogram(x=r.shared, xbins={"start": -0.5, "end": r.k + 0.5, "size": 1},
                                  name="items"))
    hist.update_layout(title=f"shared neighbours: of each item's {r.k} nearest, how many are the "
                             f"same in both spaces (mean {r.mutual_knn * r.k:.2f}; chance "
                             f"{r.k * r.k / max(r.knn_items - 1, 1):.2f})",
                       xaxis_title=f"neighbours shared (of {r.k})", yaxis_title="items")
    figs.append(hist)
    order = np.argsort(r.jaccard, kind="stable")[:20]
    hover = None
    if r.texts is not None:
        hover = [safe_text(r.texts[i], 120) for i in order]
    bars = go.Figure(go.Bar(x=r.jaccard[order], orientation="h", hovertext=hover,
                            y=item_labels(order, rows=r.rows_a, ids=r.ids)))
    bars.update_layout(title="items whose neighbourhoods differ most (k-NN Jaccard)",
                       xaxis_title="Jaccard overlap of the two k-NN lists",
                       yaxis={"autorange": "reversed"})
    figs.append(bars)
    if r.spectrum_a is not None and r.spectrum_b is not None:
        spec = go.Figure()
        for name, values in ((r.labels[0] or "A", r.spectrum_a), (r.labels[1] or "B", r.spectrum_b)):
            share = values / values.sum() if values.sum() > 0 else values
            spec.add_trace(go.Scatter(x=np.arange(1, values.size + 1), y=share, mode="lines",
                                      name=f"{safe_text(name, 60)} (d = {values.size})"))
        spec.update_layout(title="covariance spectra: share of variance per principal direction",
                           xaxis_title="principal direction", xaxis_type="log",
                           yaxis_title="share of variance", yaxis_type="log")
        figs.append(spec)
    return figs
