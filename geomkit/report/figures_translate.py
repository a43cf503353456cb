"""Figures for ``geomkit translate``: where the true targets rank, and how close they land."""

import numpy as np

from geomkit.analysis.translate import TranslateResult
from geomkit.report.figures import figures_for


@figures_for(TranslateResult)
def translate_figures(r: TranslateResult) -> list:
    import plotly.graph_objects as go

    if r.ranks is None:
        return []
    ranks = go.Figure(go.Histogram(x=np.log10(r.ranks), nbinsx=40, name="items"))
    ranks.update_layout(title=f"rank of the true target among {r.n_eval} candidates "
                              f"({r.retrieval}; random mean {r.random_rank:.0f})",
                        xaxis_title="log10 rank (0 = found first)", yaxis_title="items")
    cos = go.Figure(go.Histogram(x=r.cosines, nbinsx=50, name="items"))
    cos.update_layout(title="cosine of the translated vector to its true target",
                      xaxis_title="cosine", yaxis_title="items")
    return [ranks, cos]
