"""Intrinsic dimension: `geomkit intdim` against scikit-dimension 0.5's TwoNN and MLE.

    python benchmarks/intdim.py [--n 100000] [--dim 768] [--k 20] [--peer-n 20000]
                                [--smoke] [--markdown PATH]

Data: float32 points on a 16-dimensional curved manifold in R^dim (a random tanh layer of a
16-d Gaussian) plus small isotropic noise, written to /tmp as HDF5 (deleted at the end).
geomkit runs as a whole command in a fresh process (`geomkit intdim FILE --estimators twonn,mle`:
one exact kNN graph serves both, imports and reads included), peak RSS of that process.
scikit-dimension (benchmark-only dependency: `pip install scikit-dimension==0.5.0`) runs in its own
fresh process on the same rows, data loaded before its clocks start: `TwoNN().fit(X)` (it sorts
full rows of `pairwise_distances_chunked` when d > 25) and `MLE().fit(X, n_neighbors=20)`
(scikit-learn's NearestNeighbors, then a Python loop over points), timed separately.
Both are O(N²·d); scikit-dimension at N = 100 000, d = 768 takes tens of minutes per estimator
on 2 cores, so it runs at --peer-n rows, geomkit at both sizes, and the peer's full-size time is
extrapolated by (N / peer-n)² (a lower bound for TwoNN, whose row sorts grow as N² log N).
Floor: the float32 product X·Xᵀ (in 4 096-row blocks, no selection) at --peer-n; the exact
search needs at least half of it (the product is symmetric).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_child, time_command  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, write_section  # noqa: E402

GEOMKIT = str(Path(sys.executable).parent / "geomkit")


def make_data(n: int, dim: int, path: str, seed: int = 0) -> None:
    """16-d Gaussian through a random tanh layer into R^dim, plus noise 0.01; float32 HDF5."""
    import h5py

    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((16, dim)) / 4).astype(np.float32)
    with h5py.File(path, "w") as f:
        dset = f.create_dataset("embeddings", (n, dim), dtype=np.float32)
        for a in range(0, n, 50_000):
            b = min(n, a + 50_000)
            z = rng.standard_normal((b - a, 16)).astype(np.float32)
            dset[a:b] = np.tanh(z @ w) + 0.01 * rng.standard_normal((b - a, dim),
                                                                   dtype=np.float32)


SKDIM = r"""
import json, time, warnings
import h5py, numpy as np
import skdim, sklearn.neighbors
warnings.simplefilter("ignore")
with h5py.File({path!r}) as f:
    x = f["embeddings"][0:f["embeddings"].shape[0]]
out = {{}}
t = time.perf_counter()
out["twonn"] = float(skdim.id.TwoNN().fit(x).dimension_)
out["twonn_seconds"] = time.perf_counter() - t
t = time.perf_counter()
out["mle"] = float(skdim.id.MLE().fit(x, n_neighbors={k}).dimension_)
out["mle_seconds"] = time.perf_counter() - t
print(json.dumps(out))
"""

FLOOR = r"""
import json, time, h5py, numpy as np, torch
with h5py.File({path!r}) as f:
    x = torch.from_numpy(f["embeddings"][0:f["embeddings"].shape[0]])
t = time.perf_counter()
for a in range(0, x.shape[0], 4096):
    _ = x[a:a + 4096] @ x.T
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def geomkit_run(path: str, k: int, name: str) -> dict:
    out, seconds, rss = time_command([GEOMKIT, "intdim", path, "-k", str(k), "--estimators",
                                      "twonn,mle", "--json", "--quiet"], name)
    values = json.loads(out)
    return {"twonn": values["twonn"], "mle": values["mle"], "seconds": seconds, "rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--peer-n", type=int, default=20_000,
                    help="rows scikit-dimension runs on (and geomkit too, side by side)")
    add_record_args(ap)
    args = ap.parse_args()
    checks = Checks()
    if args.smoke:
        args.n, args.dim, args.peer_n = 4000, 64, 3000
    try:
        import skdim  # noqa: F401
        have_peer = True
    except ImportError:
        have_peer = False
        checks.skip("scikit-dimension is not installed (pip install scikit-dimension==0.5.0)")
    tmp = Path("/tmp") / f"geomkit_intdim_bench_{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    small, full = str(tmp / "peer.h5"), str(tmp / "full.h5")
    try:
        make_data(args.peer_n, args.dim, small)
        ours_small = geomkit_run(small, args.k, "intdim_small")
        print(f"geomkit N={args.peer_n}: {ours_small}", flush=True)
        floor = json.loads(run_child(FLOOR.format(path=small), "intdim_floor")[0])["seconds"]
        print(f"X.X^T float32 N={args.peer_n}: {floor:.2f} s", flush=True)
        peer = None
        if have_peer:
            text, peer_rss = run_child(SKDIM.format(path=small, k=args.k), "intdim_skdim")
            peer = json.loads(text.strip().splitlines()[-1])
            peer["rss"] = peer_rss
            print(f"scikit-dimension N={args.peer_n}: {peer}", flush=True)
            for key in ("twonn", "mle"):
                rel = abs(ours_small[key] - peer[key]) / abs(peer[key])
                checks(rel < 1e-6, f"{key}: geomkit {ours_small[key]:.10g} vs scikit-dimension "
                                   f"{peer[key]:.10g} (rel {rel:.1e} < 1e-6)")
        ours_full = None
        if args.n > args.peer_n:
            make_data(args.n, args.dim, full)
            ours_full = geomkit_run(full, args.k, "intdim_full")
            print(f"geomkit N={args.n}: {ours_full}", flush=True)
        checks(abs(ours_small["twonn"] - 16) < 8, "TwoNN within 8 of the manifold's 16 dimensions")
    finally:
        for p in (small, full):
            if os.path.exists(p):
                os.remove(p)
        tmp.rmdir()
    if args.markdown:
        write_section(args.markdown, markdown(args, ours_small, ours_full, peer, floor))
    checks.exit()


def markdown(args, small: dict, full: dict | None, peer: dict | None, floor: float) -> str:
    lines = [
        f"## intdim — `benchmarks/intdim.py` (N = {count(args.n)}, d = {args.dim}, k = {args.k}, "
        "float32, TwoNN + MLE)",
        "",
        f"{machine()}. Data: a 16-d Gaussian through a random tanh layer into R^{args.dim} plus "
        "noise 0.01 (float32 HDF5). geomkit: the whole command `geomkit intdim FILE --estimators "
        "twonn,mle` in a fresh process (imports, read, one exact euclidean kNN graph for both "
        "estimators, exact float64 neighbour distances), its peak RSS. scikit-dimension 0.5.0 in "
        "its own fresh process on the same rows, data loaded before the clocks: `TwoNN().fit(X)` "
        "and `MLE().fit(X, n_neighbors=20)` timed separately. Both are O(N²·d); scikit-dimension "
        f"runs at N = {count(args.peer_n)} (at {count(args.n)} it needs tens of minutes per "
        "estimator on this machine), its full-size time is extrapolated by (N / n)².",
        "",
        "| rows | geomkit TwoNN + MLE | peak RSS | scikit-dimension TwoNN | scikit-dimension MLE | "
        "TwoNN + MLE | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    if peer:
        both = peer["twonn_seconds"] + peer["mle_seconds"]
        lines.append(
            f"| {count(args.peer_n)} (measured) | {secs(small['seconds'])} | {mib(small['rss'])} | "
            f"{secs(peer['twonn_seconds'])} | {secs(peer['mle_seconds'])} | {secs(both)} | "
            f"**{ratio(both / small['seconds'])}** (TwoNN {ratio(peer['twonn_seconds'] / small['seconds'])}, "
            f"MLE {ratio(peer['mle_seconds'] / small['seconds'])}) |")
        if full:
            scale = (args.n / args.peer_n) ** 2
            lines.append(
                f"| {count(args.n)} (geomkit measured, peer × {scale:.0f} extrapolated) | "
                f"{secs(full['seconds'])} | {mib(full['rss'])} | ≥ {secs(peer['twonn_seconds'] * scale)} | "
                f"≈ {secs(peer['mle_seconds'] * scale)} | ≈ {secs(both * scale)} | "
                f"≈ {ratio(both * scale / full['seconds'])} |")
        lines += [
            "",
            f"- Same values: TwoNN {small['twonn']:.10g} vs {peer['twonn']:.10g}, MLE "
            f"{small['mle']:.10g} vs {peer['mle']:.10g} at N = {count(args.peer_n)} (checked to "
            "1e-6 relative; the oracle tests pin float64 data to 1e-9).",
        ]
    elif full:
        lines.append(f"| {count(args.n)} | {secs(full['seconds'])} | {mib(full['rss'])} | "
                     "not installed | | | |")
    half = floor / 2
    lines += [
        f"- Floor: the float32 product X·Xᵀ at N = {count(args.peer_n)} takes {secs(floor)} "
        f"({2 * args.peer_n ** 2 * args.dim / floor / 1e9:.0f} GFLOP/s); the exact search needs at "
        f"least half of it ({secs(half)}), so geomkit's whole command runs at "
        f"{ratio(small['seconds'] / half)} of that floor"
        + (f"; at N = {count(args.n)} the half product is ≈ {secs(half * (args.n / args.peer_n) ** 2)}"
           f" (extrapolated), geomkit {ratio(full['seconds'] / (half * (args.n / args.peer_n) ** 2))} of it"
           if full else "") + ".",
        "- Where the time goes: geomkit = the exact kNN engine (geomkit/engine/knn.py; euclidean "
        "scores, torch top-k merges) plus O(N·k·d) exact distances; GRIDE and lPCA reuse the same "
        "graph and one moments pass (a few seconds more). scikit-dimension's TwoNN sorts every full "
        "row of the distance matrix (N² log N) and its MLE runs scikit-learn's brute kNN with "
        "float64 products, then a Python loop per point; running both recomputes all distances "
        "twice.",
        "- The ≥ 10× target: compare the speed-up column with 10×; both sides are bound by the "
        "same O(N²·d) product on this CPU, so the ratio against the MLE alone is what the kNN "
        "engine's distance to its product floor allows. Past ~1 M rows the approximate kNN "
        "engine (geomkit/engine/ann.py) is the path (not wired into intdim yet).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
