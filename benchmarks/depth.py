"""Depth: geomkit against the reference package tte-depth 1.0.0, and spatial depth at scale.

    python benchmarks/depth.py [--n 5000] [--m 4999] [--dim 384] [--spatial-n 50000] [--skip-package]

1. Cosine TTE depth + rank-sum test, N = 5000 REF vs M = 4999 TEST items (M ≠ N avoids the
   package's wrong equal-size path), d = 384: wall time of `tte_depth.StatDepth().depth_rank_test`
   (full distance matrices built in Python loops) vs `geomkit.analysis.depth.compute_depth` reading
   the same data from HDF5; the largest absolute difference between the two sets of depths.
2. Spatial depth, N = M = 50 000, d = 384, float32, in a child process: wall time and peak RSS (the
   blockwise engine keeps memory bounded by --memory, default 256 MB of blocks).
Data is generated in /tmp and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import h5py
import numpy as np

from _child import run_child


def write(path, x):
    with h5py.File(path, "w") as f:
        f.create_dataset("embeddings", data=x, chunks=(min(4096, len(x)), x.shape[1]))


def corpora(n, m, dim, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(dim) * 0.3
    f = rng.standard_normal((n, dim)) + mean
    g = rng.standard_normal((m, dim)) + mean
    g[:, :8] += 0.3
    return f.astype(dtype), g.astype(dtype)


SPATIAL_CHILD = """
import time, json
from geomkit import open_source
from geomkit.analysis.depth import compute_depth
t = time.perf_counter()
with open_source(REF) as f, open_source(TEST) as g:
    r = compute_depth(f, g, depth="spatial")
print(json.dumps({"seconds": time.perf_counter() - t, "W": r.test["W"], "p": r.test["p"],
                  "q_liu_singh": r.test["q_liu_singh"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--m", type=int, default=4999)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--spatial-n", type=int, default=50_000)
    ap.add_argument("--skip-package", action="store_true")
    args = ap.parse_args()
    from geomkit import open_source
    from geomkit.analysis.depth import compute_depth

    out = {}
    F, G = corpora(args.n, args.m, args.dim)
    write("/tmp/gk_depth_F.h5", F)
    write("/tmp/gk_depth_G.h5", G)
    t = time.perf_counter()
    with open_source("/tmp/gk_depth_F.h5") as f, open_source("/tmp/gk_depth_G.h5") as g:
        ours = compute_depth(f, g)
    out["geomkit_cosine_seconds"] = time.perf_counter() - t
    print("geomkit cosine", out["geomkit_cosine_seconds"], flush=True)
    if not args.skip_package:
        from tte_depth import StatDepth
        t = time.perf_counter()
        depth_f, depth_g, q, w, p = StatDepth("cosine").depth_rank_test(F, G)
        out["package_seconds"] = time.perf_counter() - t
        out["speedup"] = out["package_seconds"] / out["geomkit_cosine_seconds"]
        out["max_abs_depth_difference"] = float(max(np.abs(depth_f - ours.ref_depth).max(),
                                                    np.abs(depth_g - ours.test_depth).max()))
        out["package_W_p_Q"] = [float(w), float(p), float(q)]
        out["geomkit_W_p_Qpackage"] = [ours.test["W"], ours.test["p"], ours.test["q_package"]]
        print("package", out["package_seconds"], flush=True)
    for p in ("/tmp/gk_depth_F.h5", "/tmp/gk_depth_G.h5"):
        os.remove(p)

    if args.spatial_n:
        F, G = corpora(args.spatial_n, args.spatial_n, args.dim, seed=1, dtype=np.float32)
        write("/tmp/gk_depth_SF.h5", F)
        write("/tmp/gk_depth_SG.h5", G)
        del F, G
        code = "REF = '/tmp/gk_depth_SF.h5'\nTEST = '/tmp/gk_depth_SG.h5'\n" + SPATIAL_CHILD
        text, rss = run_child(code, "depth_spatial")
        spatial = json.loads(text)
        spatial["peak_rss_mib"] = rss
        spatial["n"] = spatial["m"] = args.spatial_n
        out["spatial"] = spatial
        for p in ("/tmp/gk_depth_SF.h5", "/tmp/gk_depth_SG.h5"):
            os.remove(p)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
