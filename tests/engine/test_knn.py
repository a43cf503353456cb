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
