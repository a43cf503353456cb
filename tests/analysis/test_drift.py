"""Drift against the oracles (alibi-detect 0.13 MMD², Evidently 0.7.23 conventions), brute-force
definitions of each statistic and permutation, calibration under H0 and a real check on the
shipped MiniLM sample."""

import json

import h5py
import numpy as np
import pytest
from scipy.stats import false_discovery_control, ks_2samp
from sklearn.metrics import roc_auc_score

from conftest import ORACLES, SAMPLES
from geomkit import Space
from geomkit.analysis.drift import (
    TESTS, _memberships, _mmd_exact, _mmd_rff, classifier_test, compute_drift, delong_se,
    ks_test, mean_test, median_sigma, mmd_test)
from geomkit.errors import InputError, UsageError

ORACLE = json.loads((ORACLES / "drift.json").read_text())
with h5py.File(ORACLES / "compare_data.h5") as _h:
    DATA = {k: _h[k][()] for k in ("drift_ref", "drift_same", "drift_shift", "drift_scale")}
CASES = ("drift_same", "drift_shift", "drift_scale")
SIGMAS = ("sigma_1.0", "sigma_pooled_median_dist", "sigma_alibi_default_inferred_from_ref")


def _close(ours, entry, value):
    tol = entry["tol"]
    if "abs" in tol:
        assert abs(ours - value) <= tol["abs"], (ours, value)
    else:
        assert ours == pytest.approx(value, rel=tol["rel"]), (ours, value)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("setting", SIGMAS)
def test_mmd2_equals_alibi_detect(case, setting):
    entry = ORACLE["alibi_detect_mmd"][case][setting]
    r = mmd_test(DATA["drift_ref"], DATA[case], sigma=entry["sigma"][0], permutations=1000)
    _close(r["statistic"], entry, entry["mmd2_unbiased"])
    # p-values are random: ours (1000 permutations, +1 rule) within binomial error of alibi's
    assert abs(r["p_value"] - entry["p_value"]) <= 0.07, (r["p_value"], entry["p_value"])


@pytest.mark.parametrize("case", CASES)
def test_default_sigma_is_the_pooled_median_distance_and_gives_alibis_statistic(case):
    entry = ORACLE["alibi_detect_mmd"][case]
    sigma, used = median_sigma(DATA["drift_ref"], DATA[case])
    assert used == 1000 and sigma == pytest.approx(entry["pooled_median_dist"], rel=1e-12)
    r = compute_drift(DATA["drift_ref"], DATA[case], tests="mmd", permutations=200)
    t = r.tests["mmd"]
    assert t["estimator"] == "exact" and t["sigma"] == pytest.approx(sigma, rel=1e-12)
    _close(t["statistic"], entry["sigma_pooled_median_dist"],
           entry["sigma_pooled_median_dist"]["mmd2_unbiased"])
    assert (t["p_value"] <= 0.005) == (case != "drift_same")


@pytest.mark.parametrize("case", CASES)
def test_evidently_conventions(case):
    ev = ORACLE["evidently"]["values"][case]
    ref, cur = DATA["drift_ref"], DATA[case]
    m = mean_test(ref, cur, bootstraps=10)
    assert m["euclidean"] == pytest.approx(ev["distance_euclidean"]["score_direct"], rel=1e-12)
    assert m["cosine"] == pytest.approx(ev["distance_cosine"]["score_direct"], rel=1e-12)
    # Evidently's MMD: exp(-d²/σ_e²), σ_e = median REF-vs-CUR distance, negative values clipped:
    # the same unbiased statistic at sigma = σ_e / √2
    d = np.sqrt(((ref[:, None, :] - cur[None, :, :]) ** 2).sum(-1))
    r = mmd_test(ref, cur, sigma=np.median(d) / np.sqrt(2), permutations=0)
    assert max(r["statistic"], 0.0) == pytest.approx(ev["mmd_default"]["score_direct"], rel=1e-9,
                                                     abs=1e-15)


def _brute_mmd(x, y, k):
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n].copy(), k[n:, n:].copy(), k[:n, n:]
    np.fill_diagonal(kxx, 0)
    np.fill_diagonal(kyy, 0)
    return kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2 * kxy.sum() / (n * m)


def _gauss(z, sigma):
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


def test_every_permutation_equals_brute_force_with_tiny_blocks(rng):
    x, y = rng.standard_normal((37, 6)), rng.standard_normal((29, 6)) + 0.3
    member = _memberships(37, 29, 25, np.random.default_rng(1))
    assert (member.sum(0) == 37).all() and member[:37, 0].all()
    stats, observed, witness = _mmd_exact(x, y, 2.0, member, memory=4096)  # 1 column per chunk
    z = np.vstack([x, y])
    k = _gauss(z, 2.0)
    brute = [_brute_mmd(z[member[:, j]], z[~member[:, j]], k[np.r_[np.flatnonzero(member[:, j]),
                                                                    np.flatnonzero(~member[:, j])]]
                        [:, np.r_[np.flatnonzero(member[:, j]), np.flatnonzero(~member[:, j])]])
             for j in range(member.shape[1])]
    np.testing.assert_allclose(stats, brute, rtol=1e-10, atol=1e-14)
    assert observed == pytest.approx(brute[0], rel=1e-12)
    np.fill_diagonal(k, 0)
    is_new = np.arange(66) >= 37
    expect = k[:, 37:].sum(1) / (29 - is_new) - k[:, :37].sum(1) / (37 - ~is_new)
    np.testing.assert_allclose(witness, expect, rtol=1e-10)


def test_random_features_statistic_equals_its_kernel_brute_force(rng):
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((30, 5))
    member = _memberships(40, 30, 10, np.random.default_rng(2))
    stats, observed, _ = _mmd_rff(x, y, 1.5, member, 64, np.random.default_rng(9), memory=8192)
    w = np.random.default_rng(9).standard_normal((5, 64)) / 1.5
    z = np.vstack([x, y])
    phi = np.hstack([np.cos(z @ w), np.sin(z @ w)]) / 8.0
    k = phi @ phi.T
    for j in range(member.shape[1]):
        order = np.r_[np.flatnonzero(member[:, j]), np.flatnonzero(~member[:, j])]
        assert stats[j] == pytest.approx(_brute_mmd(z[member[:, j]], z[~member[:, j]],
                                                    k[order][:, order]), rel=1e-9, abs=1e-13)


def test_random_features_approach_the_exact_statistic():
    ref, cur = DATA["drift_ref"], DATA["drift_shift"]
    entry = ORACLE["alibi_detect_mmd"]["drift_shift"]["sigma_pooled_median_dist"]
    r = mmd_test(ref, cur, sigma=entry["sigma"][0], permutations=200, exact_max=10, features=4096)
    assert r["estimator"] == "random_features" and r["features"] == 8192
    assert r["statistic"] == pytest.approx(entry["mmd2_unbiased"], rel=0.1)
    assert r["p_value"] <= 0.01


def test_classifier_auc_delong_and_null_by_definition(rng):
    x, y = rng.standard_normal((60, 4)), rng.standard_normal((50, 4)) + 0.4
    r = classifier_test(x, y, permutations=300, seed=3)
    label = np.r_[np.zeros(60), np.ones(50)]
    assert r["auc_cv"] == pytest.approx(roc_auc_score(label, r["scores"]), rel=1e-12)
    # DeLong by its O(nm) definition
    pos, neg = r["scores"][60:], r["scores"][:60]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    se = np.sqrt(v10.var(ddof=1) / 50 + v01.var(ddof=1) / 60)
    assert r["auc_cv_delong_se"] == pytest.approx(se, rel=1e-10)
    assert delong_se(neg, pos) == pytest.approx(se, rel=1e-10)
    assert r["n_test"] == 55 and 0.5 < r["auc"] <= 1 and r["null"].size == 300
    assert abs(r["null"].mean() - 0.5) < 0.02  # the held-out AUC's null is centred on 0.5


def test_ks_equals_scipy_per_dimension_and_bh(rng):
    x, y = rng.standard_normal((120, 6)), rng.standard_normal((100, 6))  # n·m > 10⁴: asymptotic
    y[:, 2] += 1.0
    r = ks_test(x, y, alpha=0.05)
    assert r["ks_method"] == "asymp"
    per = [ks_2samp(x[:, j], y[:, j], method="asymp") for j in range(6)]
    np.testing.assert_allclose(r["dim_statistic"], [p.statistic for p in per], rtol=1e-12)
    p = np.array([q.pvalue for q in per])
    order = np.argsort(p)
    bh = np.minimum.accumulate((p[order] * 6 / np.arange(1, 7))[::-1])[::-1]
    adjusted = np.empty(6)
    adjusted[order] = np.minimum(bh, 1)
    np.testing.assert_allclose(r["dim_p_adjusted"], adjusted, rtol=1e-12)
    assert r["p_value"] == pytest.approx(adjusted.min()) and r["n_drifted"] >= 1
    assert r["share_drifted"] == pytest.approx((adjusted <= 0.05).mean())
    pc = ks_test(x, y, components=2)
    z = np.vstack([x, y])
    lam, vec = np.linalg.eigh(np.cov(z, rowvar=False))
    top = vec[:, np.argsort(lam)[::-1][:2]]
    want = [ks_2samp((x - z.mean(0)) @ top[:, j], (y - z.mean(0)) @ top[:, j],
                     method="asymp").statistic for j in range(2)]
    np.testing.assert_allclose(pc["dim_statistic"], want, rtol=1e-9)
    np.testing.assert_allclose(false_discovery_control([0.01, 0.04, 0.03]), [0.03, 0.04, 0.04])


def test_mean_bootstrap_null_has_the_closed_form_mean(rng):
    x, y = rng.standard_normal((200, 8)) * 2, rng.standard_normal((100, 8))
    r = mean_test(x, y, bootstraps=4000, seed=1)
    # E‖μ_A − μ_B‖² for resamples of sizes n, m of x: tr(Σ̂, ddof 0)(1/n + 1/m)
    expect = np.trace(np.cov(x, rowvar=False, ddof=0)) * (1 / 200 + 1 / 100)
    assert np.mean(r["null"] ** 2) == pytest.approx(expect, rel=0.05)
    spread = np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean())
    assert r["effect_size"] == pytest.approx(r["euclidean"] / spread, rel=1e-12)


def test_depth_is_the_rank_sum_of_brute_force_depths_wrt_half_of_ref(rng):
    from scipy.stats import ranksums

    x, y = rng.standard_normal((71, 5)) + 1, rng.standard_normal((50, 5)) + 1.2
    r = compute_drift(x, y, tests="depth", seed=4).tests["depth"]
    perm = np.random.default_rng([4, 5]).permutation(71)  # the documented seeded split
    basis, held = x[np.sort(perm[:35])], x[np.sort(perm[35:])]

    def depth(q, f):  # TTE cosine depth by definition: 2 − mean(1 − cos)
        qu = q / np.linalg.norm(q, axis=1, keepdims=True)
        fu = f / np.linalg.norm(f, axis=1, keepdims=True)
        return 2 - (1 - qu @ fu.T).mean(1)

    want = ranksums(depth(held, basis), depth(y, basis))
    assert r["statistic"] == pytest.approx(want.statistic, rel=1e-10)
    assert r["p_value"] == pytest.approx(want.pvalue, rel=1e-8)
    assert r["n_ref_used"] == 36 and r["n_new_used"] == 50


def test_calibration_under_h0():
    """200 seeded null pairs from one distribution: each test's false-positive rate at
    alpha = 0.05 within 3 binomial standard errors (the overall Bonferroni verdict at most so)."""
    pairs, alpha = 200, 0.05
    err = 3 * np.sqrt(alpha * (1 - alpha) / pairs)
    hits = {k: 0 for k in TESTS + ("overall",)}
    for i in range(pairs):
        rng = np.random.default_rng(1000 + i)
        x, y = rng.standard_normal((40, 5)) + 1.0, rng.standard_normal((40, 5)) + 1.0
        r = compute_drift(x, y, permutations=99, seed=i, folds=2)
        for name, t in r.tests.items():
            hits[name] += t["drift"]
        hits["overall"] += r.drift
    rates = {k: v / pairs for k, v in hits.items()}
    print("false-positive rates", rates)
    for name, rate in rates.items():
        assert rate <= alpha + err, rates
    for name in ("mmd", "classifier", "mean", "depth"):  # exact or near-exact level
        assert rates[name] >= alpha - err, rates


def test_planted_drift_is_found_and_items_point_at_it(rng):
    x = rng.standard_normal((150, 6))
    y = rng.standard_normal((150, 6))
    y[:40] += 4.0  # a new cluster in NEW
    r = compute_drift(x, y, permutations=200)
    assert r.drift and all(t["drift"] for k, t in r.tests.items() if k != "depth")
    rows, witness = r.items["mmd"]
    assert set(rows[np.argsort(-witness)[:20]]) <= set(range(40))


def test_real_sample_halves_do_not_drift_and_genres_do():
    """Two seeded halves of the shipped MiniLM sample (no drift) and two of its genres (drift).
    The sample is the only real sentence corpus shipped; a second real corpus would do better."""
    with Space.open(str(SAMPLES / "minilm_kjv.h5")) as space:
        perm = np.random.default_rng(0).permutation(space.n)
        a, b = space.subset(np.sort(perm[:1500])), space.subset(np.sort(perm[1500:]))
        r = compute_drift(a, b, permutations=200)
        assert not r.drift, r.to_dict()
        labels = space.metadata.class_labels(space.path)
        law = space.subset(np.flatnonzero(labels == "law"))
        gospels = space.subset(np.flatnonzero(labels == "gospels"))
        g = compute_drift(law, gospels, permutations=200)
    assert g.drift and all(t["drift"] for t in g.tests.values()), g.to_dict()
    assert g.tests["classifier"]["auc"] > 0.9


def test_errors(rng):
    x = rng.standard_normal((20, 4))
    with pytest.raises(UsageError, match="dimensions"):
        compute_drift(x, rng.standard_normal((20, 5)))
    with pytest.raises(UsageError, match="unknown drift test"):
        compute_drift(x, x, tests="mmd,bogus")
    with pytest.raises(UsageError, match="sigma"):
        compute_drift(x, x, tests="ks", sigma=1.0)
    with pytest.raises(InputError, match="classifier test needs at least 5"):
        compute_drift(x, rng.standard_normal((3, 4)), tests="classifier")
    with pytest.raises(UsageError, match="alpha"):
        compute_drift(x, x, alpha=1.5)


@pytest.mark.slow
def test_power_on_planted_shifts():
    """Each planted shift is found by MMD in most of 20 seeded pairs (docs/drift.md's table)."""
    found = {"mean": 0, "scale": 0, "cluster": 0}
    for i in range(20):
        rng = np.random.default_rng(i)
        x = rng.standard_normal((200, 16))
        base = rng.standard_normal((200, 16))
        shifted = {"mean": base + 0.25, "scale": base * 1.3,
                   "cluster": np.vstack([base[:170], base[170:] + 3.0])}
        for name, y in shifted.items():
            found[name] += compute_drift(x, y, tests="mmd", permutations=200, seed=i).drift
    assert all(v >= 16 for v in found.values()), found
