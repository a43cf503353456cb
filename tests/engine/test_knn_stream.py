"""The streamed exact kNN (engine/knn_stream.py) and streamed duplicates against brute force,
against the in-memory path, across block sizes and on Dask."""

import numpy as np
import pytest

import geomkit
from geomkit.analysis.hubness import compute_hubness, k_occurrence, knn_error
from geomkit.engine.duplicates import (SparseDuplicates, duplicate_representatives,
                                       stream_duplicates)
from geomkit.engine.executor import DaskExecutor
from geomkit.engine.knn import exact_knn
from geomkit.engine.knn_stream import StreamKnnAccumulator, stream_knn
from geomkit.errors import UsageError
from conftest import write_h5


def exact_data(metric: str, n: int = 240, seed: int = 3) -> np.ndarray:
    """Rows whose products are exact in float32, with many equal distances, exact copies and
    scaled copies. Euclidean and dot: small integers. Cosine: ±1 on 1, 4 or 16 of 16 coordinates
    times a power of two, so unit rows are ±1, ±½, ±¼ and their products are exact."""
    rng = np.random.default_rng(seed)
    if metric == "cosine":
        x = np.zeros((n, 16), dtype=np.float32)
        for i in range(n):
            m = rng.choice([1, 4, 16])
            cols = rng.choice(16, size=m, replace=False)
            x[i, cols] = rng.choice([-1.0, 1.0], size=m) * 2.0 ** rng.integers(-2, 3)
    else:
        x = rng.integers(-2, 3, size=(n, 6)).astype(np.float32)
        x[(x == 0).all(1), 0] = 1
    x[20:26] = x[3]  # a group of copies after its first member
    x[50] = x[49]
    x[60] = x[140]  # a copy before its lowest equal row
    x[70] = 2 * x[71]  # scaled: same direction
    return x


def brute(x: np.ndarray, k: int, metric: str):
    """float64 distances, self excluded, ordered by (distance, row): the oracle."""
    x = x.astype(np.float64)
    if metric == "cosine":
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        dist = np.maximum(1.0 - u @ u.T, 0.0)
    elif metric == "dot":
        dist = -(x @ x.T)
    else:
        sq = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        dist = sq if metric == "sqeuclidean" else np.sqrt(sq)
    np.fill_diagonal(dist, np.inf)
    n = x.shape[0]
    order = np.lexsort((np.broadcast_to(np.arange(n), dist.shape), dist), axis=1)[:, :k]
    return order, np.take_along_axis(dist, order, axis=1)


SIZES = [(None, None), (37, 50), (100, 240), (240, 16)]


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean", "dot"])
def test_streamed_lists_equal_brute_force_and_exact_knn_with_ties(metric):
    x = exact_data(metric)
    rep = duplicate_representatives(x)
    for k in (1, 6, 25):
        idx, dist = brute(x, k + 1, metric)
        assert (dist[:, k] == dist[:, k - 1]).sum() > 10  # rows with ties at the list's end
        idx, dist = idx[:, :k], dist[:, :k]
        memory = exact_knn(x, k, metric=metric, duplicates=rep)
        np.testing.assert_array_equal(memory.indices, idx)
        for batch, ref in SIZES:
            got = stream_knn(geomkit.Space.from_array(x), k, metric, keep=True,
                             batch_rows=batch, ref_rows=ref)
            np.testing.assert_array_equal(got.knn.indices, idx, err_msg=f"{batch}, {ref}")
            np.testing.assert_allclose(got.knn.distances, dist, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(got.kocc, k_occurrence(idx, x.shape[0]))
            assert got.n == x.shape[0]


def test_copies_rank_first_and_in_row_order():
    # unit rows of integer vectors are inexact: copies must still be at exactly 0, before all
    # else, the lower row first (also for a copy whose representative comes later)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 12)).astype(np.float32)
    x[[40, 90, 200]] = x[150]
    for metric in ("cosine", "euclidean"):
        got = stream_knn(geomkit.Space.from_array(x), 5, metric, keep=True, batch_rows=64,
                         ref_rows=45).knn
        for q, others in ((150, [40, 90, 200]), (40, [90, 150, 200]), (200, [40, 90, 150])):
            assert got.indices[q, :3].tolist() == others
            assert (got.distances[q, :3] == 0).all() and (got.distances[q, 3:] > 0).all()


def test_continuous_data_equals_exact_knn(rng):
    x = rng.standard_normal((1500, 48)).astype(np.float32)
    for metric in ("cosine", "euclidean", "dot"):
        memory = exact_knn(x, 10, metric=metric)
        got = stream_knn(geomkit.Space.from_array(x), 10, metric, keep=True)
        np.testing.assert_array_equal(got.knn.indices, memory.indices)
        np.testing.assert_allclose(got.knn.distances, memory.distances, rtol=1e-6, atol=1e-6)


def test_no_neighbour_list_is_kept_by_default():
    x = exact_data("euclidean")
    acc = StreamKnnAccumulator(geomkit.Space.from_array(x).source, x.shape[0], 5, "euclidean",
                               batch_rows=50)
    geomkit.Space.from_array(x).run(acc)
    res = acc.result()
    assert res.knn is None and acc.kept == [] and res.kocc.sum() == 5 * x.shape[0]


# ----------------------------------------------------------------------------- duplicates
def test_stream_duplicates_equal_in_memory_groups(tmp_path):
    x = exact_data("euclidean", n=500)
    x[300] = -0.0 * x[300]  # no effect unless zero: a row of −0.0 equals a row of 0.0
    x[301] = 0.0
    x[302] = -0.0
    rep = duplicate_representatives(x)
    for space in (geomkit.Space.from_array(x, memory=2**12),
                  geomkit.Space.open(str(write_h5(tmp_path / "d.h5", x)), memory=2**12)):
        found = stream_duplicates(space)
        np.testing.assert_array_equal(found.dense(), rep)
        copies = rep != np.arange(x.shape[0])
        assert found.counts() == (int(copies.sum()), int(np.unique(rep[copies]).size))
        # only rows of groups are held, not one entry per row
        assert found.pos.size == np.isin(np.arange(x.shape[0]), rep[copies]).sum() + copies.sum()


def test_stream_duplicates_resolve_hash_collisions(monkeypatch):
    import geomkit.engine.duplicates as dup

    x = exact_data("euclidean", n=200)
    weak = lambda block: np.asarray(block[:, 0] > 0, dtype=np.uint64)  # noqa: E731 - 2 hashes
    monkeypatch.setattr(dup, "row_hashes", weak)
    found = stream_duplicates(geomkit.Space.from_array(x, memory=2**12))
    np.testing.assert_array_equal(found.dense(), duplicate_representatives(x))


def test_positions_after_sampling_and_dropping(tmp_path):
    x = exact_data("euclidean", n=260)
    x[[5, 77]] = np.nan
    path = str(write_h5(tmp_path / "nan.h5", x))
    space = geomkit.Space.open(path, drop_nonfinite=True, sample=200, seed=1, memory=2**13)
    got = stream_knn(space, 4, "euclidean", keep=True, batch_rows=30, ref_rows=41)
    rows = space.rows
    kept = x[rows]
    idx, _ = brute(kept, 4, "euclidean")
    np.testing.assert_array_equal(got.knn.indices, idx)
    assert space.n_dropped == int(np.isin([5, 77], space.source.selected_rows()).sum())


# ----------------------------------------------------------------------------- hubness
def _labels(n):
    return np.array(list("abcab") * (n // 5 + 1))[:n]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_hubness_streamed_equals_in_memory(metric):
    x = exact_data(metric)
    labels = _labels(x.shape[0])
    memory = compute_hubness(geomkit.Space.from_array(x), k=6, metric=metric, labels=labels)
    assert memory.n_duplicates > 0
    for max_bytes in (1, 10_000):  # the matrix does not fit: streamed
        streamed = compute_hubness(geomkit.Space.from_array(x, memory=2**14), k=6,
                                   metric=metric, labels=labels, max_bytes=max_bytes)
        assert streamed.to_dict() == memory.to_dict()
        np.testing.assert_array_equal(streamed.kocc["none"], memory.kocc["none"])
        np.testing.assert_array_equal(streamed.rows, memory.rows)
    idx, _ = brute(x, 6, metric)
    assert memory.methods["none"]["knn_error"] == knn_error(idx, labels)


def test_hubness_on_dask_processes_equals_in_memory(tmp_path):
    x = exact_data("cosine", n=300)
    labels = _labels(300)
    path = str(write_h5(tmp_path / "e.h5", x))
    memory = compute_hubness(geomkit.Space.open(path), k=5, labels=labels)
    dask = compute_hubness(geomkit.Space.open(path, memory=2**14, executor=DaskExecutor(
        scheduler="processes", partitions=3)), k=5, labels=labels)
    assert dask.to_dict() == memory.to_dict()
    np.testing.assert_array_equal(dask.kocc["none"], memory.kocc["none"])


def test_hubness_on_a_distributed_cluster_equals_in_memory(tmp_path):
    distributed = pytest.importorskip("distributed")
    x = exact_data("euclidean", n=300)
    path = str(write_h5(tmp_path / "e.h5", x))
    memory = compute_hubness(geomkit.Space.open(path), k=7, metric="euclidean")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = compute_hubness(geomkit.Space.open(path, memory=2**14, executor=DaskExecutor(
            client, partitions=4)), k=7, metric="euclidean")
    assert remote.to_dict() == memory.to_dict()
    np.testing.assert_array_equal(remote.kocc["none"], memory.kocc["none"])


def test_reductions_are_refused_where_the_search_streams():
    x = exact_data("euclidean")
    with pytest.raises(UsageError, match="reduction ls needs the whole matrix"):
        compute_hubness(geomkit.Space.from_array(x), k=5, reduce=("none", "ls"), max_bytes=1)
    with pytest.raises(UsageError, match="reduction csls .*Dask"):
        compute_hubness(geomkit.Space.from_array(x, executor=DaskExecutor("synchronous")),
                        k=5, reduce=("csls",))


def test_sparse_duplicates_lookup():
    dups = SparseDuplicates(np.array([9, 2, 4]), np.array([2, 2, 2]), 12)
    assert dups.representatives(np.array([0, 2, 4, 9, 11])).tolist() == [-1, 2, 2, 2, -1]
    assert dups.counts() == (2, 1)
    assert not SparseDuplicates(np.empty(0, int), np.empty(0, int), 5)


def test_in_memory_path_equals_streamed_on_copies_under_cosine():
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, size=(500, 8)).astype(np.float32)
    x[10:20] = x[0]
    x[30] = 2 * x[31]
    x[x.sum(1) == 0, 0] = 1
    memory = exact_knn(x, 7, metric="cosine", duplicates=duplicate_representatives(x))
    streamed = stream_knn(geomkit.Space.from_array(x), 7, "cosine", keep=True,
                          batch_rows=200, ref_rows=300)
    np.testing.assert_array_equal(streamed.knn.indices, memory.indices)
