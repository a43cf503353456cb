"""Rank axes (METHODS.md §5) against closed forms and independent computations.

- a planted axis (x = noise + t·v): ρ → 1 and the fitted axis → v as the noise vanishes;
- regression = the ridge direction computed here from its normal equations; extremes = the
  normalised difference of the two extreme unit rows; poles = the difference of the quantile
  centroids; pca = the top right singular vector of the centred unit rows, signed by the attribute;
- the random-direction null is calibrated: on unrelated attributes the p-values are roughly
  uniform; on a planted axis p < 0.01;
- pairwise accuracy against a brute-force count with ties;
- the CLI: JSON contract, axis file, projection, attribute errors, CSV attributes, sweeps.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy import stats

from conftest import run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.axes import (attribute_from_values, compute_axis, compute_projection,
                                   compute_rankability, fit_axis, pairwise_accuracy, read_axis)

KEYS = ["attribute", "n", "n_missing", "method", "folds", "spearman", "spearman_ci",
        "kendall_tau_b", "pearson", "pairwise_accuracy", "random_null", "upper_bound_spearman",
        "upper_bound_n", "shots", "n_dropped", "n_dropped_zero"]


def planted(n=300, d=24, noise=0.3, seed=0, with_base=False):
    """x = base + t·v + noise: after L2 normalisation the rows lie near the arc from base
    towards v, so the rank direction lies in span(base, v)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    t = rng.uniform(0, 1, n)
    base = rng.standard_normal(d)
    base /= np.linalg.norm(base)
    x = base + noise * rng.standard_normal((n, d)) / np.sqrt(d) + np.outer(t, v)
    return (x, t, v, base) if with_base else (x, t, v)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["regression", "pairwise", "extremes", "poles", "pca"])
def test_planted_axis_ranks_perfectly_without_noise(method):
    x, t, v = planted(noise=1e-4)
    result = compute_rankability(Space.from_array(x), attribute_from_values(t, "t", "t"),
                                 method=method, null_directions=200, shots=(), upper_bound=False)
    assert result.spearman > 0.99
    assert result.random_null["p_value"] < 0.01
    noisy = compute_rankability(Space.from_array(planted(noise=3.0)[0]),
                                attribute_from_values(t, "t", "t"), method=method,
                                null_directions=200, shots=(), upper_bound=False)
    assert noisy.spearman < result.spearman


def test_regression_axis_is_the_ridge_direction_and_recovers_v():
    x, t, v, base = planted(noise=0.05, with_base=True)
    xu = unit(x)
    axis, params = fit_axis(xu, t, "regression")
    alpha = params["alpha"]
    xc, yc = xu - xu.mean(0), t - t.mean()
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(xu.shape[1]), xc.T @ yc)
    np.testing.assert_allclose(axis, w / np.linalg.norm(w), atol=1e-8)
    # the unit rows lie near the arc from base towards v: the axis lies in span(base, v) and
    # orders the items by t
    q, _ = np.linalg.qr(np.column_stack([base, v]))
    assert np.linalg.norm(q.T @ axis) > 0.95
    assert stats.spearmanr(xu @ axis, t).statistic > 0.99


def test_extremes_poles_and_pca_closed_forms(rng):
    x, t, _ = planted(n=200, noise=0.5)
    xu = unit(x)
    hi, lo = np.argmax(t), np.argmin(t)
    ext, _ = fit_axis(xu, t, "extremes")
    diff = xu[hi] - xu[lo]
    np.testing.assert_allclose(ext, diff / np.linalg.norm(diff), atol=1e-12)
    poles, _ = fit_axis(xu, t, "poles")
    top, bottom = t >= np.quantile(t, 0.9), t <= np.quantile(t, 0.1)
    diff = xu[top].mean(0) - xu[bottom].mean(0)
    np.testing.assert_allclose(poles, diff / np.linalg.norm(diff), atol=1e-12)
    pc, _ = fit_axis(xu, t, "pca")
    _, _, vt = np.linalg.svd(xu - xu.mean(0))
    ref = vt[0] * np.sign(np.corrcoef(xu @ vt[0], t)[0, 1])
    np.testing.assert_allclose(pc, ref, atol=1e-10)
    given, _ = fit_axis(xu, t, "poles", low=np.array([0, 1]), high=np.array([5]))
    diff = xu[5] - xu[[0, 1]].mean(0)
    np.testing.assert_allclose(given, diff / np.linalg.norm(diff), atol=1e-12)


def test_null_p_values_are_roughly_uniform_on_unrelated_attributes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 6))
    ps = []
    for seed in range(40):
        y = np.random.default_rng(100 + seed).standard_normal(60)
        r = compute_rankability(Space.from_array(x), attribute_from_values(y, "y", "y"),
                                folds=3, null_directions=200, shots=(), upper_bound=False,
                                seed=seed)
        ps.append(r.random_null["p_value"])
    ps = np.array(ps)
    # uniform: a KS distance far below the 0.4 of a p-value that is always ~1 or ~0
    assert stats.kstest(ps, "uniform").statistic < 0.25
    assert 0.02 <= (ps < 0.2).mean() <= 0.45


def test_pairwise_accuracy_against_brute_force():
    rng = np.random.default_rng(1)
    score = rng.integers(0, 5, 40).astype(float)  # ties in the score count 1/2
    y = rng.integers(0, 6, 40).astype(float)  # ties in y are not pairs
    good = total = 0.0
    for i in range(40):
        for j in range(i + 1, 40):
            if y[i] == y[j]:
                continue
            total += 1
            s = (score[i] - score[j]) * (y[i] - y[j])
            good += 1.0 if s > 0 else 0.5 if s == 0 else 0.0
    assert pairwise_accuracy(score, y) == pytest.approx(good / total)


def test_rankability_metrics_are_scipys_on_the_heldout_scores():
    x, t, _ = planted(noise=1.0)
    r = compute_rankability(Space.from_array(x), attribute_from_values(t, "t", "t"), folds=4,
                            null_directions=100, shots=(), upper_bound=False)
    folds = [np.sort(p) for p in np.array_split(np.random.default_rng(0).permutation(300), 4)]
    rho = np.mean([stats.spearmanr(r.scores[f], t[f]).statistic for f in folds])
    tau = np.mean([stats.kendalltau(r.scores[f], t[f]).statistic for f in folds])
    assert r.spearman == pytest.approx(rho) and r.kendall_tau_b == pytest.approx(tau)
    sd = np.std(r.fold_spearman, ddof=1)
    assert r.spearman_ci[1] - r.spearman_ci[0] == pytest.approx(
        2 * stats.t.ppf(0.975, 3) * sd / 2)


def test_attribute_problems():
    with pytest.raises(Exception, match="constant"):
        attribute_from_values(np.ones(10), "a", "f:/a")
    with pytest.raises(Exception, match="not numeric"):
        attribute_from_values(np.array(["x", "y"], dtype=object), "a", "f:/a")


# ----------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    folder = tmp_path_factory.mktemp("axes")
    x, t, _ = planted(n=200, noise=0.2)
    t = t.copy()
    t[[3, 8]] = np.nan
    ids = np.array([f"item{i}" for i in range(200)])
    stack = np.stack([x, planted(n=200, noise=5.0)[0]], axis=1)
    p = write_h5(folder / "a.h5", x, ids=ids, texts=[f"text {i}" for i in range(200)],
                 year=t, name=ids, const=np.ones(200))
    s = write_h5(folder / "s.h5", stack, dataset="hidden", ids=ids, year=t)
    csv = folder / "attr.csv"
    csv.write_text("id,score\n" + "\n".join(f"item{i},{2 * i}" for i in range(0, 200, 2)) + "\n")
    return {"h5": str(p), "stack": str(s), "csv": str(csv), "folder": folder, "t": t}


def test_score_json_contract(dump):
    out = run_json("axes", "score", dump["h5"], "--attribute", "year", "--null-directions",
                   "200", "--shots", "2,10")
    assert list(out) == KEYS
    assert out["n"] == 198 and out["n_missing"] == 2 and out["spearman"] > 0.8
    assert out["random_null"]["n_directions"] == 200 and out["random_null"]["p_value"] < 0.01
    assert {s["n"] for s in out["shots"]} == {2, 10}
    assert any(s["method"] == "two extremes" for s in out["shots"])


def test_fit_writes_an_axis_file_and_project_scores_items(dump, tmp_path):
    axis = tmp_path / "axis.h5"
    out = run_json("axes", "fit", dump["h5"], "--attribute", "year", "-o", axis,
                   "--method", "extremes")
    assert out["axis_file"] == str(axis) and out["n"] == 198
    with h5py.File(axis) as f:
        assert f.attrs["method"] == "extremes" and f.attrs["attribute"] == "year"
        assert f["train_rows"].shape == (198,) and f["axis"].shape == (24,)
    x = h5py.File(dump["h5"])["embeddings"][:]
    t = dump["t"]
    ok = np.isfinite(t)
    xu = unit(x)
    rows = np.flatnonzero(ok)
    hi, lo = rows[np.argmax(t[ok])], rows[np.argmin(t[ok])]
    v = (xu[hi] - xu[lo]) / np.linalg.norm(xu[hi] - xu[lo])
    np.testing.assert_allclose(read_axis(str(axis))["axis"], v, atol=1e-12)
    per_item = tmp_path / "scores.csv"
    proj = run_json("axes", "project", dump["h5"], "--axis", axis, "--attribute", "year",
                    "--per-item", per_item)
    import pandas as pd
    frame = pd.read_csv(per_item)
    np.testing.assert_allclose(frame["score"], xu @ v, atol=1e-12)
    assert proj["axes"][0]["spearman"] == pytest.approx(
        stats.spearmanr(xu[ok] @ v, t[ok]).statistic)


def test_low_and_high_ids(dump, tmp_path):
    axis = tmp_path / "poles.h5"
    run_json("axes", "fit", dump["h5"], "--attribute", "year", "-o", axis, "--method", "poles",
             "--low", "item0,item1", "--high", "item5")
    xu = unit(h5py.File(dump["h5"])["embeddings"][:])
    diff = xu[5] - xu[[0, 1]].mean(0)
    np.testing.assert_allclose(read_axis(str(axis))["axis"], diff / np.linalg.norm(diff),
                               atol=1e-12)
    proc = run_cli("axes", "fit", dump["h5"], "--attribute", "year", "-o", tmp_path / "x.h5",
                   "--low", "item0", "--high", "item5")
    assert proc.returncode == 2  # regression has no poles


def test_attribute_errors_are_one_sentence(dump, tmp_path):
    for spec, word in (("const", "constant"), ("name", "not numeric"), ("nothere", "nothere")):
        proc = run_cli("axes", "score", dump["h5"], "--attribute", spec)
        assert proc.returncode == 3 and word in proc.stderr and proc.stderr.count("\n") == 1
        assert dump["h5"] in proc.stderr


def test_csv_attribute_keyed_by_ids(dump):
    out = run_json("axes", "score", dump["h5"], "--attribute", f"{dump['csv']}:score",
                   "--null-directions", "100", "--shots", "5", "--no-upper-bound")
    assert out["n"] == 100 and out["n_missing"] == 100 and out["attribute"] == "score"


def test_layer_sweep(dump):
    out = run_json("axes", "score", dump["stack"] + ":/hidden", "--attribute", "year",
                   "--layer", "all", "--null-directions", "100", "--shots", "5",
                   "--no-upper-bound")
    rhos = [layer["spearman"] for layer in out["layers"]]
    assert len(rhos) == 2 and rhos[0] > rhos[1]  # layer 1 holds the noisy copy


def test_projection_on_two_axes_and_html(dump, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    run_json("axes", "fit", dump["h5"], "--attribute", "year", "-o", a)
    run_json("axes", "fit", dump["h5"], "--attribute", "year", "-o", b, "--method", "pca")
    html = tmp_path / "p.html"
    out = run_json("axes", "project", dump["h5"], "--axis", a, "--axis", b, "--html", html)
    assert len(out["axes"]) == 2 and out["n"] == 200
    page = html.read_text()
    assert "items on two axes" in page
    space = Space.open(dump["h5"])
    direct = compute_projection(space, [read_axis(str(a))])
    np.testing.assert_allclose(direct.scores[:, 0], unit(space.read_rows(np.arange(200)))
                               @ read_axis(str(a))["axis"], atol=1e-10)


def test_fit_from_python(dump):
    space = Space.open(dump["h5"])
    from geomkit.analysis.axes import read_attribute
    fit = compute_axis(space, read_attribute(space, "year"), method="pca")
    assert fit.n == 198 and abs(np.linalg.norm(fit.axis) - 1) < 1e-12
    assert json.loads(json.dumps(fit.to_dict()))["method"] == "pca"
