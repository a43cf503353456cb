"""Figures for ``geomkit drift``: each test's null distribution with the observed statistic, the
classifier's ROC curve, the per-dimension KS statistics (share drifted) and the items of NEW most
responsible."""

import numpy as np

from geomkit.analysis.drift import DriftResult
from geomkit.report.figures import figures_for, item_labels, safe_text

NULL_TITLES = {"mmd": "MMD² under permutation of REF/NEW",
               "classifier": "held-out AUC with the held-out labels permuted",
               "mean": "‖μ_A − μ_B‖ of two bootstrap resamples of REF"}


def _null_figure(name, null, observed, p):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Histogram(x=np.asarray(null), nbinsx=50, name="null",
                               marker={"color": "#9ab"}))
    fig.add_vline(x=observed, line={"color": "#d62728", "width": 2},
                  annotation_text=f"observed (p = {p:.3g})")
    fig.update_layout(title=f"{name}: {NULL_TITLES[name]}", xaxis_title="statistic",
                      yaxis_title="count", showlegend=False)
    return fig


@figures_for(DriftResult)
def drift_figures(result: DriftResult) -> list:
    import plotly.graph_objects as go

    from geomkit.report.readings_drift import ITEM_VALUES, responsible_items

    figs = []
    for name in ("mmd", "classifier", "mean"):
        arrays = result.arrays.get(name)
        if arrays is None or arrays.get("null") is None or not len(arrays["null"]):
            continue
        t = result.tests[name]
        figs.append(_null_figure(name, arrays["null"], t["statistic"], t["p_value"]))
    if "classifier" in result.arrays:
        fpr, tpr = result.arrays["classifier"]["roc"]
        roc = go.Figure()
        roc.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name="held-out ROC",
                                 line={"shape": "hv"}))
        roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                 line={"dash": "dash", "color": "gray"}))
        auc = result.tests["classifier"]["auc"]
        roc.update_layout(title=f"domain classifier ROC, held-out half (AUC = {auc:.3f})",
                          xaxis_title="false-positive rate (REF called NEW)",
                          yaxis_title="true-positive rate (NEW called NEW)")
        figs.append(roc)
    if "ks" in result.arrays:
        t = result.tests["ks"]
        stat = result.arrays["ks"]["dim_statistic"]
        adj = result.arrays["ks"]["dim_p_adjusted"]
        order = np.argsort(-stat, kind="stable")
        drifted = adj[order] <= result.alpha
        word = "PC" if t.get("components") else "dim"
        ks = go.Figure()
        ks.add_trace(go.Bar(x=[f"{word} {i}" for i in order], y=stat[order],
                            marker={"color": np.where(drifted, "#d62728", "#9ab").tolist()},
                            hovertext=[f"BH-adjusted p = {a:.3g}" for a in adj[order]]))
        ks.update_layout(title=f"KS statistic of each of the {t['n_dims']} {t['basis']}: "
                               f"{t['n_drifted']} drifted (share {t['share_drifted']:.3f}; red: "
                               f"BH-adjusted p ≤ {result.alpha:g})",
                         xaxis_title=t["basis"], yaxis_title="KS D", showlegend=False)
        figs.append(ks)
    for name, (column, largest, what) in ITEM_VALUES.items():
        if name not in result.items:
            continue
        frame = responsible_items(result, name)
        ids = frame["id"].to_numpy() if "id" in frame else None
        labels = item_labels(range(len(frame)), rows=frame["row"].to_numpy(), ids=ids)
        hover = ([safe_text(t, 200) for t in frame["text"]] if "text" in frame
                 else labels)
        bar = go.Figure(go.Bar(x=frame[column].to_numpy(), y=labels, orientation="h",
                               hovertext=hover, hoverinfo="text+x"))
        bar.update_layout(title=f"NEW items most responsible ({name}): {what}",
                          xaxis_title=column, yaxis={"autorange": "reversed"})
        figs.append(bar)
    return figs
