"""HTML reports are self-contained and escape every user string."""

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from geomkit.report.figures import figures_for, safe_text
from geomkit.report.html import render_html
from geomkit.report.render import render_csv, render_json, render_table
from geomkit.report.result import Result, SweepResult

EVIL = '<script>alert("x")</script>'


@dataclass
class _Toy(Result):
    value: float
    text: str
    command: str = "toy"
    title: str = "toy result"

    def to_dict(self):
        return {"value": self.value, "missing": float("nan"), "label": self.text}

    def tables(self):
        return [("texts", pd.DataFrame({"text": [self.text]}))]

    def notes(self):
        return [f"note about {self.text}"]


@figures_for(_Toy)
def _toy_figures(result):
    return [go.Figure(go.Scatter(x=[1], y=[result.value], hovertext=[safe_text(result.text)],
                                 name=result.text))]


def test_html_escapes_user_strings_and_inlines_plotly():
    page = render_html(_Toy(1.0, EVIL), source_label=EVIL)
    assert EVIL not in page
    assert "&lt;script&gt;" in page
    assert "<script src=" not in page  # (plotly.js itself mentions cdn.plot.ly for topojson)
    assert len(page) > 1_000_000  # plotly.js is inlined: the page works offline
    # the figure JSON may carry the (escaped) name but can never close its <script> element
    body = page.split("</head>", 1)[1]
    assert body.count("<script") == body.count("</script>")


def test_renderers():
    r = _Toy(0.25, "a,b")
    assert '"missing": null' in render_json(r)
    csv = render_csv(r).splitlines()
    assert csv[0] == "value,missing,label" and csv[1] == '0.25,,"a,b"'
    table = render_table(r)
    assert "value" in table and "0.25" in table and "note about a,b" in table


def test_sweep_result_contract():
    sweep = SweepResult("layer", [0, 1], [_Toy(0.1, "a"), _Toy(0.2, "b")])
    d = sweep.to_dict()
    assert d["value"] == 0.2 and [e["layer"] for e in d["layers"]] == [0, 1]
    assert d["layers"][0]["value"] == 0.1
    assert render_csv(sweep).splitlines()[0] == "layer,value,missing,label"
