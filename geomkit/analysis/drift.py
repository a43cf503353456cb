"""Has the data moved? A calibrated two-sample suite between a reference corpus REF and a new one NEW.

Every test answers H0 "REF and NEW are draws from one distribution" with a p-value that is uniform
under H0 (tests/analysis/test_drift.py draws 200 null pairs and checks the false-positive rate at
α = 0.05), an effect size and a decision at ``alpha``:

- ``depth``: the TTE depth rank-sum test of :mod:`geomkit.analysis.depth` (cosine depth,
  two-sided) on every row (streamed), REF's depths taken for a held-out half of REF w.r.t. the
  other half (:func:`depth_test` says why). Effect size: Cliff's delta.
- ``mmd``: unbiased MMD² with the Gaussian kernel k(x, y) = exp(−‖x − y‖²/(2σ²)) (Gretton et al.
  2012; alibi-detect's convention), σ the median pairwise Euclidean distance of the pooled sample
  (of a seeded sample of :data:`SIGMA_SAMPLE` pooled rows past that) or given. p-value by
  permutation, (1 + #{permuted ≥ observed}) / (1 + B). Up to :data:`MMD_EXACT_MAX` pooled rows
  the kernel is exact: the pooled kernel matrix is computed once, block by block in torch, and
  every permutation re-indexes it (each block is multiplied with the 0/1 membership matrix of all
  permutations at once: zᵀKz and zᵀK1 give the three kernel sums of every permutation), so memory
  is one block and the membership matrix, never N². Past it, random Fourier features (Rahimi &
  Recht 2007; D = :data:`RFF_FEATURES` frequencies, cos and sin, so k(x, x) = 1 exactly): the same
  unbiased statistic on the approximate kernel, linear in the rows; permutations re-index the
  feature sums. The estimator used is in the output. Effect size: MMD (√max(MMD², 0)), in
  kernel units.
- ``classifier``: a domain classifier (standardised logistic regression, C = 1, Newton solver).
  Statistic and effect size: the ROC AUC on a held-out stratified half (0.5 = indistinguishable),
  p-value by permuting the held-out labels (Lopez-Paz & Oquab 2017; exact level). Also the K-fold
  out-of-fold AUC on all rows (``auc_cv``, DeLong's standard error) and every item's out-of-fold
  score; the K-fold scores give no valid permutation null (see :func:`classifier_test`).
- ``ks``: per-dimension two-sample Kolmogorov–Smirnov tests (optionally on the top principal
  components of the pooled sample), Benjamini–Hochberg across dimensions; p-value the smallest
  BH-adjusted p (Simes' global test), effect size the share of dimensions drifted at ``alpha``.
- ``mean``: Euclidean and cosine distance between the two means; p-value (Euclidean) against a
  bootstrap null from REF (the distance between the means of two resamples of REF of sizes N and
  M, Evidently's convention); effect size ‖Δμ‖ over REF's RMS distance to its mean.

Tests other than depth run on a seeded sample of at most ``max_rows`` rows per side (the
classifier on at most :data:`CLASSIFIER_MAX`), stated in each test's ``n_ref_used``/``n_new_used``.
The overall verdict is Bonferroni over the tests run: drift when some test has p ≤ alpha / k,
which keeps the family-wise false-positive rate ≤ alpha whatever the tests' dependence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geomkit.errors import InputError, UsageError
from geomkit.report.result import Result
from geomkit.space import as_space

TESTS = ("depth", "mmd", "classifier", "ks", "mean")
DEFAULT_TESTS = TESTS
MAX_ROWS = 50_000          # rows per side held in memory for mmd / ks / mean
CLASSIFIER_MAX = 10_000    # rows per side for the domain classifier
MMD_EXACT_MAX = 20_000     # pooled rows up to which the MMD kernel is exact
RFF_FEATURES = 1024        # random Fourier frequencies past it (2 × features: cos, sin)
SIGMA_SAMPLE = 2000        # pooled rows for the median heuristic
FOLDS = 5
TOP_ITEMS = 10
MIN_ROWS = {"depth": 4, "mmd": 2, "classifier": FOLDS, "ks": 1, "mean": 2}


# ----------------------------------------------------------------------------- helpers
def parse_tests(tests) -> tuple[str, ...]:
    """``"depth,mmd"`` or a sequence -> the tests in canonical order; unknown names refused."""
    names = [t.strip() for t in (tests.split(",") if isinstance(tests, str) else tests)]
    names = [t for t in names if t]
    unknown = [t for t in names if t not in TESTS]
    if unknown or not names:
        raise UsageError(f"unknown drift test '{', '.join(unknown) or tests}'; choose among "
                         f"{', '.join(TESTS)}.")
    return tuple(t for t in TESTS if t in names)


def permutation_p(observed: float, null: np.ndarray) -> float:
    """(1 + #{null ≥ observed}) / (1 + B): never 0, exact level under exchangeability."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))


def sample_rows(space, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(original rows, vectors)`` of all rows of ``space``, or of a seeded sample of ``count``
    of them (sorted), read with ``space.read_rows`` (never the whole dataset)."""
    from geomkit.engine.moments import row_numbers

    stats = space.row_stats()
    rows, total = stats.rows, stats.n
    if count < total:
        pick = np.random.default_rng(seed).choice(total, size=count, replace=False)
        rows = np.sort(pick if rows is None else rows[pick])
    else:
        rows = row_numbers(rows, total)
    return rows, space.read_rows(rows)


def _torch_dtype(x: np.ndarray):
    import torch
    return torch.float64 if x.dtype == np.float64 else torch.float32


def median_sigma(x: np.ndarray, y: np.ndarray, seed: int = 0,
                 limit: int = SIGMA_SAMPLE) -> tuple[float, int]:
    """The median heuristic: median pairwise Euclidean distance (i < j) of the pooled rows, or of
    a seeded sample of ``limit`` of them; returns ``(sigma, rows used)``."""
    import torch

    pooled = np.concatenate([x, y]).astype(np.float64, copy=False)
    if pooled.shape[0] > limit:
        pick = np.sort(np.random.default_rng([seed, 7]).choice(pooled.shape[0], limit,
                                                               replace=False))
        pooled = pooled[pick]
    z = torch.from_numpy(np.ascontiguousarray(pooled))
    sq = (z * z).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_(min=0.0)
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1)
    dist = torch.sqrt(d2[iu[0], iu[1]]).numpy()
    return float(np.median(dist)), int(pooled.shape[0])


def _memberships(n: int, m: int, permutations: int, rng) -> np.ndarray:
    """(n + m, 1 + B) bool: column 0 the observed split (REF first), then B random ones."""
    total = n + m
    member = np.zeros((total, permutations + 1), dtype=bool)
    member[:n, 0] = True
    for b in range(1, permutations + 1):
        member[rng.permutation(total)[:n], b] = True
    return member


def _mmd2(s_xx, s_yy, s_xy, n: int, m: int):
    return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Unbiased MMD² of two in-memory samples at bandwidth ``sigma`` (no permutations)."""
    return mmd_test(x, y, sigma=sigma, permutations=0)["statistic"]


def mmd_test(x: np.ndarray, y: np.ndarray, *, sigma: float | None = None,
             permutations: int = 1000, seed: int = 0, exact_max: int = MMD_EXACT_MAX,
             features: int = RFF_FEATURES, memory: int = 256 * 2**20) -> dict:
    """Unbiased MMD² of ``x`` (REF) and ``y`` (NEW) with its permutation null.

    Returns the test's dict plus ``null`` (permuted statistics) and ``witness`` (witness
    function mean_NEW k(·, t) − mean_REF k(·, t) at every pooled row, self excluded when exact)."""
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise InputError("MMD needs at least 2 rows on each side.")
    rng = np.random.default_rng([seed, 11])
    if sigma is None:
        sigma, sigma_rows = median_sigma(x, y, seed)
        sigma_from = f"median pairwise distance of {sigma_rows} pooled rows"
    else:
        sigma_from = "given"
    if not np.isfinite(sigma) or sigma <= 0:
        raise InputError(f"the MMD bandwidth is {sigma} (all pooled rows equal?); pass a "
                         f"positive sigma.")
    member = _memberships(n, m, permutations, rng)
    exact = n + m <= exact_max
    if exact:
        stats, obs, witness = _mmd_exact(x, y, sigma, member, memory)
        estimator = "exact"
    else:
        stats, obs, witness = _mmd_rff(x, y, sigma, member, features, rng, memory)
        estimator = "random_features"
    null = stats[1:]
    out = {"statistic": float(obs), "sigma": float(sigma), "sigma_from": sigma_from,
           "kernel": "exp(-|x-y|^2 / (2 sigma^2))", "estimator": estimator,
           "features": None if exact else 2 * features, "permutations": int(permutations),
           "p_value": permutation_p(stats[0], null) if permutations else None,
           "effect_size": float(np.sqrt(max(obs, 0.0))),
           "null": null, "witness": witness}
    return out


def _mmd_exact(x, y, sigma, member, memory):
    """Kernel sums of every membership column from one blockwise pass over the pooled kernel."""
    import torch

    n, m = x.shape[0], y.shape[0]
    total = n + m
    dtype = _torch_dtype(np.empty(0, np.result_type(x.dtype, y.dtype)))
    item = 8 if dtype == torch.float64 else 4
    z = torch.from_numpy(np.ascontiguousarray(np.concatenate([x, y]))).to(dtype)
    sq = (z * z).sum(1)
    gamma = 1.0 / (2.0 * sigma * sigma)
    cols = member.shape[1]
    chunk = max(1, min(cols, int(memory // 2 // (total * item))))
    block = max(16, min(total, int(memory // 4 // (total * item))))
    member_t = torch.from_numpy(member)
    quad = torch.zeros(cols, dtype=torch.float64)       # zᵀKz per column
    rowsum = torch.zeros(total, dtype=torch.float64)     # K1
    ref_sum = torch.zeros(total, dtype=torch.float64)    # K[:, REF]1
    first = True
    for c0 in range(0, cols, chunk):
        zc = member_t[:, c0:c0 + chunk].to(dtype)
        for a in range(0, total, block):
            b = min(block, total - a)
            kb = torch.addmm(sq[a:a + b, None] + sq[None, :], z[a:a + b], z.T, alpha=-2.0)
            kb.clamp_(min=0.0).mul_(-gamma).exp_()
            kb[torch.arange(b), torch.arange(a, a + b)] = 0.0
            if first:
                rowsum[a:a + b] = kb.sum(1, dtype=torch.float64)
                ref_sum[a:a + b] = kb[:, :n].sum(1, dtype=torch.float64)
            quad[c0:c0 + chunk] += (zc[a:a + b] * (kb @ zc)).sum(0, dtype=torch.float64)
        first = False
    total_sum = float(rowsum.sum())
    zr = member_t.T.to(torch.float64) @ rowsum           # zᵀK1 per column
    s_xx, s_xy = quad, zr - quad
    s_yy = total_sum - 2.0 * zr + quad
    stats = _mmd2(s_xx, s_yy, s_xy, n, m).numpy()
    # the observed statistic from float64 sums of the kernel values
    o_xx = float(ref_sum[:n].sum())
    o_xy = float(ref_sum[n:].sum())
    o_yy = float(rowsum[n:].sum()) - o_xy
    observed = _mmd2(o_xx, o_yy, o_xy, n, m)
    new_sum = rowsum - ref_sum
    is_ref = torch.zeros(total, dtype=torch.bool)
    is_ref[:n] = True
    witness = (new_sum / (m - (~is_ref).double()) - ref_sum / (n - is_ref.double())).numpy()
    return stats, observed, witness


def _mmd_rff(x, y, sigma, member, features, rng, memory):
    """The same statistic on random Fourier features: sums of φ per membership column."""
    import torch

    n, m = x.shape[0], y.shape[0]
    dtype = _torch_dtype(np.empty(0, np.result_type(x.dtype, y.dtype)))
    w = torch.from_numpy(rng.standard_normal((x.shape[1], features)) / sigma).to(dtype)
    scale = 1.0 / np.sqrt(features)
    cols = member.shape[1]
    item = 8 if dtype == torch.float64 else 4
    block = max(16, int(memory // 4 // ((2 * features + cols) * item)))
    member_t = torch.from_numpy(member)
    sums = torch.zeros((cols, 2 * features), dtype=torch.float64)
    phi_all = torch.zeros(2 * features, dtype=torch.float64)

    def features_of(part):
        for a in range(0, part.shape[0], block):
            xb = torch.from_numpy(np.ascontiguousarray(part[a:a + block])).to(dtype)
            proj = xb @ w
            yield a, torch.cat([torch.cos(proj), torch.sin(proj)], 1) * scale

    for part, offset in ((x, 0), (y, n)):
        for a, phi in features_of(part):
            zc = member_t[offset + a:offset + a + phi.shape[0]].to(dtype)
            sums += (zc.T @ phi).double()
            phi_all += phi.sum(0, dtype=torch.float64)
    s_x = sums                      # Σ_{i∈X_b} φ_i for each column b
    s_y = phi_all[None, :] - s_x
    s_xx = (s_x * s_x).sum(1) - n   # k(x, x) = 1 exactly for cos/sin features
    s_yy = (s_y * s_y).sum(1) - m
    s_xy = (s_x * s_y).sum(1)
    stats = _mmd2(s_xx, s_yy, s_xy, n, m).numpy()
    # the witness at every row: a second pass (the features are not kept: N × 2D floats)
    direction = (s_y[0] / m - s_x[0] / n).to(dtype)
    witness = torch.cat([phi @ direction for part in (x, y)
                         for _, phi in features_of(part)]).double().numpy()
    return stats, float(stats[0]), witness


# ----------------------------------------------------------------------------- classifier
def delong_se(scores_neg: np.ndarray, scores_pos: np.ndarray) -> float:
    """DeLong's standard error of the AUC P(pos > neg) + ½P(pos = neg) (midranks)."""
    from scipy.stats import rankdata

    m, n = scores_pos.size, scores_neg.size
    pooled = rankdata(np.concatenate([scores_pos, scores_neg]))
    v_pos = (pooled[:m] - rankdata(scores_pos)) / n
    v_neg = 1.0 - (pooled[m:] - rankdata(scores_neg)) / m
    var = np.var(v_pos, ddof=1) / m + np.var(v_neg, ddof=1) / n
    return float(np.sqrt(max(var, 0.0)))


def _logistic():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(
        C=1.0, solver="newton-cholesky", max_iter=100))


def classifier_test(x: np.ndarray, y: np.ndarray, *, folds: int = FOLDS,
                    permutations: int = 1000, seed: int = 0) -> dict:
    """Domain classifier REF (0) vs NEW (1).

    The test (Lopez-Paz & Oquab 2017): fit on a stratified half, ROC AUC on the held-out half,
    p-value by permuting the held-out labels (given the fitted model the held-out scores are
    exchangeable under H0, so the level is exact). Also the K-fold out-of-fold AUC on every row
    (``auc_cv``, with DeLong's standard error) and each item's out-of-fold score. Labels
    permuted within the folds of the K-fold scores are NOT a valid null (the folds' models share
    training rows; measured false-positive rate 0.10–0.14 at alpha 0.05), hence the split."""
    from scipy.stats import rankdata
    from sklearn.metrics import roc_curve
    from sklearn.model_selection import StratifiedKFold, train_test_split

    n, m = x.shape[0], y.shape[0]
    if min(n, m) < folds:
        raise InputError(f"the domain classifier needs at least {folds} rows on each side "
                         f"(one per fold).")
    data = np.concatenate([x, y]).astype(np.float64, copy=False)
    label = np.r_[np.zeros(n, dtype=np.int8), np.ones(m, dtype=np.int8)]
    train, test = train_test_split(np.arange(n + m), test_size=0.5, stratify=label,
                                   random_state=seed)
    held = _logistic().fit(data[train], label[train]).decision_function(data[test])
    held_label = label[test]
    ranks = rankdata(held)
    k, size = int(held_label.sum()), held.size
    denom = k * (size - k)
    auc = float((ranks[held_label == 1].sum() - k * (k + 1) / 2) / denom)
    rng = np.random.default_rng([seed, 13])
    null = np.zeros(permutations)
    step = max(1, int(2**24 // max(size, 1)))
    for b0 in range(0, permutations, step):
        b = min(step, permutations - b0)
        pick = np.argsort(rng.random((b, size)), axis=1)[:, :k]
        null[b0:b0 + b] = (ranks[pick].sum(1) - k * (k + 1) / 2) / denom
    fpr, tpr, _ = roc_curve(held_label, held)
    if fpr.size > 400:  # enough points to draw the curve
        keep = np.unique(np.r_[np.linspace(0, fpr.size - 1, 400).astype(int), fpr.size - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    scores = np.zeros(n + m)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for tr, te in cv.split(data, label):
        scores[te] = _logistic().fit(data[tr], label[tr]).decision_function(data[te])
    cv_ranks = rankdata(scores)
    auc_cv = float((cv_ranks[n:].sum() - m * (m + 1) / 2) / (n * m))
    se = delong_se(scores[:n], scores[n:])
    return {"statistic": auc, "auc": auc, "p_value": permutation_p(auc, null) if permutations
            else None, "effect_size": auc, "n_test": int(size),
            "auc_cv": auc_cv, "auc_cv_delong_se": se, "folds": folds,
            "model": "standardised logistic regression, C = 1 (newton-cholesky)",
            "p_from": "held-out half, labels permuted (fit on the other half)",
            "permutations": int(permutations), "null": null, "roc": (fpr, tpr),
            "scores": scores}


# ----------------------------------------------------------------------------- ks, mean
def ks_test(x: np.ndarray, y: np.ndarray, *, alpha: float = 0.05,
            components: int | None = None) -> dict:
    """Per-dimension KS with Benjamini–Hochberg; on the top ``components`` principal components
    of the pooled sample when given."""
    from scipy.stats import false_discovery_control, ks_2samp

    from geomkit.engine.moments import eigh_descending

    basis = "dimensions"
    if components:
        if components > x.shape[1]:
            raise UsageError(f"ks_components={components} exceeds the {x.shape[1]} dimensions.")
        pooled = np.concatenate([x, y]).astype(np.float64, copy=False)
        mean = pooled.mean(0)
        cov = np.cov(pooled - mean, rowvar=False).reshape(x.shape[1], x.shape[1])
        _, vec = eigh_descending(cov)
        top = vec[:, :components]
        x = (x - mean) @ top
        y = (y - mean) @ top
        basis = f"top {components} principal components of the pooled sample"
    method = "exact" if x.shape[0] * y.shape[0] <= 10_000 else "asymp"
    res = ks_2samp(x, y, axis=0, method=method)
    stat = np.atleast_1d(np.asarray(res.statistic, dtype=np.float64))
    p = np.atleast_1d(np.asarray(res.pvalue, dtype=np.float64))
    adjusted = false_discovery_control(p, method="bh")
    drifted = adjusted <= alpha
    return {"statistic": float(stat.max()), "p_value": float(adjusted.min()),
            "effect_size": float(drifted.mean()), "share_drifted": float(drifted.mean()),
            "n_drifted": int(drifted.sum()), "n_dims": int(stat.size), "basis": basis,
            "components": components or None, "ks_method": method,
            "correction": "Benjamini-Hochberg across dimensions; p = smallest adjusted p (Simes)",
            "dim_statistic": stat, "dim_p_adjusted": adjusted}


def _mean_distances(mu_a: np.ndarray, mu_b: np.ndarray):
    """(Euclidean, cosine distance) between rows of two (k, d) arrays of means."""
    eu = np.linalg.norm(mu_a - mu_b, axis=1)
    na, nb = np.linalg.norm(mu_a, axis=1), np.linalg.norm(mu_b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = 1.0 - np.einsum("ij,ij->i", mu_a, mu_b) / (na * nb)
    return eu, cos


def mean_test(x: np.ndarray, y: np.ndarray, *, bootstraps: int = 1000, seed: int = 0) -> dict:
    """Distance between the means with a bootstrap null from REF: two resamples of REF of sizes
    N and M, the Euclidean distance between their means (the p-value); the cosine distance
    between the means is reported alongside."""
    n, m = x.shape[0], y.shape[0]
    mu_x = x.mean(0, dtype=np.float64)
    mu_y = y.mean(0, dtype=np.float64)
    eu, cos = _mean_distances(mu_x[None], mu_y[None])
    spread = float(np.sqrt(np.mean(np.sum((x - mu_x) ** 2, axis=1, dtype=np.float64))))
    rng = np.random.default_rng([seed, 17])
    null_eu = []
    data = x.astype(np.float64, copy=False)
    step = max(1, int(2**26 // (8 * max(n, 1))))
    for b0 in range(0, bootstraps, step):
        b = min(step, bootstraps - b0)
        ca = np.zeros((b, n))
        cb = np.zeros((b, n))
        for j in range(b):
            ca[j] = np.bincount(rng.integers(0, n, n), minlength=n)
            cb[j] = np.bincount(rng.integers(0, n, m), minlength=n)
        null_eu.append(_mean_distances(ca @ data / n, cb @ data / m)[0])
    null_eu = np.concatenate(null_eu) if null_eu else np.zeros(0)
    cos0 = float(cos[0]) if np.isfinite(cos[0]) else None
    # the cosine distance is described, not tested: both resamples of REF share REF's sample
    # mean, so their cosine is biased toward 0 distance (far from the null where the mean is weak)
    return {"statistic": float(eu[0]), "euclidean": float(eu[0]), "cosine": cos0,
            "p_value": permutation_p(eu[0], null_eu) if bootstraps else None,
            "effect_size": float(eu[0] / spread) if spread > 0 else None,
            "bootstraps": int(bootstraps),
            "null_from": "distance between the means of two resamples of REF (sizes N, M)",
            "null": null_eu}


# ----------------------------------------------------------------------------- depth
def depth_test(ref, new, *, seed: int = 0, progress: str | None = None) -> tuple[dict, tuple]:
    """TTE cosine depth rank-sum (:mod:`geomkit.analysis.depth`'s ``cosine_depths`` and
    ``rank_test``, two-sided) with REF split in two seeded halves: the depths of the held-out half
    of REF and of NEW, both w.r.t. the other half. Given that half, the two sets of depths are
    i.i.d. under H0, so the rank-sum's level is right. (``geomkit depth`` compares REF's
    leave-one-out depths with NEW's; those are positively correlated — each x̂ᵢ·x̂ⱼ enters two of
    them — and the rank-sum over them rejects too often where REF's mean direction is weak: 0.11
    at alpha 0.05 over 2000 N(0, I) null pairs, two-sided.)
    Returns the test's fields and NEW's ``(rows, depths)``."""
    from geomkit.analysis.depth import WEAK_DIRECTION, _unit_sum, cosine_depths, rank_test
    from geomkit.engine.moments import row_numbers

    stats = ref.products("row_stats", nonzero=True)[0]
    rows = row_numbers(stats.rows, stats.n)
    perm = np.random.default_rng([seed, 5]).permutation(rows.size)
    half = rows.size // 2
    basis = ref.subset(np.sort(rows[perm[:half]]), name="REF half A")
    held = ref.subset(np.sort(rows[perm[half:]]), name="REF half B")
    unit_sum, n_basis = _unit_sum(basis)
    stage = progress and f"{progress}: depth"
    _, held_depth = cosine_depths(held, basis, same=False, ref_unit_sum=unit_sum, ref_n=n_basis,
                                  progress=stage)
    new_rows, new_depth = cosine_depths(new, basis, same=False, ref_unit_sum=unit_sum,
                                        ref_n=n_basis, progress=stage)
    t = rank_test(held_depth, new_depth, "two-sided")
    fields = {"statistic": t["W"], "p_value": t["p"], "effect_size": t["effect_size"],
              "depth": "cosine", "alternative": "two-sided", "q_liu_singh": t["q_liu_singh"],
              "mean_depth_ref": float(held_depth.mean()), "mean_depth_new": float(new_depth.mean()),
              "weak_mean_direction": bool(np.linalg.norm(unit_sum / n_basis) < WEAK_DIRECTION),
              "reference": f"a seeded half of REF ({n_basis} rows)",
              "n_ref_used": int(held_depth.size), "n_new_used": int(new_depth.size)}
    return fields, (new_rows, new_depth)


# ----------------------------------------------------------------------------- result
_ARRAYS = ("null", "witness", "roc", "scores", "dim_statistic", "dim_p_adjusted")


@dataclass(frozen=True)
class DriftResult(Result):
    n_ref: int
    n_new: int
    alpha: float
    tests: dict                     # name -> scalar fields (the JSON)
    drift: bool
    rule: str
    seed: int = 0
    ref_label: str = ""
    new_label: str = ""
    arrays: dict = field(repr=False, default_factory=dict)   # name -> {null, roc, ...}
    items: dict = field(repr=False, default_factory=dict)    # name -> (rows, values) of NEW
    ref_meta: object = field(repr=False, default=None)
    new_meta: object = field(repr=False, default=None)
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "drift"

    @property
    def title(self):
        return f"geomkit drift {self.ref_label} vs {self.new_label}"

    def to_dict(self) -> dict:
        return {"n_ref": self.n_ref, "n_new": self.n_new, "alpha": self.alpha,
                "tests": {k: dict(v) for k, v in self.tests.items()}, "drift": self.drift,
                "rule": self.rule, "seed": self.seed, "n_dropped": self.n_dropped,
                "n_dropped_zero": self.n_dropped_zero}

    def per_item(self):
        """NEW's items with each test's per-item value (depth w.r.t. REF, MMD witness,
        classifier score), one row per item any test looked at."""
        import pandas as pd

        frame = None
        for name, (rows, values) in self.items.items():
            column = {"depth": "depth", "mmd": "witness", "classifier": "classifier_score"}[name]
            part = pd.DataFrame({"row": rows, column: values})
            frame = part if frame is None else frame.merge(part, on="row", how="outer")
        if frame is None:
            return None
        frame = frame.sort_values("row", kind="stable").reset_index(drop=True)
        meta = self.new_meta
        rows = frame["row"].to_numpy()
        if meta is not None and meta.ids is not None:
            frame.insert(1, "id", meta.ids[rows])
        if meta is not None and meta.texts is not None:
            frame["text"] = meta.texts[rows]
        frame.insert(0, "corpus", "new")
        return frame


def compute_drift(ref, new, *, tests=DEFAULT_TESTS, alpha: float = 0.05,
                  sigma: float | None = None, permutations: int = 1000, seed: int = 0,
                  max_rows: int = MAX_ROWS, ks_components: int | None = None,
                  folds: int = FOLDS, mmd_exact_max: int = MMD_EXACT_MAX,
                  progress: str | None = None) -> DriftResult:
    """Run the chosen two-sample ``tests`` between REF and NEW (Spaces, sources or arrays).

    ``permutations``: permutations of mmd and classifier, bootstrap resamples of mean.
    ``max_rows``: rows per side sampled (seeded) for mmd, ks and mean (the classifier takes at
    most :data:`CLASSIFIER_MAX` of them). ``ks_components``: run ks on the top principal
    components of the pooled sample instead of the raw dimensions."""
    import sys

    from geomkit.report.progress import log

    def stage(name):
        # which test runs is progress, shown as the bars are (a command, stderr a terminal): an
        # error's stderr stays its one line, a library call (progress None) stays silent
        if progress and sys.stderr.isatty():
            log(f"geomkit: {progress}: {name}")

    names = parse_tests(tests)
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha={alpha} must lie strictly between 0 and 1.")
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise UsageError(f"sigma={sigma} must be a positive number.")
    if sigma is not None and "mmd" not in names:
        raise UsageError("sigma is the MMD bandwidth; the mmd test is not among the tests.")
    if ks_components is not None and "ks" not in names:
        raise UsageError("ks_components acts on the ks test, which is not among the tests.")
    if permutations < 1:
        raise UsageError(f"permutations={permutations} must be at least 1.")
    if max_rows < 2:
        raise UsageError(f"max_rows={max_rows} must be at least 2.")
    ref, new = as_space(ref), as_space(new)
    if ref.d != new.d:
        raise UsageError(f"{ref.label} has {ref.d} dimensions but {new.label} has {new.d}; "
                         f"drift compares vectors of one space.")
    results: dict[str, dict] = {}
    arrays: dict[str, dict] = {}
    items: dict[str, tuple] = {}

    def check_rows(name, n_ref, n_new):
        need = MIN_ROWS[name]
        for label, count in ((ref.label, n_ref), (new.label, n_new)):
            if count < need:
                raise InputError(f"{label}: {count} rows; the {name} test needs at least {need}.")

    if "depth" in names:
        stage("depth")
        check_rows("depth", ref.n, new.n)
        results["depth"], items["depth"] = depth_test(ref, new, seed=seed, progress=progress)
    sampled = [t for t in names if t != "depth"]
    if sampled:
        ref_rows, xr = sample_rows(ref, max_rows, [seed, 1])
        new_rows, xn = sample_rows(new, max_rows, [seed, 2])
        used = {"n_ref_used": int(xr.shape[0]), "n_new_used": int(xn.shape[0])}
    if "mmd" in names:
        stage("mmd")
        check_rows("mmd", xr.shape[0], xn.shape[0])
        r = mmd_test(xr, xn, sigma=sigma, permutations=permutations, seed=seed,
                     exact_max=mmd_exact_max, memory=ref.memory)
        arrays["mmd"] = {"null": r.pop("null")}
        witness = r.pop("witness")
        items["mmd"] = (new_rows, witness[xr.shape[0]:])
        results["mmd"] = {**r, **used}
    if "classifier" in names:
        stage("classifier")
        check_rows("classifier", xr.shape[0], xn.shape[0])
        cr = _subsample(xr.shape[0], CLASSIFIER_MAX, [seed, 3])
        cn = _subsample(xn.shape[0], CLASSIFIER_MAX, [seed, 4])
        r = classifier_test(xr[cr], xn[cn], folds=folds, permutations=permutations, seed=seed)
        arrays["classifier"] = {"null": r.pop("null"), "roc": r.pop("roc")}
        scores = r.pop("scores")
        items["classifier"] = (new_rows[cn], scores[cr.size:])
        results["classifier"] = {**r, "n_ref_used": int(cr.size), "n_new_used": int(cn.size)}
    if "ks" in names:
        stage("ks")
        check_rows("ks", xr.shape[0], xn.shape[0])
        r = ks_test(xr, xn, alpha=alpha, components=ks_components)
        arrays["ks"] = {"dim_statistic": r.pop("dim_statistic"),
                        "dim_p_adjusted": r.pop("dim_p_adjusted")}
        results["ks"] = {**r, **used}
    if "mean" in names:
        stage("mean")
        check_rows("mean", xr.shape[0], xn.shape[0])
        r = mean_test(xr, xn, bootstraps=permutations, seed=seed)
        arrays["mean"] = {"null": r.pop("null")}
        results["mean"] = {**r, **used}
    ordered = {}
    for name in names:
        r = results[name]
        p = r["p_value"]
        head = {"statistic": r["statistic"], "p_value": p, "effect_size": r["effect_size"],
                "drift": bool(p is not None and p <= alpha)}
        ordered[name] = {**head, **{k: v for k, v in r.items() if k not in head}}
    k = len(names)
    level = alpha / k
    drift = any(v["p_value"] is not None and v["p_value"] <= level for v in ordered.values())
    rule = (f"drift when any of the {k} tests has p <= alpha/{k} = {level:.4g} (Bonferroni over "
            f"the tests run: family-wise false-positive rate <= {alpha:g})" if k > 1 else
            f"drift when the {names[0]} test has p <= alpha = {alpha:g}")
    spaces = (ref, new)
    return DriftResult(n_ref=int(ref.n), n_new=int(new.n), alpha=float(alpha), tests=ordered,
                       drift=bool(drift), rule=rule, seed=int(seed), ref_label=ref.label,
                       new_label=new.label, arrays=arrays, items=items, ref_meta=ref.metadata,
                       new_meta=new.metadata, n_dropped=sum(s.n_dropped for s in spaces),
                       n_dropped_zero=sum(s.n_dropped_zero for s in spaces))


def _subsample(total: int, count: int, seed) -> np.ndarray:
    if total <= count:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
