"""Figures for ``geomkit infogain``: KL against frequency (with the baseline KL̄), and with
embeddings ‖u‖² against KL with the least-squares line of the fit (Oyama et al. 2023, Fig. 1)."""

import numpy as np

from geomkit.analysis.infogain import InfogainResult
from geomkit.report.figures import figures_for, safe_text

_GL_POINTS = 5000  # more points than this are drawn with WebGL


def _scatter(n):
    import plotly.graph_objects as go
    return go.Scattergl if n > _GL_POINTS else go.Scatter


def _hover(result, idx):
    return [f"{safe_text(result.words[i], 80)}<br>n_w = {int(result.counts[i])}" for i in idx]


@figures_for(InfogainResult)
def infogain_figures(result: InfogainResult) -> list:
    import plotly.graph_objects as go

    figs = []
    if result.kl is None or result.counts is None:
        return figs
    counts = np.asarray(result.counts, dtype=np.float64)
    kl = np.asarray(result.kl, dtype=np.float64)
    seen = np.flatnonzero((counts > 0) & np.isfinite(kl))
    if seen.size:
        freq = go.Figure(_scatter(seen.size)(x=counts[seen], y=kl[seen], mode="markers", name="words",
                                             text=_hover(result, seen), hoverinfo="text+y",
                                             marker={"size": 4, "opacity": 0.5}))
        if result.kl_baseline is not None:
            base = np.asarray(result.kl_baseline, dtype=np.float64)
            order = seen[np.argsort(counts[seen], kind="stable")]
            order = order[np.isfinite(base[order])]
            freq.add_trace(go.Scatter(x=counts[order], y=base[order], mode="lines",
                                      name=f"baseline KL̄ ({safe_text(result.baseline)})",
                                      line={"color": "gray", "dash": "dash"}))
        freq.update_layout(title="KL(p(·|w) ‖ p(·)) against word frequency",
                           xaxis_title="corpus count n_w", xaxis_type="log",
                           yaxis_title="KL (nats)")
        figs.append(freq)

    if result.norm_sq is not None:
        norm_sq = np.asarray(result.norm_sq, dtype=np.float64)
        have = np.isfinite(norm_sq) & np.isfinite(kl)
        fit = have & (False if result.fit_mask is None else np.asarray(result.fit_mask, dtype=bool))
        rest = np.flatnonzero(have & ~fit)
        used = np.flatnonzero(fit)
        fig = go.Figure()
        if rest.size:
            fig.add_trace(_scatter(rest.size)(
                x=kl[rest], y=norm_sq[rest], mode="markers", name="words not fitted",
                text=_hover(result, rest), hoverinfo="text+x+y",
                marker={"size": 4, "opacity": 0.4, "color": "#bbbbbb"}))
        if used.size:
            fig.add_trace(_scatter(used.size)(
                x=kl[used], y=norm_sq[used], mode="markers",
                name=f"fit words (n = {used.size})", text=_hover(result, used),
                hoverinfo="text+x+y", marker={"size": 5, "opacity": 0.7, "color": "#1f77b4"}))
        raw = (result.fits or {}).get("raw") or {}
        title = "‖u‖² against KL"
        if raw.get("r2") is not None and raw.get("slope") is not None \
                and raw.get("intercept") is not None:
            xs = kl[used] if used.size else kl[have]
            x0, x1 = float(np.min(xs)), float(np.max(xs))
            slope, intercept = float(raw["slope"]), float(raw["intercept"])
            fig.add_trace(go.Scatter(
                x=[x0, x1], y=[intercept + slope * x0, intercept + slope * x1], mode="lines",
                name=f"least squares: ‖u‖² = {intercept:.3g} + {slope:.3g}·KL (R² = {raw['r2']:.3f})",
                line={"color": "#d62728"}))
            title += f" (raw; R² = {raw['r2']:.3f} on {used.size} words)"
        else:
            title += " (raw; not fitted: too few words above the fit threshold)"
        fig.update_layout(title=title, xaxis_title="KL(p(·|w) ‖ p(·)) (nats)", yaxis_title="‖u‖²",
                          legend={"orientation": "h", "y": -0.2})
        figs.append(fig)
    return figs
