"""HTML pages (plotly.js only where something is drawn, wide tables scroll) and terminal tables
(fit the terminal)."""

import json
from dataclasses import dataclass

import pandas as pd
import pytest

from conftest import run_cli, write_h5
from geomkit.report.html import frame_html, render_html
from geomkit.report.render import render_csv, render_json, render_table
from geomkit.report.result import Result

PLOTLY_JS = "plotly.js v"  # the banner at the top of the inlined library


@dataclass
class _Plain(Result):
    """No figure builder is registered for this type."""
    command: str = "plain"
    title: str = "plain result"

    def to_dict(self):
        return {"value": 1.5, "label": "x"}


WIDE_COLUMNS = [f"measure_number_{k}" for k in range(12)]


@dataclass
class _Wide(Result):
    command: str = "wide"
    title: str = "wide result"

    def to_dict(self):
        return {"n": 3, "long_value": "v" * 300, "mean": 0.123456}

    def summary_rows(self):
        return [{"method": m, **{c: 1000.5 + k for k, c in enumerate(WIDE_COLUMNS)}}
                for m in ("none", "mp", "ls")]

    def tables(self):
        return [("measures per method", pd.DataFrame(self.summary_rows())),
                ("items", pd.DataFrame({"row": [1, 22, 333], "score": [0.5, -12.25, 3.0],
                                        "text": ["short", "y" * 400, "mid text"]}))]

    def notes(self):
        return ["a long note " * 30]


def test_page_without_figures_does_not_inline_plotly():
    page = render_html(_Plain(), source_label="x.h5")
    assert PLOTLY_JS not in page and "<script" not in page
    assert len(page) < 20_000


def test_wide_tables_scroll_instead_of_being_cut_off():
    html = frame_html(pd.DataFrame(_Wide().summary_rows()))
    assert html.startswith('<div class="table-wrap"><table>') and html.endswith("</table></div>")
    page = render_html(_Wide())
    assert ".table-wrap{overflow-x:auto" in page
    # every table of the page (summary included) sits in a scrolling wrapper
    assert page.count("<table>") == page.count('<div class="table-wrap"><table>') == 3


@pytest.mark.parametrize("columns", [40, 60, 100, 160])
def test_terminal_table_fits_columns(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    text = render_table(_Wide())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= columns
    # nothing dropped: every column name is still shown (in further blocks where needed)
    for name in WIDE_COLUMNS:
        assert name in text
    assert "…" in text  # the 400-character text was cut


def test_terminal_table_alignment(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lines = render_table(_Wide()).splitlines()
    start = lines.index("items")
    header, rows = lines[start + 1], lines[start + 2:start + 5]
    assert header.split() == ["row", "score", "text"]
    text_at = header.index("text")
    # text left-aligned: every cell starts under the header; numbers right-aligned
    assert [r[text_at:].split()[0][:5] for r in rows] == ["short", "yyyyy", "mid"]
    score_end = header.index("score") + len("score")
    assert [r[:score_end].split()[-1] for r in rows] == ["0.5000", "-12.2500", "3.0000"]
    assert len({len(r[:score_end]) for r in rows}) == 1 and all(r[score_end - 1] == "0" for r in rows)


def test_json_and_csv_do_not_depend_on_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    wide = (render_json(_Wide()), render_csv(_Wide()))
    monkeypatch.setenv("COLUMNS", "40")
    assert (render_json(_Wide()), render_csv(_Wide())) == wide
    assert json.loads(wide[0])["long_value"] == "v" * 300


def test_cli_pages_and_tables(tmp_path, rng):
    x = rng.standard_normal((60, 6)).astype("f4")
    ids = [f'id_{k}_with_a_rather_long_"quoted"_name_that_does_not_fit' for k in range(60)]
    p = write_h5(tmp_path / "e.h5", x, ids=ids, texts=["<b>some text</b> " * 20] * 60)
    info, iso = tmp_path / "info.html", tmp_path / "iso.html"
    run_cli("info", p, "--html", info, "--json", "--quiet", check_code=0)
    run_cli("isotropy", p, "--html", iso, "--json", "--quiet", check_code=0)
    assert PLOTLY_JS not in info.read_text() and info.stat().st_size < 100_000
    assert PLOTLY_JS in iso.read_text()
    for cols in (50, 90):
        out = run_cli("hubness", p, "--exact", "-k", "3", "--format", "table", "--quiet",
                      env={"COLUMNS": str(cols)}, check_code=0).stdout
        assert max(len(line) for line in out.splitlines()) <= cols
        assert "k_skewness" in out and "antihub_occurrence" in out
