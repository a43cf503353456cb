"""Intrinsic dimension against scikit-dimension 0.5's own values (tests/data/oracles/
intrinsic_dim.json on compare_data.h5): TwoNN (linear and MLE fits, discard 0.1 and 0), MLE
(MacKay-Ghahramani, mean, median, unbiased; k = 10, 20), GRIDE (n1 = 1, 4) with its standard
error, lPCA rules, pointwise MLE and local TwoNN of the first 20 points, the MLE's mean / median
over all points; duplicates (the oracle's value on the data without the copies); closed forms
(uniform points on a d-sphere and in a d-cube)."""

import json

import h5py
import numpy as np
import pytest

from conftest import ORACLES
from geomkit import Space
from geomkit.analysis.intdim import (compute_intdim, gride, local_twonn, lpca, mle_pointwise,
                                     twonn)
from geomkit.engine.knn_certified import float64_lists as exact_distances
from geomkit.errors import InputError, UsageError

ORACLE = json.loads((ORACLES / "intrinsic_dim.json").read_text())
G, PW = ORACLE["global"], ORACLE["pointwise"]
SETS = ("id_sphere", "id_gauss10", "id_swiss")
REL = 1e-9  # every exact entry of the oracle states rel 1e-9 (lPCA counts: exact)


def _data(name):
    with h5py.File(ORACLES / "compare_data.h5") as f:
        return f[name][0:f[name].shape[0]]


@pytest.fixture(scope="module")
def results():
    """One run per set at the oracle's defaults (k = 20) with GRIDE at scales up to 8, and one
    with k = 10, TwoNN's MLE fit, GRIDE at n1 = 4 and the unbiased MLE."""
    out = {}
    for name in SETS:
        x = _data(name)
        out[name] = (compute_intdim(Space.from_array(x), k=20, scales=8),
                     compute_intdim(Space.from_array(x), k=10, twonn_fit="mle", gride_n1=4,
                                    mle_comb="mean", unbiased=True))
    return out


@pytest.mark.parametrize("name", SETS)
def test_global_estimators_match_scikit_dimension(results, name):
    r, r10 = results[name]
    for key in ("TwoNN_linear_discard0.1", "MLE_k20_comb_mle", "GRIDE_n1_1_n2_2",
                "GRIDE_n1_4_n2_8", "MLE_k20_unbiased_comb_mle", "MLE_k10_comb_mle"):
        assert G[key]["tol"] == {"rel": REL} and G[key]["exact"]
    assert r.twonn == pytest.approx(G["TwoNN_linear_discard0.1"][name]["value"], rel=REL)
    assert r.mle == pytest.approx(G["MLE_k20_comb_mle"][name]["value"], rel=REL)
    by_comb = r.details["mle_by_comb"]
    assert by_comb["mean"] == pytest.approx(G["MLE_k20_comb_mean"][name]["value"], rel=REL)
    assert by_comb["median"] == pytest.approx(G["MLE_k20_comb_median"][name]["value"], rel=REL)
    assert r.gride == pytest.approx(G["GRIDE_n1_1_n2_2"][name]["value"], rel=REL)
    assert r.details["gride_error"] == pytest.approx(G["GRIDE_n1_1_n2_2"][name]["error_"],
                                                     rel=REL)
    # the scales n1 = 1, 2, 4 reproduce the single-scale oracles at n1 = 1 and n1 = 4
    assert [s["n1"] for s in r.gride_scales] == [1, 2, 4]
    assert r.gride_scales[2]["id"] == pytest.approx(G["GRIDE_n1_4_n2_8"][name]["value"], rel=REL)
    assert r.gride_scales[2]["error"] == pytest.approx(G["GRIDE_n1_4_n2_8"][name]["error_"],
                                                       rel=REL)
    assert r10.gride == pytest.approx(G["GRIDE_n1_4_n2_8"][name]["value"], rel=REL)
    assert r10.twonn == pytest.approx(G["TwoNN_mle_discard0.1"][name]["value"], rel=REL)
    # unbiased: numerator k - 2 instead of k - 1, so 8/9 of the k = 10 values
    assert r10.details["mle_by_comb"]["mackay"] == pytest.approx(
        G["MLE_k10_comb_mle"][name]["value"] * 8 / 9, rel=REL)
    assert r10.mle == pytest.approx(PW["MLE_k10"][name]["mean_all"] * 8 / 9, rel=REL)
    # lPCA from the streaming moments: the explained-variance rule and Fukunaga-Olsen exact,
    # the participation ratio to 1e-9
    assert r.lpca == G["lPCA_ratio_0.95"][name]["value"]
    assert r.details["lpca_rules"]["fo"] == G["lPCA_FO"][name]["value"]
    assert r.details["lpca_rules"]["participation_ratio"] == pytest.approx(
        G["lPCA_participation_ratio"][name]["value"], rel=REL)
    assert (r.n, r.k, r.n_duplicates) == (2000, 20, 0)


@pytest.mark.parametrize("name", SETS)
def test_unbiased_mle_and_discard_zero(name):
    x = _data(name)
    r = compute_intdim(Space.from_array(x), k=20, unbiased=True, twonn_fit="mle",
                       discard_fraction=0.0, estimators=("twonn", "mle"))
    assert r.mle == pytest.approx(G["MLE_k20_unbiased_comb_mle"][name]["value"], rel=REL)
    assert r.twonn == pytest.approx(G["TwoNN_mle_discard0"][name]["value"], rel=REL)
    assert (r.gride, r.lpca) == (None, None)  # not asked


@pytest.mark.parametrize("name", SETS)
def test_pointwise_lid_matches_scikit_dimension(results, name):
    r, _ = results[name]
    oracle = PW["MLE_k20"][name]
    np.testing.assert_allclose(r.lid_values[:20], oracle["first20"], rtol=REL)
    assert r.lid["mean"] == pytest.approx(oracle["mean_all"], rel=REL)
    assert r.lid["median"] == pytest.approx(oracle["median_all"], rel=REL)
    assert r.lid_values.min() == pytest.approx(oracle["min_all"], rel=REL)
    assert r.lid_values.max() == pytest.approx(oracle["max_all"], rel=REL)
    assert r.lid["p95"] == pytest.approx(np.percentile(r.lid_values, 95))
    # k = 10 through the library pieces (graph, exact distances, pointwise MLE)
    space = Space.from_array(_data(name))
    _, dist = exact_distances(_data(name), space.knn(10, "euclidean").indices)
    np.testing.assert_allclose(mle_pointwise(dist[:20], 10), PW["MLE_k10"][name]["first20"],
                               rtol=REL)


@pytest.mark.parametrize("name", SETS)
def test_local_twonn_matches_fit_pw(name):
    """scikit-dimension's fit_pw: the global TwoNN refitted on each point's 100 nearest other
    points (linear fit, discard 0.1; and the MLE fit with discard 0)."""
    x = _data(name)
    idx, _ = exact_distances(x, Space.from_array(x).knn(100, "euclidean").indices)
    lin = local_twonn(x, idx[:20], discard_fraction=0.1, fit="linear")
    np.testing.assert_allclose(lin, PW["TwoNN_linear_fit_pw_n100"][name]["first20"], rtol=REL)
    mle = local_twonn(x, idx[:20], discard_fraction=0.0, fit="mle")
    np.testing.assert_allclose(mle, PW["TwoNN_mle_fit_pw_n100"][name]["first20"], rtol=REL)


def test_duplicates_give_the_value_without_the_copies():
    """Copies (a row of id_sphere 5 times, 200 rows twice): every neighbour-based estimate equals
    scikit-dimension's on the data without them, copies get their twin's LID; lPCA (all rows)
    keeps the rank 6 of the sphere's span."""
    x = _data("id_sphere")
    extra = np.vstack([np.repeat(x[7:8], 4, axis=0), x[:200]])
    order = np.random.default_rng(0).permutation(x.shape[0] + extra.shape[0])
    xd = np.vstack([x, extra])[order]  # copies scattered, some before their first occurrence
    r = compute_intdim(Space.from_array(xd), k=20, scales=4, with_hubness=True)
    assert (r.n, r.n_duplicates, r.n_distinct) == (2204, 204, 2000)
    assert r.twonn == pytest.approx(G["TwoNN_linear_discard0.1"]["id_sphere"]["value"], rel=REL)
    assert r.mle == pytest.approx(G["MLE_k20_comb_mle"]["id_sphere"]["value"], rel=REL)
    assert r.gride == pytest.approx(G["GRIDE_n1_1_n2_2"]["id_sphere"]["value"], rel=REL)
    assert r.lid["mean"] == pytest.approx(PW["MLE_k20"]["id_sphere"]["mean_all"], rel=REL)
    assert r.lpca == 6
    # every copy carries the LID of its first occurrence (original row 7 -> several positions)
    src = np.r_[np.arange(2000), np.full(4, 7), np.arange(200)][order]
    first = np.array([np.flatnonzero(src == s)[0] for s in src])
    np.testing.assert_array_equal(r.lid_values, r.lid_values[first])
    pw = PW["MLE_k20"]["id_sphere"]["first20"]
    np.testing.assert_allclose([r.lid_values[np.flatnonzero(src == i)[0]] for i in range(20)],
                               pw, rtol=REL)
    assert r.kocc.sum() >= 20 * 2000  # k-occurrence of the distinct graph, copies repeat theirs


def test_translation_far_from_the_origin_keeps_the_values():
    """Ratios of small distances far from the origin: the Gram-product distances of the search
    lose digits there (|x|² ≫ r²); the estimators read exact differences."""
    x = _data("id_sphere") + 300.0
    r = compute_intdim(Space.from_array(x), k=20, estimators=("twonn", "mle"))
    assert r.twonn == pytest.approx(G["TwoNN_linear_discard0.1"]["id_sphere"]["value"], rel=1e-9)
    assert r.mle == pytest.approx(G["MLE_k20_comb_mle"]["id_sphere"]["value"], rel=1e-9)


@pytest.mark.parametrize("dim", [2, 4])
def test_closed_form_uniform_sphere_and_cube(dim):
    """Uniform points on S^dim (in R^(dim+1)) and in [0, 1]^dim, rotated into R^20: the
    nonlinear estimates are near dim, lPCA counts the linear span (dim + 1 for the sphere)."""
    rng = np.random.default_rng(dim)
    q = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    s = rng.standard_normal((2500, dim + 1))
    sphere = (s / np.linalg.norm(s, axis=1, keepdims=True)) @ q[:dim + 1]
    cube = rng.random((2500, dim)) @ q[:dim]
    for x, span in ((sphere, dim + 1), (cube, dim)):
        r = compute_intdim(Space.from_array(x), k=20)
        for value in (r.twonn, r.mle, r.gride, r.lid["median"]):
            assert abs(value - dim) < 0.12 * dim, (value, dim)
        assert r.lpca == span


def test_estimator_pieces_closed_forms():
    # Pareto(1, d) ratios by inverse CDF on a grid: log mu = -log(1 - u)/d exactly
    u = (np.arange(1, 10001) - 0.5) / 10000
    mu = (1 - u) ** (-1 / 3.0)
    assert twonn(mu, discard_fraction=0.0, fit="mle") == pytest.approx(3.0, rel=2e-3)
    assert twonn(mu, discard_fraction=0.1, fit="linear") == pytest.approx(3.0, rel=2e-3)
    dist = np.column_stack([np.ones(10000), mu])
    assert gride(dist, 1, 2)[0] == pytest.approx(twonn(mu, discard_fraction=0, fit="mle"),
                                                 rel=1e-9)
    # the Levina-Bickel m_i of distances r_j = j: (k - 1) / sum_j log(k / j)
    k = 20
    r = np.arange(1, k + 1, dtype=float)[None, :]
    expect = (k - 1) / np.log(k / np.arange(1, k + 1)).sum()
    assert mle_pointwise(r, k)[0] == pytest.approx(expect, rel=1e-15)
    rules = lpca(np.array([4.0, 3.0, 2.0, 1.0]), variance=0.95)
    assert rules == {"ratio": 4, "fo": 4, "participation_ratio": pytest.approx(100 / 30)}
    # two components explain exactly 0.7: two (not three) are needed
    assert lpca(np.array([4.0, 3.0, 2.0, 1.0]), variance=0.7)["ratio"] == 2
    assert lpca(np.array([4.0, 3.0, 2.0, 1.0]), variance=0.71)["ratio"] == 3
    assert lpca(np.array([4.0, 3.0, 2.0, 1.0]), variance=0.3)["ratio"] == 1


def test_refusals(rng):
    x = rng.standard_normal((30, 5))
    with pytest.raises(UsageError, match="at least 31 distinct rows"):
        compute_intdim(Space.from_array(x), k=30)
    with pytest.raises(UsageError, match="n2"):
        compute_intdim(Space.from_array(x), k=5, gride_n1=20)
    with pytest.raises(InputError, match="copies of one row"):
        compute_intdim(Space.from_array(np.ones((50, 4))), k=5)
    with pytest.raises(UsageError, match="discard"):
        compute_intdim(Space.from_array(x), k=5, discard_fraction=0.0)
    with pytest.raises(UsageError, match="estimators"):
        compute_intdim(Space.from_array(x), k=5, estimators=("danco",))
    # duplicates leave fewer distinct rows than k asks: the message says so
    with pytest.raises(UsageError, match="are copies"):
        compute_intdim(Space.from_array(np.vstack([x, x])), k=30)
    # a lattice: every item's neighbours tied -> GRIDE has no usable ratio, refused
    grid = np.array([[i, j] for i in range(10) for j in range(10)], dtype=float)
    with pytest.raises(InputError, match="GRIDE"):
        compute_intdim(Space.from_array(grid), k=4, estimators=("gride",))


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("offset", [0.0, 300.0])
def test_float32_dumps_take_the_certified_search(monkeypatch, name, offset):
    """float32 rows: the certified bfloat16 search (geomkit/engine/knn_certified.py) and the
    float32 engine give the same lists, hence the same values to 1e-12, and stay at
    scikit-dimension's float64 values up to the float32 rounding of the data — also 300 away
    from the origin, where ‖x‖² ≫ r²: a float32 Gram product of the rows as stored ranks
    neighbours by digits it no longer has (TwoNN on id_sphere + 300 came out 4.48 instead of
    4.88); both searches centre the rows first."""
    x = (_data(name) + offset).astype(np.float32)
    kw = dict(k=20, scales=4, with_hubness=True)
    monkeypatch.setenv("GEOMKIT_KNN_BF16", "1")
    a = compute_intdim(Space.from_array(x), **kw)
    monkeypatch.setenv("GEOMKIT_KNN_BF16", "0")
    b = compute_intdim(Space.from_array(x), **kw)
    assert a.knn["search"]["products"] == "bfloat16, certified in float64"
    assert b.knn["search"] == {"products": "float32"}
    for key in ("twonn", "mle", "gride"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-12), key
    np.testing.assert_allclose(a.lid_values, b.lid_values, rtol=1e-12)
    np.testing.assert_array_equal(a.kocc, b.kocc)
    tol = 1e-5 if offset else 1e-6  # float32 rounding of 300 + x: ~4e-6 seen
    assert a.twonn == pytest.approx(G["TwoNN_linear_discard0.1"][name]["value"], rel=tol)
    assert a.mle == pytest.approx(G["MLE_k20_comb_mle"][name]["value"], rel=tol)
    assert a.gride == pytest.approx(G["GRIDE_n1_1_n2_2"][name]["value"], rel=10 * tol)
