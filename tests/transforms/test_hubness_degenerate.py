"""Hubness reductions on degenerate data (exact duplicates, identical rows, N = 2) against an
all-pairs brute force that applies each definition's limits where a local scale is 0."""

import numpy as np
import pytest
from scipy.special import ndtr

from geomkit.engine.duplicates import count_duplicates, duplicate_groups, row_hashes
from geomkit.transforms.hubness import reduced_knn


def _dist(x):
    sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.sqrt(sq)


def _topk(red, d, k):
    """k smallest reduced distances per row, self excluded, ties by raw distance then index."""
    n = red.shape[0]
    out = []
    for i in range(n):
        cand = [j for j in range(n) if j != i]
        cand.sort(key=lambda j: (red[i, j], d[i, j], j))
        out.append(cand[:k])
    return np.array(out)


def _kth(d, k):
    s = np.sort(d + np.diag(np.full(d.shape[0], np.inf)), axis=1)
    return s[:, :k]


def _brute(x, k, method):
    d = _dist(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "ls":
            s = _kth(d, 5)[:, -1]
            prod = s[:, None] * s[None, :]
            red = np.where(prod == 0, np.where(d == 0, 0.0, 1.0), 1 - np.exp(-d ** 2 / prod))
        elif method == "nicdm":
            r = _kth(d, 5).mean(1)
            prod = r[:, None] * r[None, :]
            red = np.where(prod == 0, np.where(d == 0, 0.0, np.inf), d / np.sqrt(prod))
        elif method == "mp":
            off = ~np.eye(d.shape[0], dtype=bool)
            mu = np.array([d[i, off[i]].mean() for i in range(d.shape[0])])
            sd = np.array([d[i, off[i]].std() for i in range(d.shape[0])])

            def sf(v, m, s):
                out = ndtr((m - v) / s)
                return np.where(s == 0, np.where(v < m, 1.0, 0.0), out)
            red = 1 - sf(d, mu[:, None], sd[:, None]) * sf(d, mu[None, :], sd[None, :])
    assert not np.isnan(red[~np.eye(d.shape[0], dtype=bool)]).any()
    return red, d


def _clustered(rng):
    x = rng.standard_normal((40, 3))
    x[5:14] = x[2]       # a group of 10 identical rows: their k_ls-th neighbour is at 0
    x[30:32] = x[29]     # a group of 3
    return x


@pytest.mark.parametrize("method", ["ls", "nicdm", "mp"])
def test_duplicates_follow_the_limits_of_the_definition(rng, method):
    x = _clustered(rng)
    k = 4
    red, d = _brute(x, k, method)
    got = reduced_knn(x, k, method, metric="euclidean")
    assert np.isfinite(got.distances).all() or method == "nicdm"
    assert not np.isnan(got.distances).any()
    expect = _topk(red, d, k)
    # reduced distances agree; equal reduced distances may be ordered by raw distance
    np.testing.assert_allclose(np.take_along_axis(red, got.indices, 1),
                               np.take_along_axis(red, expect, 1), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["mp", "ls", "nicdm", "mp_empiric", "csls", "dis", "dsl"])
def test_identical_rows_give_no_nan_and_no_error(method):
    x = np.ones((20, 5))
    metric = "euclidean" if method in ("mp", "ls", "nicdm", "dsl", "mp_empiric") else "cosine"
    res = reduced_knn(x, 3, method, metric=metric)
    assert res.indices.shape == (20, 3) and not np.isnan(res.distances).any()
    assert (res.indices != np.arange(20)[:, None]).all()


def test_gaussian_mp_on_two_items():
    x = np.array([[0.0, 1.0], [2.0, 0.5]])
    res = reduced_knn(x, 1, "mp", metric="euclidean")
    assert res.indices.ravel().tolist() == [1, 0] and not np.isnan(res.distances).any()


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
