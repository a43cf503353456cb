"""Norm diagnostics against their definitions."""

import numpy as np
import pytest

from conftest import write_h5
from geomkit import open_source
from geomkit.analysis.norms import (compute_norms, frequency_bins, norm_summary,
                                    percentile_baseline)


def test_summary_quantiles_and_mad_outliers(rng):
    norms = np.r_[rng.normal(10, 1, 500), 30.0, 0.0]
    s = norm_summary(norms)
    assert s["mean"] == pytest.approx(norms.mean()) and s["std"] == pytest.approx(norms.std(ddof=1))
    assert s["quantiles"]["p95"] == pytest.approx(np.quantile(norms, 0.95))
    med = np.median(norms)
    mad = 1.4826 * np.median(np.abs(norms - med))
    assert s["n_outliers"] == int((np.abs(norms - med) > 3.5 * mad).sum()) >= 2
    assert s["n_zero"] == 1 and s["n_near_zero"] == 1


def test_frequency_bins_merge_top_down_to_50_words():
    counts = np.r_[np.full(300, 1), np.arange(2, 200), [5000, 10000]]
    bins = frequency_bins(counts)
    sizes = np.bincount(bins)
    assert sizes.min() >= 50
    assert bins[-1] == bins[-2] == 0  # the two most frequent words share the top bin
    vals = np.arange(counts.size, dtype=float)
    base = percentile_baseline(vals, bins)
    for b in np.unique(bins):
        assert np.all(base[bins == b] == np.percentile(vals[bins == b], 3))


def test_compute_norms_groups_counts_and_likelihood(tmp_path, rng):
    x = rng.standard_normal((400, 5)) * [3, 2, 1, 1, 0.5] + 1
    x[:100] *= 3  # group "big"
    labels = ["big"] * 100 + ["small"] * 300
    counts = rng.integers(1, 5000, 400)
    p = write_h5(tmp_path / "n.h5", x, labels=labels, counts=counts, ids=[f"w{i}" for i in range(400)])
    with open_source(str(p)) as src:
        r = compute_norms(src, groups=src.metadata.labels, counts=src.metadata.counts)
    norms = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(r.norms, norms)
    groups = {g["group"]: g for g in r.groups}
    assert groups["big"]["mean"] == pytest.approx(norms[:100].mean())
    assert r.imbalance == pytest.approx(norms[:100].mean() / norms[100:].mean())
    from scipy import stats
    assert r.frequency["spearman"] == pytest.approx(stats.spearmanr(norms, np.log(counts)).statistic)
    mu, cov = x.mean(0), np.cov(x, rowvar=False)
    diff = x - mu
    expect = -0.5 * (5 * np.log(2 * np.pi) + np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff))
    np.testing.assert_allclose(r.log_likelihood, expect, rtol=1e-5)
    sq = norms ** 2
    np.testing.assert_allclose(r.delta_norm_sq, sq - percentile_baseline(sq, frequency_bins(counts)))


def test_rank_deficient_likelihood_is_finite(tmp_path, rng):
    x = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 10))
    p = write_h5(tmp_path / "r.h5", x)
    with open_source(str(p)) as src:
        r = compute_norms(src)
    assert np.isfinite(r.log_likelihood).all()
