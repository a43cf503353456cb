"""result -> plotly figures. One builder per result type, registered with :func:`figures_for`.

Builders only read what the result carries (scanpy's pl never recomputes tl). Every user string
that goes into a figure (hover texts, labels) passes through :func:`safe_text`.
"""

from __future__ import annotations

import html
from typing import Callable

from geomkit.report.result import Result, SweepResult

_BUILDERS: dict[type, Callable] = {}


def figures_for(result_type: type):
    """Register ``fn(result) -> list[plotly Figure]`` for a result type."""
    def deco(fn):
        _BUILDERS[result_type] = fn
        return fn
    return deco


def safe_text(value, limit: int = 200) -> str:
    """User text for plotly hover labels: truncated and HTML-escaped (plotly renders a subset of
    HTML in labels)."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text)


def build_figures(result: Result) -> list:
    if isinstance(result, SweepResult):
        return sweep_figures(result) + build_figures(result.top)
    for cls in type(result).__mro__:
        if cls in _BUILDERS:
            return _BUILDERS[cls](result)
    return []


def sweep_figures(result: SweepResult) -> list:
    """One line per scalar metric against layer / prefix length."""
    import plotly.graph_objects as go

    rows = result.summary_rows()
    keys = [k for k in rows[0] if k != result.kind and all(
        isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
    keys = [k for k in keys if k not in ("n", "d")]
    fig = go.Figure()
    for k in keys:
        fig.add_trace(go.Scatter(x=[r[result.kind] for r in rows], y=[r[k] for r in rows],
                                 mode="lines+markers", name=k))
    fig.update_layout(title=f"{result.command} per {result.kind}",
                      xaxis_title=result.kind, yaxis_title="value")
    return [fig]
