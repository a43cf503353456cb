"""result -> plotly figures. One builder per result type, registered with :func:`figures_for`.

Builders only read what the result carries (scanpy's pl never recomputes tl). Every user string
that goes into a figure (hover texts, labels, category names) passes through :func:`safe_text`.
"""

from __future__ import annotations

import math
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
    """User text for plotly labels (hover, legend, tick labels): truncated, then ``&``, ``<`` and
    ``>`` escaped so no user string can become markup (plotly renders a subset of HTML tags in
    labels, and decodes ``&amp; &lt; &gt;`` only after splitting the tags out).

    Quotes are left alone: plotly knows no ``&quot;`` entity and would show it literally."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def item_labels(order, *, rows, ids=None, limit: int = 32) -> list[str]:
    """Unique category labels for the items ``order`` (positions into ``rows``/``ids``): the
    original row number, then the (truncated) id, so two ids that truncate alike never merge into
    one bar. Put the full id / text in the hover."""
    labels = []
    for i in order:
        row = rows[i] if rows is not None else i
        name = safe_text(ids[i], limit) if ids is not None else ""
        labels.append(f"{row}: {name}" if name and name != str(row) else f"row {row}")
    return labels


# every module of figure builders: imported on the first page built, so that a result made
# through the Python API gets the same figures as the CLI's (no import for a side effect)
BUILDER_MODULES = ("isotropy", "hubness", "depth", "norms", "infogain", "axes", "compare",
                   "translate", "intdim", "drift")


def _register_builders() -> None:
    import importlib

    for name in BUILDER_MODULES:
        importlib.import_module(f"geomkit.report.figures_{name}")


def build_figures(result: Result) -> list:
    _register_builders()
    if isinstance(result, SweepResult):
        figs = sweep_figures(result)
        last = f"{result.kind} {safe_text(result.values[-1])}" if result.values else ""
        for fig in build_figures(result.top):
            title = fig.layout.title.text
            if last and title:
                fig.update_layout(title_text=f"{last}: {title}")
            figs.append(fig)
        return figs
    for cls in type(result).__mro__:
        if cls in _BUILDERS:
            return _BUILDERS[cls](result)
    return []


# sizes, counts and identifiers: shown in the per-layer table, never drawn as a metric
_NOT_METRICS = {"n", "d", "k", "layer", "dims", "row", "rows", "d_in", "d_out", "layers",
                "stats_layer", "n_words", "n_tokens", "window"}


def _is_count_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last in _NOT_METRICS or last.startswith("n_") or last.startswith("num_")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def sweep_metrics(result: SweepResult) -> tuple[list[str], str | None]:
    """The scalar metrics of a sweep worth a small multiple (count-like keys left out) and the
    key that tells several rows of one layer apart (``method``, ``space``), if any."""
    rows = result.summary_rows()
    if not rows:
        return [], None
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    group = None
    per_value = len(rows) > len({repr(r.get(result.kind)) for r in rows})
    if per_value:
        for k in keys:
            if k != result.kind and all(isinstance(r.get(k), str) for r in rows) and \
                    len({(repr(r.get(result.kind)), r[k]) for r in rows}) == len(rows):
                group = k
                break
    metrics = []
    for k in keys:
        if k in (result.kind, group) or _is_count_key(k):
            continue
        values = [r.get(k) for r in rows]
        if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values) \
                and any(_number(v) is not None for v in values):
            metrics.append(k)
    return metrics, group


def sweep_figures(result: SweepResult) -> list:
    """Small multiples: one subplot per scalar metric against layer / prefix length, each with its
    own y range (effective rank ~ d would flatten IsoScore and avg cosine on one shared axis)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics, group = sweep_metrics(result)
    if not metrics:
        return []
    rows = result.summary_rows()
    groups = list(dict.fromkeys(r[group] for r in rows)) if group else [None]
    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    height = 110 + 210 * nrows
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[safe_text(m) for m in metrics],
                        horizontal_spacing=0.08, vertical_spacing=min(0.3, 75 / (height - 170)))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    for i, key in enumerate(metrics):
        for j, name in enumerate(groups):
            sel = [r for r in rows if group is None or r[group] == name]
            fig.add_trace(go.Scatter(
                x=[r.get(result.kind) for r in sel], y=[_number(r.get(key)) for r in sel],
                mode="lines+markers", name=safe_text(name) if name is not None else key,
                legendgroup=str(j), showlegend=name is not None and i == 0,
                line={"color": palette[j % len(palette)]},
                hovertemplate=f"{result.kind} %{{x}}<br>{safe_text(key)} = %{{y:.4g}}"
                              + (f"<br>{safe_text(name)}" if name is not None else "")
                              + "<extra></extra>"),
                row=i // cols + 1, col=i % cols + 1)
    values = [v for v in result.values if _number(v) is not None]
    xlog = result.kind == "dims" and values and min(values) > 0 and max(values) / min(values) >= 8
    fig.update_xaxes(matches="x", type="log" if xlog else "linear")
    for i in range(len(metrics)):
        if i // cols == nrows - 1 or i + cols >= len(metrics):  # bottom subplot of its column
            fig.update_xaxes(title_text=result.kind, row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(rangemode="normal")
    fig.update_layout(title=f"{result.command} per {result.kind} (one panel per metric, each "
                            f"with its own y range)",
                      height=height, showlegend=group is not None,
                      legend={"title": {"text": group}} if group else {})
    return [fig]
