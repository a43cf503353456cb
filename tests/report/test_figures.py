"""Figure builders: what each page draws (plotly figures inspected, no browser)."""

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

import geomkit.report.figures_hubness  # noqa: F401  (registers the builders)
import geomkit.report.figures_infogain  # noqa: F401
import geomkit.report.figures_norms  # noqa: F401
from geomkit.analysis.hubness import HubnessResult
from geomkit.analysis.infogain import InfogainResult, linear_fit
from geomkit.analysis.norms import NormsResult
from geomkit.report.figures import build_figures, safe_text, sweep_figures
from geomkit.report.result import Result, SweepResult

EVIL_ID = 'say "hi" <script>alert(1)</script> & <b>bold</b>'


@dataclass
class _Layer(Result):
    """Per-layer scalars on very different scales, plus sizes and counts."""
    rank: float
    iso: float
    cos: float
    outliers: int
    command: str = "isotropy"
    title: str = "toy isotropy"

    def to_dict(self):
        return {"n": 1000, "d": 768, "isoscore": self.iso, "avg_cosine": self.cos,
                "effective_rank": self.rank, "isoscore_star": None, "n_outliers": self.outliers,
                "n_hubs": 7, "top_id": "w1"}


@dataclass
class _Methods(Result):
    """Several rows per layer, told apart by ``method``."""
    skew: float
    command: str = "hubness"

    def to_dict(self):
        return {"k": 10}

    def summary_rows(self):
        return [{"method": "none", "k_skewness": self.skew, "robinhood": 0.3, "n_hubs": 40},
                {"method": "mp", "k_skewness": self.skew / 4, "robinhood": 0.1, "n_hubs": 3}]


def _sweep():
    return SweepResult("layer", [0, 1, 2], [_Layer(250.0 + i, 0.1 + i / 100, 0.8 - i / 10, i)
                                            for i in range(3)])


def test_sweep_has_one_subplot_per_metric_and_no_counts():
    fig = sweep_figures(_sweep())[0]
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["isoscore", "avg_cosine", "effective_rank"]  # no n, d, n_outliers, n_hubs
    # one trace per metric, each on its own y axis (own range: effective rank ~250 on the same
    # axis as IsoScore ~0.1 would flatten it)
    assert len(fig.data) == 3
    assert len({t.yaxis for t in fig.data}) == 3
    by_axis = {t.yaxis: list(t.y) for t in fig.data}
    assert by_axis["y"] == pytest.approx([0.1, 0.11, 0.12])
    assert by_axis["y3"] == pytest.approx([250, 251, 252])
    assert all(getattr(fig.layout, f"yaxis{s}").matches is None for s in ("", "2", "3"))
    assert all(list(t.x) == [0, 1, 2] for t in fig.data)


def test_sweep_with_several_rows_per_layer_draws_one_line_per_method():
    sweep = SweepResult("layer", [0, 1], [_Methods(2.0), _Methods(1.0)])
    fig = sweep_figures(sweep)[0]
    assert [a.text for a in fig.layout.annotations] == ["k_skewness", "robinhood"]
    assert len(fig.data) == 4 and len({t.yaxis for t in fig.data}) == 2
    skew = [t for t in fig.data if t.yaxis == "y"]
    assert {t.name for t in skew} == {"none", "mp"}
    assert list(next(t for t in skew if t.name == "mp").y) == pytest.approx([0.5, 0.25])


def _hubness(ids):
    n = len(ids)
    rng = np.random.default_rng(0)
    none = rng.integers(1, 30, n)
    none[:3] = 0  # three antihubs
    mp = rng.integers(1, 10, n)
    return HubnessResult(k=5, metric="cosine", n=n, methods={}, knn={"exact": True},
                         kocc={"none": none, "mp": mp}, rows=np.arange(n) + 100,
                         ids=np.array(ids, dtype=object), texts=np.array([f"text {i}" for i in range(n)]))


def test_kocc_distribution_shows_antihubs_on_a_linear_axis():
    result = _hubness([f"i{k}" for k in range(40)])
    dist = build_figures(result)[0]
    none = next(t for t in dist.data if t.name == "none")
    xs, ys = list(none.x), list(none.y)
    assert 0 in xs and ys[xs.index(0)] == 3  # N_k = 0: the three antihubs
    assert dist.layout.xaxis.type != "log"
    assert dist.layout.xaxis.range[0] < 0  # the N_k = 0 point is not on the axis line


def test_top_hub_categories_are_unique_when_ids_truncate_alike():
    ids = ["a_very_long_shared_identifier_prefix_that_truncation_cuts_" + str(k) for k in range(40)]
    bars = build_figures(_hubness(ids))[1]
    for trace in bars.data:
        labels = list(trace.y if trace.orientation == "h" else trace.x)
        assert len(labels) == 20 and len(set(labels)) == 20
    order = np.argsort(-_hubness(ids).kocc["none"], kind="stable")[:20]
    # the full id stays in the hover
    assert ids[order[0]] in bars.data[0].hovertext[0]


def test_user_strings_escape_markup_but_not_quotes():
    assert safe_text(EVIL_ID) == 'say "hi" &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;'
    result = _hubness([f"i{k}" for k in range(3)] + [EVIL_ID] + [f"i{k}" for k in range(4, 40)])
    result.kocc["none"][3] = 99  # the top hub: its id is a bar category (a tick label)
    figs = build_figures(result)
    text = json.dumps([f.to_plotly_json() for f in figs])
    assert "&quot;" not in text  # plotly has no &quot; entity: it would show literally
    assert 'say \\"hi\\"' in text
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text


def _norms(group_of=None):
    rng = np.random.default_rng(1)
    norms = rng.uniform(1, 2, 50)
    return NormsResult(summary={"n": 50}, d=4, rows=np.arange(50), norms=norms, group_of=group_of)


@pytest.mark.parametrize("groups", [None, np.array(["a"] * 10 + ["b"] * 40)])
def test_norm_histogram_axis_says_what_is_plotted(groups):
    hist = build_figures(_norms(groups))[0]
    assert hist.data and all(t.histnorm == "probability" for t in hist.data)
    assert "share" in hist.layout.yaxis.title.text


def test_delta_norm_bars_have_unique_categories():
    result = dataclasses.replace(
        _norms(), counts=np.arange(1, 51).astype(float),
        frequency={"spearman": 0.0, "bins": [{"log2_count": 2, "median_norm": 1.5}]},
        delta_norm_sq=np.linspace(0, 1, 50),
        ids=np.array(["same_long_prefix_that_gets_truncated_at_forty_chars_" + str(k)
                      for k in range(50)], dtype=object))
    bar = build_figures(result)[2].data[0]
    labels = list(bar.y if bar.orientation == "h" else bar.x)
    assert len(labels) == 30 and len(set(labels)) == 30


def _infogain(with_embeddings=True, fitted=True):
    rng = np.random.default_rng(2)
    n = 80
    kl = rng.uniform(0, 2, n)
    counts = rng.integers(1, 5000, n).astype(float)
    result = InfogainResult(n_words=n, n_tokens=int(counts.sum()), window=5, mutual_information=0.3,
                            baseline="percentile", words=np.array([f"w{k}" for k in range(n)]),
                            counts=counts, kl=kl, kl_baseline=np.full(n, 0.1))
    if with_embeddings:
        norm_sq = 1.0 + 3.0 * kl + rng.normal(0, 0.1, n)
        norm_sq[5] = np.nan  # a word without an embedding
        fit_mask = np.isfinite(norm_sq) & (counts > (1000 if fitted else 1e9))
        result = dataclasses.replace(
            result, norm_sq=norm_sq, fit_mask=fit_mask, n_fit_words=int(fit_mask.sum()),
            fits={"raw": linear_fit(kl[fit_mask], norm_sq[fit_mask]),
                  "centred": linear_fit(kl[fit_mask], norm_sq[fit_mask])})
    return result


def test_infogain_scatter_with_fit_words_and_least_squares_line():
    result = _infogain()
    figs = build_figures(result)
    assert len(figs) == 2
    scatter = figs[1]
    fit_trace = next(t for t in scatter.data if t.name.startswith("fit words"))
    assert sorted(fit_trace.x) == pytest.approx(sorted(result.kl[result.fit_mask]))
    assert sorted(fit_trace.y) == pytest.approx(sorted(result.norm_sq[result.fit_mask]))
    others = next(t for t in scatter.data if t.name == "words not fitted")
    assert len(others.x) == int((np.isfinite(result.norm_sq) & ~result.fit_mask).sum())
    line = next(t for t in scatter.data if t.mode == "lines")
    raw = result.fits["raw"]
    assert raw["r2"] is not None and raw["slope"] == pytest.approx(3.0, abs=0.2)
    assert list(line.y) == pytest.approx([raw["intercept"] + raw["slope"] * x for x in line.x])
    assert result.fit_mask.sum() == result.n_fit_words  # the builder did not touch the mask


def test_infogain_without_fit_has_no_line_and_without_embeddings_no_norm_plot():
    unfitted = build_figures(_infogain(fitted=False))
    assert unfitted[1].data and not any(t.mode == "lines" for t in unfitted[1].data)
    plain = build_figures(_infogain(with_embeddings=False))
    assert len(plain) == 1 and "frequency" in plain[0].layout.title.text
