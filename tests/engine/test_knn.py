"""The kNN engine against brute force (scikit-learn / numpy), ties, and the approximate path."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from geomkit.engine.knn import approximate_knn, exact_knn, topk_rows


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_knn_equals_sklearn_brute_force(rng, metric):
    x = rng.standard_normal((700, 24))
    ours = exact_knn(x, 7, metric=metric, block_rows=97)
    nn = NearestNeighbors(n_neighbors=8, metric=metric, algorithm="brute").fit(x)
    dist, idx = nn.kneighbors(x)
    np.testing.assert_array_equal(ours.indices, idx[:, 1:])
    np.testing.assert_allclose(ours.distances, dist[:, 1:], atol=1e-10)


def test_dot_metric_and_float32(rng):
    x = rng.standard_normal((300, 8)).astype(np.float32)
    ours = exact_knn(x, 3, metric="dot")
    sim = x.astype(np.float64) @ x.T.astype(np.float64)
    np.fill_diagonal(sim, -np.inf)
    np.testing.assert_array_equal(ours.indices, np.argsort(-sim, axis=1, kind="stable")[:, :3])


def test_ties_go_to_the_lower_index():
    dist = np.array([[np.inf, 1.0, 1.0, 1.0, 0.5], [2.0, np.inf, 2.0, 2.0, 2.0]])
    idx, d = topk_rows(dist, 2)
    assert idx.tolist() == [[4, 1], [0, 2]]
    x = np.array([[0.0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])  # four equidistant neighbours of 0
    assert exact_knn(x, 2, metric="euclidean").indices[0].tolist() == [1, 2]


def test_approximate_knn_reports_recall(rng):
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    approx = approximate_knn(x, 10, metric="cosine", nprobe=64, recall_sample=300)
    exact = exact_knn(x, 10, metric="cosine")
    measured = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.indices, exact.indices)])
    assert not approx.exact and 0.5 < approx.recall <= 1.0
    assert abs(approx.recall - measured) < 0.05
    assert not (approx.indices == np.arange(5000)[:, None]).any()  # self excluded


def test_topk_rows_tiebreak_and_excluded_self_among_infinities():
    inf = np.inf
    # row 0: self (column 0) and four others all at +inf: self never chosen, ties by the second
    # key (3 nearer than 1), then by index
    dist = np.array([[0.5, inf, inf, inf, inf], [0.0, 7.0, 0.0, 0.0, 1.0]])
    raw = np.array([[0, 5.0, 2.0, 1.0, 5.0], [3.0, 0, 1.0, 1.0, 0]])
    idx, d = topk_rows(dist.copy(), 3, tiebreak=raw, exclude=np.array([0, 1]))
    assert idx.tolist() == [[3, 2, 1], [2, 3, 0]]
    assert np.isinf(d[0]).all()
    idx, _ = topk_rows(dist.copy(), 4, exclude=np.array([0, 1]))  # all four others
    assert idx[0].tolist() == [1, 2, 3, 4] and 0 not in idx[0]
    with pytest.raises(ValueError, match="NaN"):
        topk_rows(np.array([[inf, np.nan, 1.0]]), 1)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_exact_copies_at_distance_zero_first(rng, metric):
    """float32 rows with norms ~1000: Gram products leave copies up to ~2 apart; with the
    duplicate representatives they are at exactly 0 and come first (lower index first), also
    through the re-selection of tied rows (a group of 12 copies ties past k)."""
    from geomkit.engine.duplicates import duplicate_representatives
    x = (rng.standard_normal((400, 37)) * 1000).astype(np.float32)
    x[1:12] = x[0]
    x[300:303] = x[299]
    rep = duplicate_representatives(x)
    res = exact_knn(x, 5, metric=metric, duplicates=rep, block_rows=64)
    assert res.indices[0].tolist() == [1, 2, 3, 4, 5] and (res.distances[:12] == 0).all()
    assert res.indices[299][:3].tolist() == [300, 301, 302]
    assert (res.distances[299][:3] == 0).all() and (res.distances[299][3:] > 0).all()
    plain = exact_knn(x, 5, metric=metric, block_rows=64)
    others = np.flatnonzero(rep == np.arange(400))
    others = others[~np.isin(others, [0, 299])]
    np.testing.assert_array_equal(res.indices[others], plain.indices[others])
