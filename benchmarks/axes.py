"""`geomkit axes score` on 100 000 x 768 float32 (5 folds, 1000-direction null): whole command.

    python benchmarks/axes.py [--rows 100000] [--dim 768] [--keep PATH]

Generates a seeded dump (a shared offset, an anisotropic gaussian, and a planted attribute along
one direction plus noise: `year`), then times, in one run:

- the whole command as a user runs it (`geomkit axes score F --attribute year --json -q`, its own
  process: imports, reads, the 5-fold ridge fits, the null, the k-NN upper bound on 10 000 items,
  the shots curve), wall time and peak RSS;
- the floor: the null's product alone, (N x d)·(d x 1000) in float32 on unit rows in memory.

Target (issue #13): <= 30 s and < 1 GB peak RSS on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def make(path: str, rows: int, dim: int) -> None:
    import h5py

    rng = np.random.default_rng(0)
    v = rng.standard_normal(dim)
    v /= np.linalg.norm(v)
    scales = np.geomspace(1.0, 0.05, dim)
    offset = rng.standard_normal(dim) * 0.5
    with h5py.File(path, "w") as f:
        d = f.create_dataset("embeddings", (rows, dim), dtype="f4", chunks=(4096, dim))
        year = np.empty(rows)
        for a in range(0, rows, 20000):
            b = min(rows, a + 20000)
            t = rng.uniform(1900, 2020, b - a)
            x = offset + rng.standard_normal((b - a, dim)) * scales + np.outer((t - 1960) / 60, v)
            d[a:b] = x.astype("f4")
            year[a:b] = t
        f["year"] = year


def floor(rows: int, dim: int) -> float:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, dim)).astype("f4")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    r = rng.standard_normal((dim, 1000)).astype("f4")
    start = time.perf_counter()
    for a in range(0, 1000, 100):
        x @ r[:, a:a + 100]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--keep")
    args = ap.parse_args()
    folder = tempfile.mkdtemp()
    path = args.keep or os.path.join(folder, "axes.h5")
    if not os.path.exists(path):
        make(path, args.rows, args.dim)
    exe = os.path.join(os.path.dirname(sys.executable), "geomkit")
    subprocess.run([exe, "info", path, "--scan", "-q", "--json"], check=True,
                   capture_output=True)  # page cache warm
    start = time.perf_counter()
    proc = subprocess.run([exe, "axes", "score", path, "--attribute", "year", "--json", "-q"],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out = json.loads(proc.stdout)
    product = floor(args.rows, args.dim)
    print(json.dumps({"rows": args.rows, "dim": args.dim, "wall_s": round(wall, 2),
                      "peak_rss_mb": round(peak), "null_product_s": round(product, 2),
                      "ratio_to_product": round(wall / product, 1),
                      "spearman": round(out["spearman"], 4),
                      "null_p95": round(out["random_null"]["p95"], 4)}, indent=2))
    if not args.keep:
        os.remove(path)


if __name__ == "__main__":
    main()
