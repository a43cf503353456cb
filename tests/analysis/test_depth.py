"""Depth against the tte-depth oracles (corrected for the package's equal-size bug) and against
brute-force O(N·M·d) definitions of cosine, chord and spatial depth."""

import json

import numpy as np
import pytest

from conftest import ORACLES, write_h5
from geomkit import open_source
from geomkit.analysis.depth import compute_depth, q_liu_singh, q_package

DATA = str(ORACLES / "isotropy_depth_data.h5")
ORACLE = json.loads((ORACLES / "depth.json").read_text())


def _src(name):
    return open_source(f"{DATA}:/{name}")


def test_single_corpus_depths_match_oracle():
    with _src("depth_X") as s:
        r = compute_depth(s)
    o = ORACLE["single_corpus_depth_X"]
    np.testing.assert_allclose(r.ref_depth[:5], o["first5"], atol=1e-9)
    assert r.ref_depth.min() == pytest.approx(o["min"], abs=1e-9)
    assert r.ref_depth.max() == pytest.approx(o["max"], abs=1e-9)
    assert r.mean_depth_ref == pytest.approx(o["mean"], abs=1e-9)
    assert (int(r.ref_depth.argmax()), int(r.ref_depth.argmin())) == (o["argmax"], o["argmin"])


@pytest.mark.parametrize("case", ORACLE["tests"], ids=lambda c: c["G"])
def test_rank_tests_match_oracle_including_equal_sizes(case):
    with _src(case["F"]) as f, _src(case["G"]) as g:
        assert f.n == g.n  # every oracle case has |F| == |G|: the package's buggy path
        d = compute_depth(f, g).to_dict()
        r = compute_depth(f, g)
    for ours, theirs in (("mean_depth_ref", "mean_depth_F"), ("mean_depth_test", "mean_depth_G"),
                         ("W", "W"), ("p", "p"), ("q_liu_singh", "q_liu_singh"),
                         ("q_package", "q_package")):
        assert d[ours] == pytest.approx(case[theirs], abs=1e-9), ours
    np.testing.assert_allclose(r.test_depth[:3], case["first3_depth_G"], atol=1e-9)


def test_not_the_buggy_package_values():
    bug = ORACLE["buggy_package_as_is_equal_sizes_for_contrast"]
    with _src(bug["F"]) as f, _src(bug["G"]) as g:
        d = compute_depth(f, g).to_dict()
    assert abs(d["W"] - bug["W"]) > 0.1 and abs(d["q_package"] - bug["q_package"]) > 1e-3


def _brute(F, G, kind):
    """Depth of G's rows w.r.t. F (self excluded when G is F), straight from the definitions."""
    same = G is F
    if kind in ("cosine", "chord"):
        Fu = F / np.linalg.norm(F, axis=1, keepdims=True)
        Gu = G / np.linalg.norm(G, axis=1, keepdims=True)
        delta = 1 - Gu @ Fu.T if kind == "cosine" else np.sqrt(np.clip(2 - 2 * Gu @ Fu.T, 0, None))
        if same:
            np.fill_diagonal(delta, 0)
            return 2 - delta.sum(1) / (len(F) - 1)
        return 2 - delta.mean(1)
    out = []
    for i, x in enumerate(G):
        diff = x - F
        norm = np.linalg.norm(diff, axis=1)
        keep = np.ones(len(F), bool)
        if same:
            keep[i] = False
        signs = diff[keep] / norm[keep][:, None]
        out.append(1 - np.linalg.norm(signs.sum(0)) / keep.sum())
    return np.array(out)


@pytest.mark.parametrize("kind", ["cosine", "chord", "spatial"])
def test_depths_equal_brute_force_with_unequal_sizes_and_small_blocks(tmp_path, rng, kind):
    F = rng.standard_normal((230, 7)) + 0.5
    G = rng.standard_normal((170, 7)) * 1.3 + 0.2
    pf, pg = write_h5(tmp_path / "f.h5", F), write_h5(tmp_path / "g.h5", G)
    with open_source(str(pf), memory=2**20) as f, open_source(str(pg), memory=2**20) as g:
        r = compute_depth(f, g, depth=kind, dd=True)
    np.testing.assert_allclose(r.ref_depth, _brute(F, F, kind), atol=1e-9)
    np.testing.assert_allclose(r.test_depth, _brute(F, G, kind), atol=1e-9)
    np.testing.assert_allclose(r.dd["ref"], _brute(G, F, kind), atol=1e-9)
    np.testing.assert_allclose(r.dd["test"], _brute(G, G, kind), atol=1e-9)


def test_q_estimators_and_effect_size_by_counting(rng):
    x = np.round(rng.standard_normal(50), 1)  # ties on purpose
    y = np.round(rng.standard_normal(40) - 0.5, 1)
    assert q_liu_singh(x, y) == pytest.approx(np.mean([(x <= v).mean() for v in y]))
    pooled = np.concatenate([x, y])
    from scipy.stats import rankdata
    ranks = rankdata(pooled)
    expect = np.mean([(ranks < r).sum() / ranks.size for r in ranks[50:]])
    assert q_package(x, y) == pytest.approx(expect)
    from geomkit.analysis.depth import cliffs_delta
    gt = np.mean([(x > v).sum() - (x < v).sum() for v in y]) / 50
    assert cliffs_delta(x, y) == pytest.approx(gt)


def test_spatial_depth_has_power_where_cosine_has_none():
    # depth_X ~ N(0, I): cosine depth orders along a mean direction that does not exist.
    with _src("depth_X") as f, _src("depth2_Y_mean1_null") as g:
        cos = compute_depth(f, g, depth="cosine")
        spatial = compute_depth(f, g, depth="spatial")
    assert cos.to_dict()["weak_mean_direction"] and any("spatial" in n for n in cos.notes())
    assert spatial.test["p"] < 1e-6 < cos.test["p"] or spatial.test["p"] < cos.test["p"]


def test_split_by_labels_subsets(tmp_path, rng):
    x = np.vstack([rng.standard_normal((60, 5)) + 1, rng.standard_normal((40, 5)) + 1])
    labels = ["a"] * 60 + ["b"] * 40
    p = write_h5(tmp_path / "l.h5", x, labels=labels)
    with open_source(str(p)) as src:
        ref, test = src.subset(np.arange(60), name="labels=a"), src.subset(np.arange(60, 100))
        r = compute_depth(ref, test)
    ref_x = x[:60]
    np.testing.assert_allclose(r.ref_depth, _brute(ref_x, ref_x, "cosine"), atol=1e-12)
    np.testing.assert_allclose(r.test_depth, _brute(ref_x, x[60:], "cosine"), atol=1e-12)
    assert "labels=a" in r.ref_label
