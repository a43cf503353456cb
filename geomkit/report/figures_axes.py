"""Figures for ``geomkit axes``: attribute against the held-out projection, the shots curve with
the random-direction band, and the items on one or two axes."""

import numpy as np

from geomkit.analysis.axes import ProjectionResult, RankabilityResult
from geomkit.report.figures import figures_for, safe_text

MAX_POINTS = 50_000  # scatter points drawn (a seeded sample beyond, said in the title)


def _hover(ids, texts, pick):
    if ids is None:
        return None
    if texts is None:
        return [safe_text(ids[i]) for i in pick]
    return [f"{safe_text(ids[i])}<br>{safe_text(texts[i], 120)}" for i in pick]


def _pick(n: int):
    if n <= MAX_POINTS:
        return np.arange(n), ""
    pick = np.sort(np.random.default_rng(0).choice(n, MAX_POINTS, replace=False))
    return pick, f" ({MAX_POINTS:,} of {n:,} items drawn)"


@figures_for(RankabilityResult)
def rankability_figures(result: RankabilityResult) -> list:
    import plotly.graph_objects as go

    pick, note = _pick(result.n)
    scatter = go.Figure(go.Scattergl(
        x=result.values[pick], y=result.scores[pick], mode="markers",
        text=_hover(result.ids, result.texts, pick), hoverinfo="text+x+y",
        marker={"size": 4, "opacity": 0.6}, name="items"))
    scatter.update_layout(title=f"{safe_text(result.attribute)} against the held-out projection "
                                f"(ρ = {result.spearman:.3f}){note}" if result.spearman is not None
                          else "attribute against the held-out projection",
                          xaxis_title=safe_text(result.attribute),
                          yaxis_title="score v·x̂ (axis fitted without the item's fold)")
    curve = go.Figure()
    fitted = [s for s in result.shots if s["method"] != "two extremes"]
    if fitted:
        xs = [s["n"] for s in fitted]
        curve.add_trace(go.Scatter(
            x=xs, y=[s["spearman_mean"] for s in fitted], mode="lines+markers",
            name=f"{result.method} on n items",
            error_y={"type": "data", "array": [s["spearman_std"] for s in fitted]}))
    for s in result.shots:
        if s["method"] == "two extremes":
            curve.add_trace(go.Scatter(x=[2], y=[s["spearman_mean"]], mode="markers",
                                       marker={"symbol": "star", "size": 12},
                                       name="two extremes"))
    null = result.random_null
    curve.add_hline(y=null["p95"], line={"dash": "dash", "color": "gray"},
                    annotation_text="random directions, 95th percentile")
    if result.spearman is not None:
        curve.add_hline(y=result.spearman, line={"dash": "dot"},
                        annotation_text=f"{result.folds}-fold CV, all labels")
    curve.update_layout(title="Spearman ρ on held-out items against the number of labels",
                        xaxis_title="labelled items", xaxis_type="log", yaxis_title="Spearman ρ")
    null_hist = go.Figure(go.Histogram(x=result.null_values, nbinsx=40, name="random directions"))
    if result.spearman is not None:
        null_hist.add_vline(x=result.spearman, line={"color": "red"},
                            annotation_text=f"axis ρ = {result.spearman:.3f}")
    null_hist.update_layout(title=f"ρ of {null['n_directions']} random unit directions "
                                  f"(p = {null['p_value']:.3g})" if null["p_value"] is not None
                            else "random directions",
                            xaxis_title="cross-validated Spearman ρ", yaxis_title="directions")
    return [scatter, curve, null_hist]


@figures_for(ProjectionResult)
def projection_figures(result: ProjectionResult) -> list:
    import plotly.graph_objects as go

    pick, note = _pick(result.n)
    hover = _hover(result.ids, result.texts, pick)
    figs = []
    if result.scores.shape[1] == 2:
        fig = go.Figure(go.Scattergl(
            x=result.scores[pick, 0], y=result.scores[pick, 1], mode="markers", text=hover,
            hoverinfo="text+x+y", marker={"size": 4, "opacity": 0.6,
                                          "color": None if result.values is None
                                          else result.values[pick],
                                          "colorscale": "Viridis",
                                          "showscale": result.values is not None}))
        fig.update_layout(title=f"items on two axes{note}",
                          xaxis_title=safe_text(result.axes[0]["attribute"]),
                          yaxis_title=safe_text(result.axes[1]["attribute"]))
        figs.append(fig)
    if result.values is not None:
        fig = go.Figure(go.Scattergl(x=result.values[pick], y=result.scores[pick, 0],
                                     mode="markers", text=hover, hoverinfo="text+x+y",
                                     marker={"size": 4, "opacity": 0.6}))
        fig.update_layout(title=f"{safe_text(result.attribute)} against the projection{note}",
                          xaxis_title=safe_text(result.attribute), yaxis_title="score v·x̂")
        figs.append(fig)
    hist = go.Figure([go.Histogram(x=col, name=safe_text(a["file"]), opacity=0.7)
                      for a, col in zip(result.axes, result.scores.T)])
    hist.update_layout(title="distribution of the scores", xaxis_title="score v·x̂",
                       yaxis_title="items", barmode="overlay")
    figs.append(hist)
    return figs
