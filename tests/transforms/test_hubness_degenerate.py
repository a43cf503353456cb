"""Hubness reductions on degenerate data (exact duplicates, identical rows, N = 2) against an
all-pairs brute force written from each definition (METHODS.md §3):

- exact copies are at distance exactly 0 (cosine: 1 − cos clipped at 0, copies at 0);
- where a local scale is 0, the limit of the definition: LS = 0 for d = 0 and 1 for d > 0
  (ranked by its exponent d²/(σ_x σ_y), which orders pairs exactly as LS does, +∞ in the limit);
  NICDM = 0 for d = 0 and +∞ for d > 0; Gaussian MP with σ = 0 uses the survival function of the
  point mass at μ (1 for d < μ, 0 for d ≥ μ);
- equal reduced values go to the nearer raw distance, then the lower index; self never counts.

Whole ordered lists are compared (not only k-occurrence), so a wrong tie order, a NaN from 0/0,
self in its own list or copies left at rounding distance all fail.
"""

import h5py
import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr

from conftest import SAMPLES
from geomkit.analysis.hubness import k_occurrence
from geomkit.engine.duplicates import (count_duplicates, duplicate_groups,
                                       duplicate_representatives, row_hashes)
from geomkit.transforms.hubness import reduced_knn

K_LS, K_CSLS, BETA = 5, 10, 20.0


def _copies(x):
    """same[i, j]: rows i and j are equal value for value (numpy's exact comparison)."""
    return (x[:, None, :] == x[None, :, :]).all(-1)


def _raw(x, metric):
    x = np.asarray(x, dtype=np.float64)
    same = _copies(x)
    if metric == "cosine":
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = np.maximum(1.0 - u @ u.T, 0.0)
    else:
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        d = d if metric == "sqeuclidean" else np.sqrt(d)
    d[same] = 0.0
    return d


def _rank(red, d, k, cand=None, tiebreak="raw"):
    """Per row the k smallest of ``red`` over ``cand`` (default: all but self), ordered by
    (red, raw distance, index) — or (red, index) with tiebreak="index"."""
    n = red.shape[0]
    out = []
    for i in range(n):
        c = [j for j in range(n) if j != i] if cand is None else list(cand[i])
        key = (lambda j: (red[i, j], d[i, j], j)) if tiebreak == "raw" else (
            lambda j: (red[i, j], j))
        out.append(sorted(c, key=key)[:k])
    return np.array(out)


def _nearest(d, m):
    """Each row's m nearest others by (distance, index)."""
    n = d.shape[0]
    return np.array([sorted((j for j in range(n) if j != i), key=lambda j: (d[i, j], j))[:m]
                     for i in range(n)])


def _sf(v, mu, sd):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ndtr((mu - v) / sd)
    return np.where(sd == 0, np.where(v < mu, 1.0, 0.0), out)


def _empiric(d, ind):
    """scikit-hubness 0.30's empiric MP over candidate lists, one pair at a time from its sets."""
    n, c = ind.shape
    out = np.empty((n, c))
    for x in range(n):
        lx = list(ind[x])
        for p, y in enumerate(lx):
            ly = list(ind[y])
            if d[x, y] >= d[y, ly[-1]]:
                out[x, p] = 1.0
                continue
            a_set = set(lx[p + 1:]) | (set(ly) - set(lx))
            b_set = {j for j in ly if d[y, j] > d[x, y]} | (set(lx) - set(ly))
            out[x, p] = 1.0 - len(a_set & b_set) / n
    return out


def brute(x, k, method, metric, candidates=None, tiebreak="raw"):
    """(indices, reduced values) of the k nearest under ``method``, from the definitions."""
    n = x.shape[0]
    d = _raw(x, metric)
    off = ~np.eye(n, dtype=bool)
    masked = np.where(off, d, np.inf)
    srt = np.sort(masked, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "none":
            red = d
        elif method == "ls":  # ranked by the exponent; the value is 1 − exp(−z)
            s = srt[:, K_LS - 1]
            prod = s[:, None] * s[None, :]
            red = np.where(prod == 0, np.where(d == 0, 0.0, np.inf), d ** 2 / prod)
        elif method == "nicdm":
            r = srt[:, :K_LS].mean(1)
            prod = r[:, None] * r[None, :]
            red = np.where(prod == 0, np.where(d == 0, 0.0, np.inf), d / np.sqrt(prod))
        elif method == "mp" and candidates is None:
            mu = np.array([d[i, off[i]].mean() for i in range(n)])
            sd = np.array([d[i, off[i]].std() for i in range(n)])
            red = 1 - _sf(d, mu[:, None], sd[:, None]) * _sf(d, mu[None, :], sd[None, :])
        elif method == "mp":
            cand = _nearest(d, candidates)
            dc = np.take_along_axis(d, cand, 1)
            mu, sd = dc.mean(1), dc.std(1)
            red = np.full((n, n), np.inf)
            for i in range(n):
                red[i, cand[i]] = 1 - _sf(dc[i], mu[i], sd[i]) * _sf(dc[i], mu[cand[i]],
                                                                      sd[cand[i]])
            idx = _rank(red, d, k, cand, tiebreak)
            return idx, np.take_along_axis(red, idx, 1)
        elif method == "mp_empiric":
            cand = _nearest(d, candidates)
            red = np.full((n, n), np.inf)
            np.put_along_axis(red, cand, _empiric(d, cand), 1)
            idx = _rank(red, d, k, cand, tiebreak)
            return idx, np.take_along_axis(red, idx, 1)
        elif method == "csls":
            cos = 1.0 - d
            r = np.sort(np.where(off, cos, -np.inf), axis=1)[:, ::-1][:, :K_CSLS].mean(1)
            red = -(2 * cos - r[:, None] - r[None, :])
        elif method == "dsl":
            d2 = _raw(x, "sqeuclidean")
            nn = _nearest(d2, K_LS - 1)
            c = (x + x[nn].sum(1)) / K_LS
            local = ((x - c) ** 2).sum(1)
            d = d2
            red = d2 - local[:, None] - local[None, :]
        elif method == "dis":
            sim = np.where(off, 1.0 - d, -np.inf)  # querybank = the dump, self excluded
            lse = np.log(np.exp(BETA * sim).sum(0))
            activated = np.zeros(n, bool)
            activated[np.argmax(sim, axis=1)] = True
            use = activated[np.argmax(sim, axis=1)]
            red = -sim
            red[use] = -(BETA * sim[use] - lse[None, :])
    assert not np.isnan(red[off]).any()
    idx = _rank(red, d, k, tiebreak=tiebreak)
    return idx, np.take_along_axis(red, idx, 1)


def _with_duplicates(rng, dtype=np.float64, scale=1.0):
    """60 items: a group of 8 copies (σ = r = 0: its 5th neighbour is a copy) and a second one
    near it, a group of 3 and a pair — copies and near groups give ties at 0 and at the limits."""
    x = rng.standard_normal((60, 5)) * scale
    x[50:58] = x[49]                       # 8 copies of row 49, at high rows
    x[2] = x[49] + 0.3 * scale * rng.standard_normal(5)
    x[3:10] = x[2]                         # 8 copies of a nearby row, at low rows
    x[30:32] = x[29]                       # a group of 3
    x[40] = x[41]                          # a pair
    return x.astype(dtype)


CASES = [("none", "euclidean", None), ("ls", "euclidean", None), ("ls", "cosine", None),
         ("nicdm", "euclidean", None), ("nicdm", "cosine", None), ("mp", "euclidean", None),
         ("mp", "cosine", None), ("mp", "euclidean", 6), ("mp", "euclidean", 20),
         ("mp_empiric", "euclidean", 12), ("mp_empiric", "cosine", 20), ("csls", "cosine", None),
         ("dsl", "sqeuclidean", None), ("dis", "cosine", None)]


@pytest.mark.parametrize("k", [4, 10])
@pytest.mark.parametrize("method,metric,candidates", CASES,
                         ids=[f"{m}-{d}-{c}" for m, d, c in CASES])
def test_duplicates_follow_the_definitions(rng, method, metric, candidates, k):
    x = _with_duplicates(rng)
    if candidates is not None and candidates <= k:
        candidates = k + 2
    expect, values = brute(x, k, method, metric, candidates)
    got = reduced_knn(x, k, method, metric=metric, candidates=candidates)
    np.testing.assert_array_equal(got.indices, expect)
    assert not np.isnan(got.distances).any()
    if method == "ls":
        values = -np.expm1(-values)
    if method not in ("dis",):  # dis reports its rescored similarity, not comparable in scale
        np.testing.assert_allclose(got.distances, values, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["ls", "nicdm"])
def test_tie_order_matters_on_this_data(rng, method):
    """Power: ordering equal reduced values by index instead of raw distance gives other lists
    here (the limit ties at LS = 1 / NICDM = +∞ of items with σ = 0), so the comparison above
    detects it. (Full MP's ties — MP rounding to 0 in tight clusters — are checked in
    tests/analysis/test_hubness.py; MP = 1 ties among candidates at different raw distances
    need σ = 0 candidates of two groups in one list, which these lists cannot hold.)"""
    x = _with_duplicates(rng)
    by_index, _ = brute(x, 10, method, "euclidean", tiebreak="index")
    assert (reduced_knn(x, 10, method, metric="euclidean").indices != by_index).any()


@pytest.mark.parametrize("method", ["none", "ls", "nicdm", "mp"])
def test_float32_copies_are_at_distance_zero(rng, method):
    """float32, large norms: Gram products put copies at up to ~1e-3·‖x‖ apart; they must be at
    0 (else σ, r are rounding noise and the limits never apply). The reference runs in float64."""
    x = _with_duplicates(rng, np.float32, scale=1000.0)
    expect, _ = brute(x, 10, method, "euclidean")
    got = reduced_knn(x, 10, method, metric="euclidean")
    np.testing.assert_array_equal(got.indices, expect)


def test_self_is_never_a_neighbour_when_limits_tie_at_infinity():
    """NICDM: an item with ≥ 5 copies has r = 0, so every non-copy is at +∞, as self is masked;
    k beyond the copies must take the nearest non-copies, never the item itself."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 4))
    x[1:6] = x[0]
    res = reduced_knn(x, 10, "nicdm", metric="euclidean")
    assert not (res.indices == np.arange(30)[:, None]).any()
    d = _raw(x, "euclidean")
    nearest_others = [j for j in np.argsort(d[0], kind="stable") if j > 5][:5]
    assert res.indices[0].tolist() == [1, 2, 3, 4, 5] + nearest_others


@pytest.mark.parametrize("method", ["mp", "ls", "nicdm", "mp_empiric", "csls", "dis", "dsl",
                                    "none"])
def test_identical_rows(method):
    """Every distance 0: every reduced value ties; the lists are the lowest other rows."""
    x = np.ones((20, 5))
    metric = {"csls": "cosine", "dis": "cosine", "dsl": "sqeuclidean"}.get(method, "euclidean")
    res = reduced_knn(x, 3, method, metric=metric)
    assert not np.isnan(res.distances).any()
    expect = np.array([[j for j in range(20) if j != i][:3] for i in range(20)])
    np.testing.assert_array_equal(res.indices, expect)


def test_gaussian_mp_on_two_items():
    """N = 2: σ = 0 for both (one distance each), SF of the point mass at μ = d is 0: MP = 1."""
    x = np.array([[0.0, 1.0], [2.0, 0.5]])
    res = reduced_knn(x, 1, "mp", metric="euclidean")
    assert res.indices.ravel().tolist() == [1, 0] and res.distances.ravel().tolist() == [1, 1]
    res = reduced_knn(x, 1, "mp", metric="euclidean", candidates=1)
    assert res.indices.ravel().tolist() == [1, 0] and res.distances.ravel().tolist() == [1, 1]


@pytest.mark.parametrize("method,need", [("ls", 6), ("nicdm", 6), ("dsl", 5), ("csls", 11)])
def test_too_few_items_are_refused_naming_the_minimum(rng, method, need):
    from geomkit.errors import UsageError
    metric = {"dsl": "euclidean"}.get(method, "cosine")
    with pytest.raises(UsageError, match=f"at least {need} items"):
        reduced_knn(rng.standard_normal((need - 1, 4)), 2, method, metric=metric)
    assert reduced_knn(rng.standard_normal((need, 4)), 2, method, metric=metric).indices.shape \
        == (need, 2)


def test_sample_with_100_copies_matches_the_brute_force():
    """The hardening issue's case: one verse copied into 100 rows of the MiniLM sample (float32,
    cosine). Before, 0/0 gave NaN and LS k-skewness went far off; now k-occurrence equals the
    float64 brute force (up to a near tie or two of float32 products)."""
    with h5py.File(SAMPLES / "minilm_kjv.h5") as f:
        x = f["embeddings"][0:1200]
    x[1:101] = x[0]
    for method in ("none", "ls", "nicdm"):
        expect, _ = brute_fast(x, 10, method)
        got = reduced_knn(x, 10, method, metric="cosine")
        ko, kr = k_occurrence(got.indices, 1200), k_occurrence(expect, 1200)
        assert np.abs(ko - kr).sum() <= 4, method
        assert stats.skew(ko) == pytest.approx(stats.skew(kr), abs=0.02), method


def brute_fast(x, k, method):
    """:func:`brute` for cosine none / ls / nicdm with vectorised ranking (larger N)."""
    u = x.astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    d = np.maximum(1.0 - u @ u.T, 0.0)
    rep = duplicate_representatives(x)
    d[rep[:, None] == rep[None, :]] = 0.0
    n = d.shape[0]
    srt = np.sort(np.where(np.eye(n, dtype=bool), np.inf, d), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "none":
            red = d.copy()
        elif method == "ls":
            s = srt[:, K_LS - 1]
            prod = s[:, None] * s[None, :]
            red = np.where(prod == 0, np.where(d == 0, 0.0, np.inf), d ** 2 / prod)
        else:
            r = srt[:, :K_LS].mean(1)
            prod = r[:, None] * r[None, :]
            red = np.where(prod == 0, np.where(d == 0, 0.0, np.inf), d / np.sqrt(prod))
    np.fill_diagonal(red, np.inf)
    cols = np.broadcast_to(np.arange(n), (n, n))
    eye = np.eye(n, dtype=bool)
    order = np.lexsort((cols, d, red, eye), axis=1)[:, :k]
    return order, np.take_along_axis(red, order, 1)


def test_row_hashes_and_duplicate_counts(rng):
    x = rng.standard_normal((50, 7)).astype("f4")
    x[10] = x[3]
    x[11] = x[3]
    x[20] = x[21]
    x[30] = 0.0
    x[31] = -0.0  # equal values: the same row
    h = row_hashes(x)
    assert h.dtype == np.uint64 and h[10] == h[3] and h[20] == h[21] and h[30] == h[31]
    assert len(set(h.tolist())) == 50 - 4
    assert count_duplicates(h) == (4, 3) == duplicate_groups(x)
    # blocks hash like the whole matrix (streaming)
    np.testing.assert_array_equal(np.concatenate([row_hashes(x[:17]), row_hashes(x[17:])]), h)
    y = x.copy()
    y[11, 6] = np.nextafter(y[11, 6], np.float32(9))  # one ulp apart: not a duplicate
    assert duplicate_groups(y) == (3, 3)
    rep = duplicate_representatives(x)
    assert rep[[10, 11, 21, 31]].tolist() == [3, 3, 20, 30]
    assert (rep[[3, 20, 30]] == [3, 20, 30]).all() and duplicate_representatives(x[:3]) is None


def test_duplicate_representatives_survive_a_hash_collision(monkeypatch, rng):
    """Rows with equal hashes are compared exactly: a (forced) collision is not a duplicate."""
    import geomkit.engine.duplicates as dup
    x = rng.standard_normal((20, 3))
    x[7] = x[2]
    monkeypatch.setattr(dup, "row_hashes", lambda a: np.zeros(a.shape[0], dtype=np.uint64))
    rep = dup.duplicate_representatives(x)
    assert rep[7] == 2 and (np.delete(rep, 7) == np.delete(np.arange(20), 7)).all()
    assert dup.duplicate_groups(x) == (1, 1)
