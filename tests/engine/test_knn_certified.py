"""The certified bfloat16 search (geomkit/engine/knn_certified.py) against float64 brute force.

Its lists must equal the exact k-NN under float64 distances ‖x_i − x_j‖ (ties: the lower row)
on every kind of data, with the candidate-list scan (small blocks, so most tiles take the
sparse path), the second search and the float64 fallback all exercised. The error bound it
certifies with is checked pair by pair, and a search that trusts every list (a broken
certificate) is shown to fail on the same data: the comparisons can see a wrong answer."""

import numpy as np
import pytest

from geomkit import Space
from geomkit.engine import knn_certified as kc
from geomkit.engine.knn_certified import certified_knn, fast_bf16, float64_knn


def brute(x, k):
    x64 = np.asarray(x, dtype=np.float64)
    d = np.sqrt(((x64[:, None, :] - x64[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    idx = np.lexsort((np.broadcast_to(np.arange(len(x)), d.shape), d), axis=1)[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


def _unit(y):
    return y / np.linalg.norm(y, axis=1, keepdims=True)


rng = np.random.default_rng(3)
CASES = {
    "gauss": rng.standard_normal((900, 64)),
    "unit": _unit(rng.standard_normal((900, 64))),
    "manifold_offset": np.tanh(rng.standard_normal((900, 3)) @ rng.standard_normal((3, 64)))
    + 0.01 * rng.standard_normal((900, 64)) + 50,
    "lattice_ties": rng.integers(0, 4, (900, 6)).astype(float),
    "near_copies": np.repeat(rng.standard_normal((180, 32)), 5, axis=0)
    + 1e-4 * rng.standard_normal((900, 32)),
    "exact_copies": np.repeat(rng.standard_normal((300, 16)), 3, axis=0),
    "odd_n": rng.standard_normal((709, 40)),
    "huge_scale": rng.standard_normal((500, 16)) * 1e12,
    "tiny_scale": rng.standard_normal((500, 16)) * 1e-20,
}


# float16 for every case within its range (the 1e±12/±20 scales are float32 only)
PAIRS = [(name, np.float32) for name in CASES] + [
    (name, np.float16) for name in CASES if "scale" not in name]


@pytest.mark.parametrize("name,dtype", PAIRS)
def test_equals_float64_brute_force(name, dtype):
    x = CASES[name].astype(dtype)
    stats = {}
    res = certified_knn(x, 10, block_rows=128, stats=stats)
    idx, dist = brute(x.astype(np.float32), 10)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, dist, rtol=1e-12, atol=1e-300)
    assert res.metric == "euclidean" and res.exact
    assert stats["candidates"] == 18
    if name in ("lattice_ties", "exact_copies"):  # more ties than candidates: searched again
        assert stats["rows_second"] > 0


@pytest.mark.parametrize("n,k", [(3, 1), (3, 2), (7, 6), (40, 5), (130, 20)])
def test_small_spaces(n, k):
    x = np.random.default_rng(n).standard_normal((n, 5)).astype(np.float32)
    res = certified_knn(x, k, block_rows=64)
    idx, dist = brute(x, k)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, dist, rtol=1e-12)


def test_no_slack_still_exact_by_the_later_searches():
    """With K = k the scan's lists are often short of the certificate: the second search and
    the float64 products must make up for it."""
    x = CASES["lattice_ties"].astype(np.float32)
    stats = {}
    res = certified_knn(x, 12, slack=0, block_rows=128, stats=stats)
    np.testing.assert_array_equal(res.indices, brute(x, 12)[0])
    assert stats["rows_second"] > 100 and stats["rows_float64"] > 0


def test_a_certificate_that_trusts_every_list_fails(monkeypatch):
    """The data above can tell a wrong answer: with the bound replaced by +inf (every list
    taken as exact) and no slack, the lattice's tied lists come out wrong."""
    x = CASES["lattice_ties"].astype(np.float32)
    monkeypatch.setattr(kc, "_lower_bound", lambda u, *a, **kw: u.double() * 0 + np.inf)
    res = certified_knn(x, 12, slack=0, block_rows=128)
    assert not np.array_equal(res.indices, brute(x, 12)[0])


@pytest.mark.parametrize("name", ["gauss", "manifold_offset", "near_copies", "huge_scale"])
def test_the_bound_holds_pair_by_pair(name):
    """For every pair (q, c): the true distance ≥ the lower bound the search derives from the
    bfloat16 tile value T(q, c) (the value a left-out row can have at most)."""
    import torch

    x = CASES[name].astype(np.float32)[:400]
    r, e, h2, scale = kc._prepare(x, 128)
    d = x.shape[1]
    t = (kc._left(r, slice(0, len(x)), d) @ r.T).float()
    lb = np.stack([kc._lower_bound(t[i], e[i].expand(len(x)), h2[i].expand(len(x)),
                                   float(e.max()), float(h2.max()), r.shape[1]).numpy()
                   for i in range(len(x))]) / scale
    true = np.sqrt(((x.astype(np.float64)[:, None] - x.astype(np.float64)[None]) ** 2).sum(-1))
    off = ~np.eye(len(x), dtype=bool)
    assert (true[off] >= lb[off]).all()
    # and it is not vacuous: most pairs' bounds are within 2 % of the distance
    assert np.median(lb[off] / true[off]) > 0.98
    assert torch.is_tensor(t)


def test_float64_knn_takes_either_way(monkeypatch):
    x = CASES["gauss"].astype(np.float32)
    idx, dist = brute(x, 8)
    monkeypatch.setenv("GEOMKIT_KNN_BF16", "1")
    assert fast_bf16()
    a = float64_knn(x, 8)
    assert a.search["products"] == "bfloat16, certified in float64"
    monkeypatch.setenv("GEOMKIT_KNN_BF16", "0")
    assert not fast_bf16()
    b = float64_knn(x, 8)
    assert b.search == {"products": "float32"}
    for res in (a, b):
        np.testing.assert_array_equal(res.indices, idx)
        np.testing.assert_allclose(res.distances, dist, rtol=1e-12)
    # float64 data and other devices keep the float64 / torch engine
    assert float64_knn(x.astype(np.float64), 8).search == {"products": "float64"}


def test_space_knn_float64_lists(monkeypatch):
    monkeypatch.setenv("GEOMKIT_KNN_BF16", "1")
    x = CASES["unit"].astype(np.float32)
    space = Space.from_array(x)
    g = space.knn(12, "euclidean", float64=True)
    np.testing.assert_array_equal(g.indices, brute(x, 12)[0])
    assert space.knn(5, "euclidean", float64=True).search == g.search  # the cached prefix
    with pytest.raises(ValueError, match="euclidean"):
        space.knn(5, "cosine", float64=True)
