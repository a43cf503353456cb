"""Hubness: geomkit's kNN engine and reductions against scikit-hubness's algorithms.

    python benchmarks/hubness.py [--n 20000] [--dim 384] [--k 10] [--approx-n 1000000]

PyPI scikit-hubness 0.21.2 does not install on Python 3.11 (it pins scikit-learn 0.21.3), so:
- exact k-NN: its exact path is scikit-learn's brute-force NearestNeighbors, timed directly;
- Gaussian mutual proximity: the steps scikit-hubness 0.30 (the oracle's version) runs — full
  scikit-learn kneighbors graph, GraphMutualProximity(method="normal") with its Python loop over
  rows calling scipy.stats.norm.sf, the re-sorted graph — are re-implemented here and timed
  (`--mp-n` rows, float64, euclidean); k-occurrence is compared with geomkit's.
Reported: the float32 matrix product X·Xᵀ alone (the floor for exact kNN), geomkit exact kNN +
measures, the ratio kNN / matmul, identical k-occurrence, and the approximate path at --approx-n rows
(clustered data in /tmp, faiss IVF) with its measured recall@k.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def clustered(n, dim, seed=0, centers=1000):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        out[a:b] = c[rng.integers(0, centers, b - a)] + 0.8 * rng.standard_normal((b - a, dim),
                                                                                  dtype=np.float32)
    return out


def skhubness_mp_normal(x: np.ndarray, k: int) -> np.ndarray:
    """scikit-hubness 0.30's Gaussian mutual proximity over all other items, step by step as the
    package runs it: scikit-learn's full kneighbors graph (N − 1 sorted neighbours per item),
    GraphMutualProximity(method="normal") fit (μ, σ per row) and transform (a Python loop over
    rows with scipy.stats.norm.sf), then the re-sorted graph; returns the k nearest under MP.
    The package sorts with numpy's default (unstable) argsort; a stable sort is used here so that
    rows where MP rounds to exactly 0 beyond rank k keep the raw-distance order (geomkit's tie
    rule) — with the unstable sort their order is arbitrary."""
    from scipy import stats
    from sklearn.neighbors import NearestNeighbors
    n = x.shape[0]
    graph = NearestNeighbors(n_neighbors=n - 1, metric="euclidean", algorithm="brute").fit(
        x).kneighbors_graph(mode="distance")
    data = graph.data.reshape(n, -1)
    mu_all, sd_all = np.nanmean(data, axis=1), np.nanstd(data, axis=1, ddof=0)
    red = np.ones((n, n - 1))
    for i in range(n):
        row = graph.getrow(i)
        mu, sd = np.nanmean(row.data), np.nanstd(row.data, ddof=0)
        p1 = stats.norm.sf(row.data, mu, sd)
        p2 = stats.norm.sf(row.data, mu_all[row.indices], sd_all[row.indices])
        red[i, :] -= (p1 * p2).ravel()
    order = np.argsort(red, axis=1, kind="stable")
    return np.take_along_axis(graph.indices.reshape(n, -1), order, axis=1)[:, :k]


def main() -> None:
    import torch  # noqa: F401  (imported up front, like scikit-learn: library import is not timed)
    from sklearn.neighbors import NearestNeighbors

    from geomkit.analysis.hubness import hubness_measures, k_occurrence
    from geomkit.engine.knn import approximate_knn, exact_knn
    from geomkit.transforms.hubness import reduced_knn

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--mp-n", type=int, default=5000)
    ap.add_argument("--approx-n", type=int, default=1_000_000)
    args = ap.parse_args()
    out = {}
    x = clustered(args.n, args.dim)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)

    t = time.perf_counter()
    for a in range(0, args.n, 4096):
        _ = u[a:a + 4096] @ u.T
    out["matmul_seconds"] = time.perf_counter() - t
    out["matmul_gflops"] = 2 * args.n * args.n * args.dim / out["matmul_seconds"] / 1e9

    t = time.perf_counter()
    ours = exact_knn(x, args.k, metric="cosine")
    kocc = k_occurrence(ours.indices, args.n)
    hubness_measures(kocc, args.k)
    out["geomkit_knn_seconds"] = time.perf_counter() - t
    out["knn_over_matmul"] = out["geomkit_knn_seconds"] / out["matmul_seconds"]
    print(json.dumps(out), flush=True)

    t = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=args.k + 1, metric="cosine", algorithm="brute").fit(x)
    _, idx = nn.kneighbors(x)
    out["sklearn_brute_seconds"] = time.perf_counter() - t
    out["speedup_vs_sklearn"] = out["sklearn_brute_seconds"] / out["geomkit_knn_seconds"]
    # sklearn returns self first except on exact duplicates; drop self by index
    sk = np.array([[j for j in row if j != i][:args.k] for i, row in enumerate(idx)])
    out["identical_k_occurrence"] = bool(np.array_equal(k_occurrence(sk, args.n), kocc))
    out["rows_with_different_lists"] = int((np.sort(sk, 1) != np.sort(ours.indices, 1)).any(1).sum())
    print(json.dumps(out), flush=True)

    # Gaussian mutual proximity, full rows (scikit-hubness's reference algorithm is O(N²) memory)
    xm = x[: args.mp_n].astype(np.float64)
    t = time.perf_counter()
    mp = reduced_knn(xm, args.k, "mp", metric="euclidean")
    out["geomkit_mp_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    ref_idx = skhubness_mp_normal(xm, args.k)
    out["skhubness_mp_seconds"] = time.perf_counter() - t
    out["mp_n"] = args.mp_n
    out["mp_speedup"] = out["skhubness_mp_seconds"] / out["geomkit_mp_seconds"]
    out["mp_identical_k_occurrence"] = bool(np.array_equal(k_occurrence(ref_idx, args.mp_n),
                                                           k_occurrence(mp.indices, args.mp_n)))
    print(json.dumps(out), flush=True)

    if args.approx_n:
        xa = clustered(args.approx_n, args.dim, seed=1)
        t = time.perf_counter()
        res = approximate_knn(xa, args.k, metric="cosine", recall_sample=1000)
        kocc = k_occurrence(res.indices, args.approx_n)
        measures = hubness_measures(kocc, args.k)
        out["approx_n"] = args.approx_n
        out["approx_seconds"] = time.perf_counter() - t
        out["approx_recall_at_k"] = res.recall
        out["approx_k_skewness"] = measures["k_skewness"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
