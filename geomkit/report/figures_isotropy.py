"""Figures for ``geomkit isotropy``: spectrum against the isotropic reference, cosine histogram."""

import numpy as np

from geomkit.analysis.isotropy import COSINE_BINS, IsotropyResult
from geomkit.report.figures import figures_for


@figures_for(IsotropyResult)
def isotropy_figures(result: IsotropyResult) -> list:
    import plotly.graph_objects as go

    figs = []
    spectrum = go.Figure()
    for r, name in ((result, "raw"), (result.after, result.transform)):
        if r is None or r.eigenvalues is None:
            continue
        lam = r.eigenvalues
        share = lam / lam.sum() if lam.sum() > 0 else lam
        shown = share > 1e-8 * share[0]  # numerically null directions would squash the log axis
        spectrum.add_trace(go.Scatter(x=np.arange(1, lam.size + 1)[shown], y=share[shown],
                                      mode="lines", name=f"{name} spectrum"))
    d = result.eigenvalues.size
    spectrum.add_trace(go.Scatter(x=[1, d], y=[1 / d, 1 / d], mode="lines", name="isotropic (1/d)",
                                  line={"dash": "dash", "color": "gray"}))
    spectrum.update_layout(title="Covariance eigenvalue spectrum (share of variance; shares below "
                                 "1e-8 of the top omitted)",
                           xaxis_title="component", yaxis_title="share of variance",
                           yaxis_type="log")
    figs.append(spectrum)

    hist = go.Figure()
    centers = (COSINE_BINS[:-1] + COSINE_BINS[1:]) / 2
    for r, name in ((result, "raw"), (result.after, result.transform)):
        if r is None or r.cosine_histogram is None:
            continue
        counts = r.cosine_histogram
        hist.add_trace(go.Bar(x=centers, y=counts / max(1, counts.sum()), name=name, opacity=0.7))
    hist.update_layout(title=f"Pairwise cosine similarity ({result.uniformity_rows} rows, all pairs)",
                       xaxis_title="cosine", yaxis_title="share of pairs", barmode="overlay")
    figs.append(hist)
    return figs
