"""The approximate kNN path (geomkit/engine/ann.py) against exact search and brute force: recall,
k-skewness, distances, block-size invariance, the memory plan and its refusal, progress."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from conftest import run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.hubness import (compute_hubness, hubness_measures, k_occurrence,
                                      knn_error, knn_error_count)
from geomkit.engine.ann import ArrayFeed, SpaceFeed, approximate_search, plan_index
from geomkit.engine.knn import exact_knn
from geomkit.errors import UsageError

N, D, K = 6000, 32, 10


def clustered(n=N, d=D, centers=60, noise=0.9, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d))
    lab = rng.integers(0, centers, n)
    return (c[lab] + noise * rng.standard_normal((n, d))).astype(np.float32), lab


@pytest.fixture(scope="module")
def data():
    x, lab = clustered()
    return x, lab, exact_knn(x, K, metric="cosine")


def _true_recall(found, exact):
    return np.mean([len(set(a) & set(b)) for a, b in zip(found, exact)]) / found.shape[1]


@pytest.mark.parametrize("kind", ["flat", "sq8", "pq"])
def test_recall_and_k_skewness_close_to_exact(data, kind):
    x, _, ex = data
    res = approximate_search(ArrayFeed(x, "cosine", 1000), K, memory=2**30, kind=kind,
                             nprobe=8, recall_sample=600, keep=True)
    true = _true_recall(res.indices, ex.indices)
    assert true >= 0.9, true
    assert abs(res.recall - true) < 0.03  # the sampled recall estimates the recall over all N
    assert not (res.indices == np.arange(N)[:, None]).any()  # self excluded
    skew_a = hubness_measures(k_occurrence(res.indices, N), K)["k_skewness"]
    skew_e = hubness_measures(k_occurrence(ex.indices, N), K)["k_skewness"]
    assert abs(skew_a - skew_e) < 0.1
    # distances: brute-force cosine distances of the returned pairs, ascending per row
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    brute = 1.0 - np.einsum("ij,ikj->ik", u, u[res.indices])
    np.testing.assert_allclose(res.distances, brute, atol=2e-6)
    assert (np.diff(res.distances, axis=1) >= 0).all()
    assert res.info["index"].startswith({"flat": "IVF-Flat", "sq8": "IVF-SQ8", "pq": "IVF-PQ"}[kind])


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "dot"])
def test_exhaustive_probe_is_exact_for_every_metric(data, metric):
    """nprobe = nlist with IVF-Flat visits every row: the neighbours are the exact ones."""
    x = data[0][:2000]
    ex = exact_knn(x, K, metric=metric)
    plan = plan_index(2000, D, K, None)
    res = approximate_search(ArrayFeed(x, metric, 700), K, metric=metric, nprobe=plan.nlist,
                             recall_sample=200, keep=True)
    assert _true_recall(res.indices, ex.indices) == 1.0 and res.recall == 1.0
    np.testing.assert_allclose(res.distances, ex.distances, rtol=1e-4, atol=1e-3)


def test_block_sizes_give_identical_results(data):
    x = data[0]
    runs = [approximate_search(ArrayFeed(x, "cosine", b), K, memory=2**30, kind="sq8",
                               recall_sample=300, keep=True) for b in (500, 1777, 6000)]
    for r in runs[1:]:
        assert (r.indices == runs[0].indices).all()
        assert (r.distances == runs[0].distances).all()
        assert r.recall == runs[0].recall


def test_hubness_exhaustive_equals_exact_path(tmp_path, data):
    """Through the CLI on a file: k-occurrence measures and k-NN error equal the exact path's
    when every list is probed (IVF-Flat)."""
    x, lab, _ = data
    path = write_h5(tmp_path / "e.h5", x[:3000], labels=[f"c{v % 7}" for v in lab[:3000]])
    nlist = plan_index(3000, D, K, 256 * 2**20).nlist
    exact = run_json("hubness", path, "--exact", "--knn-error")
    approx = run_json("hubness", path, "--approximate", "--knn-error", "--nprobe", str(nlist))
    assert approx["knn"]["recall"] == 1.0 and approx["knn"]["index"] == "IVF-Flat"
    for key, value in exact["methods"]["none"].items():
        assert approx["methods"]["none"][key] == pytest.approx(value, abs=1e-12), key
    # fewer lists probed: lower recall, reported with the index it used
    few = run_json("hubness", path, "--approximate", "--nprobe", "1")
    assert few["knn"]["nprobe"] == 1 and few["knn"]["recall"] < 1.0
    assert few["knn"]["index_bytes"] > 0 and few["knn"]["nlist"] == nlist


def test_knn_error_count_equals_knn_error(rng):
    idx = rng.integers(0, 300, (300, 7))
    labels = np.array([f"l{v}" for v in rng.integers(0, 4, 300)], dtype=object)
    codes = np.unique(labels.astype(str), return_inverse=True)[1].ravel()
    assert knn_error_count(codes[idx], codes) / 300 == knn_error(idx, labels)


def test_budget_respected_and_compressed_index(tmp_path):
    """A small --memory: a compressed index within it, the numpy allocations of the whole run
    bounded by the budget plus a few bytes a row (no copy of the 5 MB matrix)."""
    x, _ = clustered(n=30_000, d=64)
    path = write_h5(tmp_path / "big.h5", x)
    memory = 2 * 2**20
    import faiss  # noqa: F401  (imported first: its module objects are not data)

    with Space.open(str(path), memory=memory) as space:
        tracemalloc.start()
        res = compute_hubness(space, k=K, approximate=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    info = res.knn
    assert info["index"] != "IVF-Flat"  # 30 000 x 64 x 4 = 7.7 MB does not fit 3/4 of 2 MB
    assert info["index_bytes_measured"] <= info["index_bytes"] <= 0.75 * memory
    # a block's working copies within the budget, the training sample (half of it), a few
    # O(N) arrays (counts, rows, hashes, measures): below the 7.7 MB matrix
    assert peak < 2 * memory + 80 * 30_000 < x.nbytes, (peak, info)
    assert info["recall"] > 0.8


def test_refusal_names_the_memory_needed(tmp_path):
    x, _ = clustered(n=100_000, d=4)  # even 1-byte PQ codes + 8-byte ids: 0.9 MB > 3/4 of 1 MB
    path = write_h5(tmp_path / "r.h5", x)
    proc = run_cli("hubness", path, "--approximate", "--memory", "1MB", "--json")
    assert proc.returncode == 2
    assert "--memory" in proc.stderr and "MB or more" in proc.stderr
    assert "Traceback" not in proc.stderr
    needed = proc.stderr.split("--memory ")[1].split("MB")[0]
    ok = run_json("hubness", path, "--approximate", "--memory", f"{needed}MB")
    assert ok["knn"]["index_bytes"] <= 0.75 * int(needed) * 2**20
    with pytest.raises(UsageError, match="memory="):
        plan_index(100_000, 4, K, 2**20)


def test_nprobe_refused_where_it_cannot_act(tmp_path, data):
    path = write_h5(tmp_path / "s.h5", data[0][:500])
    assert run_cli("hubness", path, "--exact", "--nprobe", "2").returncode == 2
    nlist = plan_index(500, D, K, 256 * 2**20).nlist
    proc = run_cli("hubness", path, "--approximate", "--nprobe", str(nlist + 1))
    assert proc.returncode == 2 and "--nprobe" in proc.stderr


def test_progress_silent_when_not_a_terminal(tmp_path, data):
    path = write_h5(tmp_path / "p.h5", data[0][:2000])
    proc = run_cli("hubness", path, "--approximate", "--json")
    assert proc.returncode == 0 and proc.stderr == ""


def test_space_feed_follows_dropped_rows(tmp_path, data):
    """Positions are the analysed rows (after --drop-nonfinite): neighbours of the remaining
    rows only, read back from the right original rows."""
    x = data[0][:1500].copy()
    x[[3, 700]] = np.nan
    path = write_h5(tmp_path / "d.h5", x)
    keep = np.setdiff1d(np.arange(1500), [3, 700])
    ex = exact_knn(x[keep], K, metric="cosine")
    with Space.open(str(path), drop_nonfinite=True) as space:
        feed = SpaceFeed(space, "cosine")
        res = approximate_search(feed, K, memory=2**20, kind="pq", nprobe=plan_index(
            1498, D, K, 2**20, kind="pq").nlist, recall_sample=100, keep=True)
        assert (feed.rows == keep).all()
    assert _true_recall(res.indices, ex.indices) > 0.97
    u = x[keep] / np.linalg.norm(x[keep], axis=1, keepdims=True)
    np.testing.assert_allclose(res.distances, 1 - np.einsum("ij,ikj->ik", u, u[res.indices]),
                               atol=2e-6)


def test_progress_on_a_terminal_unless_quiet(data, capsys, monkeypatch):
    import sys

    from geomkit.report import progress

    class SlowFeed(ArrayFeed):  # passes of ~1.5 s: bars show for passes over a second
        def blocks(self, progress=None):
            import time

            for item in super().blocks(progress):
                time.sleep(0.25)
                yield item

    x = data[0][:3000]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(progress, "_QUIET", False)
    approximate_search(SlowFeed(x, "cosine", 500), K, recall_sample=50)
    err = capsys.readouterr().err
    assert "approximate kNN: indexing" in err and "approximate kNN: searching" in err
    monkeypatch.setattr(progress, "_QUIET", True)
    approximate_search(SlowFeed(x, "cosine", 500), K, recall_sample=50)
    assert capsys.readouterr().err == ""


def _steps_before(p, nlist):
    from geomkit.engine.ann import _nprobe_steps

    steps = list(_nprobe_steps(nlist))
    return steps[steps.index(p) - 1] if steps.index(p) else None


@pytest.mark.parametrize("target", [0.8, 0.95, 0.99])
def test_tuned_nprobe_is_the_fewest_reaching_the_target(data, target):
    """nprobe tuned on 500 seeded queries: the recall of ALL rows (against brute force) reaches
    the target at the chosen nprobe and not at the step before (binomial slack 0.02)."""
    x, _, ex = data
    res = approximate_search(ArrayFeed(x, "cosine"), K, target_recall=target, keep=True)
    chosen, nlist = res.info["nprobe"], res.info["nlist"]
    tuning = res.info["nprobe_tuning"]
    assert tuning["target"] == target and tuning["sample"] == 500
    tried = list(tuning["recall"].items())  # in the order searched, the chosen step last
    assert int(tried[-1][0]) == chosen and tried[-1][1] >= target
    assert len(tried) >= 2 and all(r < target for _, r in tried[:-1])  # fewer lists fell short
    assert _true_recall(res.indices, ex.indices) >= target - 0.02
    assert res.recall >= target - 0.02  # the disjoint recall sample agrees
    before = _steps_before(chosen, nlist)
    fewer = approximate_search(ArrayFeed(x, "cosine"), K, nprobe=before, keep=True)
    assert "nprobe_tuning" not in fewer.info and fewer.info["nprobe"] == before
    assert _true_recall(fewer.indices, ex.indices) < target + 0.02
    # a higher target never chooses fewer lists
    if target < 0.99:
        higher = approximate_search(ArrayFeed(x, "cosine"), K, target_recall=0.995)
        assert higher.info["nprobe"] > chosen


def test_tuning_with_compressed_codes_counts_the_reranked_recall(data):
    x, _, ex = data
    res = approximate_search(ArrayFeed(x, "cosine"), K, memory=2**20, keep=True)
    assert res.info["index"] == "IVF-SQ8" and res.info["nprobe_tuning"]["target"] == 0.95
    assert _true_recall(res.indices, ex.indices) >= 0.93


def test_no_tuning_queries_means_every_list(data):
    """N at most the recall sample: no disjoint tuning queries, every list is searched (the
    exact neighbours through the index)."""
    x = data[0][:800]
    ex = exact_knn(x, K, metric="cosine")
    res = approximate_search(ArrayFeed(x, "cosine"), K, keep=True)
    assert res.info["nprobe"] == res.info["nlist"] and res.info["nprobe_tuning"]["sample"] == 0
    assert _true_recall(res.indices, ex.indices) == 1.0


def test_target_recall_and_nprobe_exclusive(data, tmp_path):
    with pytest.raises(UsageError, match="one of the two"):
        approximate_search(ArrayFeed(data[0], "cosine"), K, nprobe=2, target_recall=0.9)
    with pytest.raises(UsageError, match="must be in"):
        approximate_search(ArrayFeed(data[0], "cosine"), K, target_recall=1.5)
    path = write_h5(tmp_path / "t.h5", data[0][:3000])
    out = run_json("hubness", path, "--approximate", "--target-recall", "0.99")
    assert out["knn"]["nprobe_tuning"]["target"] == 0.99 and out["knn"]["recall"] >= 0.97
    for argv in (["--exact", "--target-recall", "0.9"],
                 ["--approximate", "--nprobe", "2", "--target-recall", "0.9"],
                 ["--approximate", "--target-recall", "0"]):
        proc = run_cli("hubness", path, *argv)
        assert proc.returncode == 2 and "--target-recall" in proc.stderr, proc.stderr


def test_scheduler_refused_with_the_approximate_search(data, tmp_path):
    """The approximate search runs in this process: --scheduler on the command line cannot act
    there and is refused (before any cluster starts); GEOMKIT_SCHEDULER is ignored there."""
    path = write_h5(tmp_path / "d.h5", data[0][:1500])
    proc = run_cli("hubness", path, "--approximate", "--scheduler", "local:2")
    assert proc.returncode == 2 and "--scheduler" in proc.stderr and "--exact" in proc.stderr
    env = run_cli("hubness", path, "--approximate", "--json", "-q",
                  env={"GEOMKIT_SCHEDULER": "tcp://127.0.0.1:9"})  # nothing listens there
    assert env.returncode == 0, env.stderr
    import json

    assert json.loads(env.stdout)["knn"]["exact"] is False


def test_pq_plan_names_the_budget_for_8bit_codes():
    plan = plan_index(1_000_000, 768, 10, 256 * 2**20)
    assert plan.kind == "pq" and plan.sq8_memory > 256 * 2**20
    assert plan_index(1_000_000, 768, 10, plan.sq8_memory).kind == "sq8"
    assert plan_index(1_000_000, 768, 10, int(plan.sq8_memory * 0.97)).kind == "pq"
    assert "sq8_memory" not in plan_index(1_000_000, 768, 10, plan.sq8_memory).info()
    from geomkit.report.readings_hubness import approximate_note

    note = approximate_note({**plan.info(), "recall": 0.9, "recall_sample": 1000}, 10)
    assert f"--memory {-(-plan.sq8_memory // 2**20)}MB" in note and "IVF-SQ8" in note
