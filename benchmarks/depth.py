"""Depth: geomkit against the reference package tte-depth 1.0.0, and spatial depth at scale.

    python benchmarks/depth.py [--n 5000] [--m 4999] [--dim 384] [--spatial-n 50000] [--skip-package]
                               [--smoke] [--markdown PATH]

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
import sys
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_child  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, write_section  # noqa: E402


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


def markdown(args, out: dict) -> str:
    lines = [
        "## depth — `benchmarks/depth.py` (cosine TTE depth against tte-depth 1.0.0; spatial depth "
        "at scale)",
        "",
        f"{machine()}. Seeded gaussian corpora with a shift in 8 of the d dimensions; M ≠ N avoids "
        "the package's wrong equal-size path. The package builds full distance matrices in Python "
        "loops on the arrays in memory; geomkit reads the same data from HDF5 (its time includes "
        "the reads).",
        "",
        "| measurement | value |",
        "|---|---|",
    ]
    work = f"N = {count(args.n)} vs M = {count(args.m)}, d = {args.dim}"
    if "package_seconds" in out:
        w, p, q = out["package_W_p_Q"]
        gw, gp, gq = out["geomkit_W_p_Qpackage"]
        same = max(abs(w - gw), abs(p - gp), abs(q - gq)) < 1e-9
        lines += [
            f"| cosine TTE depth + rank-sum test, {work}: tte-depth 1.0.0 | "
            f"{secs(out['package_seconds'])} |",
            f"| same with geomkit (from HDF5) | {secs(out['geomkit_cosine_seconds'])} |",
            f"| speed-up | **{ratio(out['speedup'])}** |",
            f"| largest difference between the two sets of depths | "
            f"{out['max_abs_depth_difference']:.1e} |",
            f"| W, p, Q (package's q_score) | {'identical' if same else '**differ**'}: "
            f"{gw:.4f}, {gp:.4f}, {gq:.5f} (package {w:.4f}, {p:.4f}, {q:.5f}) |",
        ]
    else:
        lines.append(f"| cosine TTE depth + rank-sum test, {work}: geomkit (from HDF5); tte-depth "
                     f"not run | {secs(out['geomkit_cosine_seconds'])} |")
    if "spatial" in out:
        sp = out["spatial"]
        pairs = 2 * sp["n"] * sp["m"]
        lines += [
            f"| spatial depth, N = M = {count(sp['n'])}, d = {args.dim}, float32: time | "
            f"{secs(sp['seconds'])} (REF×REF and TEST×REF, {count(pairs)} pairs; "
            f"{pairs * args.dim * 2 / sp['seconds'] / 1e9:.0f} GFLOP/s of pair products) |",
            f"| spatial depth peak RSS | {mib(sp['peak_rss_mib'])} (bounded by `--memory` blocks; "
            f"the data alone is {mib(2 * sp['n'] * args.dim * 4 / 2**20)}) |",
        ]
    lines += ["", "The floor of spatial depth is its pair products (two N·M·d products): the "
              "GFLOP/s above compares with the machine's float32 GEMM rate (the hubness section's "
              "X·Xᵀ)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--m", type=int, default=4999)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--spatial-n", type=int, default=50_000)
    ap.add_argument("--skip-package", action="store_true")
    add_record_args(ap)
    args = ap.parse_args()
    checks = Checks()
    if args.smoke:
        args.n, args.m, args.dim, args.spatial_n = 300, 299, 32, 2000
    package = not args.skip_package
    if package:
        try:
            import tte_depth  # noqa: F401
        except ImportError:
            package = False
            print("skip: the reference package tte-depth is not installed "
                  "(pip install tte-depth==1.0.0)", flush=True)
    from geomkit import open_source
    from geomkit.analysis.depth import compute_depth

    tag = f"{os.getpid()}"
    paths = {k: f"/tmp/gk_depth_{k}_{tag}.h5" for k in ("F", "G", "SF", "SG")}
    out = {}
    F, G = corpora(args.n, args.m, args.dim)
    write(paths["F"], F)
    write(paths["G"], G)
    t = time.perf_counter()
    with open_source(paths["F"]) as f, open_source(paths["G"]) as g:
        ours = compute_depth(f, g)
    out["geomkit_cosine_seconds"] = time.perf_counter() - t
    print("geomkit cosine", out["geomkit_cosine_seconds"], flush=True)
    if package:
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
        checks(out["max_abs_depth_difference"] < 1e-9,
               f"depths equal tte-depth's (max |difference| {out['max_abs_depth_difference']:.1e})")
        for name, a, b in zip(("W", "p", "Q"), out["package_W_p_Q"], out["geomkit_W_p_Qpackage"]):
            checks(abs(a - b) <= 1e-9 * max(1.0, abs(a)), f"{name} equals tte-depth's ({b} vs {a})")
    else:
        checks.skip("depths against tte-depth (not installed)")
    for k in ("F", "G"):
        os.remove(paths[k])

    if args.spatial_n:
        F, G = corpora(args.spatial_n, args.spatial_n, args.dim, seed=1, dtype=np.float32)
        write(paths["SF"], F)
        write(paths["SG"], G)
        del F, G
        code = f"REF = {paths['SF']!r}\nTEST = {paths['SG']!r}\n" + SPATIAL_CHILD
        try:
            text, rss = run_child(code, "depth_spatial")
        finally:
            for k in ("SF", "SG"):
                os.remove(paths[k])
        spatial = json.loads(text)
        spatial["peak_rss_mib"] = rss
        spatial["n"] = spatial["m"] = args.spatial_n
        out["spatial"] = spatial
        checks(0.0 <= spatial["p"] <= 1.0, f"spatial depth test p = {spatial['p']:.3g} in [0, 1]")
    print(json.dumps(out, indent=2))
    write_section(args.markdown, markdown(args, out))
    checks.exit()


if __name__ == "__main__":
    main()
