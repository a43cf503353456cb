"""Figures for ``geomkit depth``: depth ECDFs of both corpora and the DD-plot."""

import numpy as np

from geomkit.analysis.depth import DepthResult
from geomkit.report.figures import figures_for, safe_text


def _hover(result: DepthResult, which: str, rows):
    meta = result.ref_meta if which == "ref" else result.test_meta
    if meta is None:
        return [str(r) for r in rows]
    ids = meta.ids[rows] if meta.ids is not None else rows
    if meta.texts is None:
        return [safe_text(i) for i in ids]
    return [f"{safe_text(i)}<br>{safe_text(t, 120)}" for i, t in zip(ids, meta.texts[rows])]


@figures_for(DepthResult)
def depth_figures(result: DepthResult) -> list:
    import plotly.graph_objects as go

    ecdf = go.Figure()
    for which, depth in (("REF", result.ref_depth), ("TEST", result.test_depth)):
        if depth is None:
            continue
        xs = np.sort(depth)
        ecdf.add_trace(go.Scatter(x=xs, y=np.arange(1, xs.size + 1) / xs.size, mode="lines",
                                  name=f"{which} (n={xs.size})", line={"shape": "hv"}))
    ecdf.update_layout(title=f"{result.depth} depth w.r.t. REF (ECDF)", xaxis_title="depth",
                       yaxis_title="share of items with depth ≤ x")
    figs = [ecdf]
    if result.dd is not None:
        dd = go.Figure()
        for which, rows, wrt_ref, wrt_test in (
                ("ref", result.ref_rows, result.ref_depth, result.dd["ref"]),
                ("test", result.test_rows, result.test_depth, result.dd["test"])):
            dd.add_trace(go.Scattergl(x=wrt_ref, y=wrt_test, mode="markers", name=which.upper(),
                                      text=_hover(result, which, rows), hoverinfo="text",
                                      marker={"size": 4, "opacity": 0.6}))
        lo = float(min(np.min(result.ref_depth), np.min(result.dd["ref"])))
        hi = float(max(np.max(result.ref_depth), np.max(result.dd["ref"])))
        dd.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                line={"dash": "dash", "color": "gray"}))
        dd.update_layout(title="DD-plot: depth w.r.t. REF vs depth w.r.t. TEST",
                         xaxis_title="depth w.r.t. REF", yaxis_title="depth w.r.t. TEST")
        figs.append(dd)
    return figs
