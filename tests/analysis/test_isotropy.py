"""Isotropy measures against the IsoScore reference package (oracles), closed forms and
brute-force definitions."""

import json

import numpy as np
import pytest
from scipy.special import logsumexp

from conftest import ORACLES, write_h5
from geomkit import open_source
from geomkit.analysis.isotropy import (compute_isotropy, effective_rank_from_singular_values,
                                       isoscore_from_eigenvalues, isoscore_of_covariance,
                                       isoscore_star)

DATA = str(ORACLES / "isotropy_depth_data.h5")
ORACLE = json.loads((ORACLES / "isotropy.json").read_text())


def _iso(name, **kw):
    with open_source(f"{DATA}:/{name}") as src:
        return compute_isotropy(src, **kw)


def _array(name):
    import h5py
    with h5py.File(DATA) as f:
        return f[name][0:f[name].shape[0]]


@pytest.mark.parametrize("name", ["A_iso", "B_spike_rot", "B_spike_axis", "C_sub5",
                                  "A_plus_mean1000", "A_times_1e3"])
def test_isoscore_equals_reference_v1(name):
    assert _iso(name).isoscore == pytest.approx(ORACLE["isoscore"][name]["v1_0"], abs=1e-9)


def test_isoscore_when_n_below_d_matches_v2_and_reports_star():
    r = _iso("A_first50")
    assert r.isoscore == pytest.approx(ORACLE["isoscore"]["A_first50"]["v2_0_1"], abs=1e-6)
    assert r.n < r.d and r.isoscore_star is not None and r.zeta == 0.2
    assert any("unreliable" in n for n in r.notes())


@pytest.mark.parametrize("name", ["A_iso", "B_spike_rot", "C_sub5", "A_first50"])
@pytest.mark.parametrize("zeta", ["0.0", "0.2", "0.5", "1.0"])
def test_isoscore_star_identity_target(name, zeta):
    expect = ORACLE["isoscore_star_C0_identity"][name][zeta]
    assert _iso(name, zeta=float(zeta)).isoscore_star == pytest.approx(expect, abs=1e-6)


@pytest.mark.parametrize("zeta", ["0.2", "0.5", "0.75"])
def test_isoscore_star_with_covariance_of_larger_dump(zeta):
    c0 = np.cov(_array("A_iso"), rowvar=False)
    r = _iso("A_first50", zeta=float(zeta), c0=c0, c0_label="A_iso")
    assert r.isoscore_star == pytest.approx(ORACLE["isoscore_star_A_first50_C0_cov_of_A_iso"][zeta],
                                            abs=1e-6)


def test_isoscore_of_given_covariances():
    cases = ORACLE["isoscore_of_covariance"]
    assert isoscore_of_covariance(np.eye(64)) == pytest.approx(cases["I_64"], abs=1e-9)
    assert isoscore_of_covariance(np.diag([100.0] + [1.0] * 63)) == pytest.approx(
        cases["diag(100,1,...,1) d=64"], abs=1e-6)
    assert isoscore_of_covariance(np.diag([1.0] * 5 + [0.0] * 59)) == pytest.approx(
        cases["I_5 plus 59 zeros"], abs=1e-6)


@pytest.mark.parametrize("k,n", [(1, 10), (3, 10), (5, 64), (64, 64), (17, 100)])
def test_closed_form_k_equal_dims(k, n):
    assert isoscore_from_eigenvalues(np.r_[np.full(k, 2.5), np.zeros(n - k)]) == pytest.approx(
        (k - 1) / (n - 1), abs=1e-12)


def test_invariances_and_the_translated_cloud_pitfall(rng):
    x = rng.standard_normal((3000, 16)) * np.linspace(0.5, 3, 16)
    q = np.linalg.qr(rng.standard_normal((16, 16)))[0]
    ref = isoscore_of_covariance(np.cov(x, rowvar=False))
    for y in (x + 50.0, x * 1e-3, x @ q):
        assert isoscore_of_covariance(np.cov(y, rowvar=False)) == pytest.approx(ref, abs=1e-10)
    a, b = _iso("A_iso"), _iso("A_plus_mean1000")
    assert b.avg_cosine > 0.999 and abs(a.avg_cosine) < 1e-3  # avg cosine only sees the offset
    assert b.isoscore == pytest.approx(a.isoscore, abs=1e-12)
    assert b.mean_norm_ratio > 0.99


def test_avg_cosine_conformity_uniformity_against_brute_force(tmp_path, rng):
    x = rng.standard_normal((300, 8)) + 0.7
    p = write_h5(tmp_path / "a.h5", x, ids=[f"i{k}" for k in range(300)])
    with open_source(str(p)) as src:
        r = compute_isotropy(src, uniformity_max_n=10_000)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    off = ~np.eye(300, dtype=bool)
    assert r.avg_cosine == pytest.approx(cos[off].mean(), abs=1e-12)
    np.testing.assert_allclose(r.conformity, (cos.sum(1) - 1) / 299, atol=1e-12)
    iu = np.triu_indices(300, 1)
    sq = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)[iu]
    assert r.uniformity == pytest.approx(np.log(np.mean(np.exp(-2 * sq))), abs=1e-10)
    np.testing.assert_allclose(r.norms, np.linalg.norm(x, axis=1))
    assert r.cosine_histogram.sum() == iu[0].size
    assert list(r.per_item().columns) == ["row", "id", "conformity", "norm"]


def test_partition_and_effective_rank_against_definitions(tmp_path, rng):
    x = (rng.standard_normal((400, 6)) * [3, 2, 1, 1, .5, .1] + 0.2) * 0.3
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        r = compute_isotropy(src)
    _, vecs = np.linalg.eigh(x.T @ x)
    logz = np.concatenate([logsumexp(x @ vecs, axis=0), logsumexp(-x @ vecs, axis=0)])
    assert r.partition_isotropy == pytest.approx(np.exp(logz.min() - logz.max()), rel=1e-10)
    s_c = np.linalg.svd(x - x.mean(0), compute_uv=False)
    s_u = np.linalg.svd(x, compute_uv=False)
    assert r.effective_rank == pytest.approx(effective_rank_from_singular_values(s_c), rel=1e-10)
    p_u = s_u / s_u.sum()
    assert r.effective_rank_uncentred == pytest.approx(np.exp(-(p_u * np.log(p_u)).sum()), rel=1e-9)
    lam = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    assert r.top_pc_share["top1"] == pytest.approx(lam[0] / lam.sum(), rel=1e-10)
    assert r.top_pc_share["top10"] == pytest.approx(1.0)


def test_uniformity_on_sample_is_seeded(tmp_path, rng):
    x = rng.standard_normal((500, 5))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        a = compute_isotropy(src, uniformity_max_n=100, seed=1)
        b = compute_isotropy(src, uniformity_max_n=100, seed=1)
    assert a.uniformity_rows == 100 and a.uniformity == b.uniformity
    assert any("sample of 100" in n for n in a.notes())


def test_isoscore_star_closed_form():
    cov = np.diag([4.0, 1.0, 0.0])
    assert isoscore_star(cov, 0.0) == pytest.approx(isoscore_of_covariance(cov))
    assert isoscore_star(cov, 1.0) == pytest.approx(1.0)


def test_conformity_with_first_pass_norms_or_its_own_row_sums(tmp_path, rng):
    """The second pass takes the first pass's norms when the rows line up, and sums the block
    itself when they do not: the same values either way."""
    from geomkit.analysis.isotropy import ConformityAccumulator
    from geomkit.engine import run_pass, streaming_row_stats
    x = rng.standard_normal((500, 9)) + 0.5
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        stats = streaming_row_stats(src)
        known = ConformityAccumulator(stats.mean_unit, known=(stats.rows, stats.norms))
        own = ConformityAccumulator(stats.mean_unit)
        assert stats.rows is None  # a full view keeps no index array: rows 0..n−1
        shifted = ConformityAccumulator(stats.mean_unit, known=(np.arange(500) + 1, stats.norms))
        run_pass(src, known, own, shifted)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = unit @ unit.mean(0)
    for acc in (known, own, shifted):
        rows, dots = acc.result()
        assert rows is None  # 0..n−1
        np.testing.assert_allclose(dots, expected, rtol=1e-12)
    assert not known.takes_sums and own.takes_sums
