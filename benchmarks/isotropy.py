"""Isotropy on a dump larger than the block budget: time and peak memory against the physical floor.

    python benchmarks/isotropy.py [--rows 700000] [--dim 768] [--path /tmp/geomkit_bench_iso.h5]

Generates an anisotropic float32 dump (default 700k × 768 ≈ 2.15 GB) in /tmp, then measures, each
in its own process (peak RSS per process):
  read      plain h5py read of the whole file in 32768-row blocks, and (read_stream) in
            geomkit's streaming block size; the faster of the two is the I/O floor
  xtx       numpy XᵀX (float32) on the same data in memory (the compute floor)
  pass1     geomkit's isotropy pass: mean, covariance, norms, Σx̂ in one streaming pass
  rowstats  geomkit's O(N·d) parts alone: norms, Σx̂ → avg cosine, mean-norm ratio
  conformity  the per-item conformity x̂_i·m̄ alone (it needs m̄, so a second pass; the norms
            come from the first, untimed)
  full      the whole `geomkit isotropy` command (pass 1, the partition/conformity pass 2,
            exact uniformity on a 10k-row sample)
  reference PyPI IsoScore 1.0 on the in-memory array (IsoScore only)
The file is deleted at the end unless --keep. Reading is from the page cache (warm): after the
write the file is synced and read once untimed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from _child import run_child

CHILD = {
    "read": """
import h5py, time
t = time.perf_counter()
with h5py.File(PATH, "r") as f:
    d = f["embeddings"]
    for a in range(0, d.shape[0], 32768):
        x = d[a:a + 32768]
print(time.perf_counter() - t)
""",
    "read_stream": """
import h5py, time
from geomkit import open_source
with open_source(PATH) as s:
    step = s.stream_block_rows()
t = time.perf_counter()
with h5py.File(PATH, "r") as f:
    d = f["embeddings"]
    for a in range(0, d.shape[0], step):
        x = d[a:a + step]
print(time.perf_counter() - t)
print(step)
""",
    "xtx": """
import h5py, numpy as np, time
with h5py.File(PATH, "r") as f:
    d = f["embeddings"]
    x = np.empty(d.shape, dtype=np.float32)
    d.read_direct(x)
t = time.perf_counter()
g = x.T @ x
print(time.perf_counter() - t)
""",
    "pass1": """
import time
from geomkit import open_source
from geomkit.engine import MomentAccumulator, RowStatAccumulator, run_pass
t = time.perf_counter()
with open_source(PATH) as s:
    run_pass(s, MomentAccumulator(), RowStatAccumulator())
print(time.perf_counter() - t)
""",
    "rowstats": """
import time
from geomkit import open_source
from geomkit.engine import streaming_row_stats
t = time.perf_counter()
with open_source(PATH) as s:
    streaming_row_stats(s)
print(time.perf_counter() - t)
""",
    "conformity": """
import time
from geomkit import open_source
from geomkit.analysis.isotropy import ConformityAccumulator
from geomkit.engine import run_pass, streaming_row_stats
with open_source(PATH) as s:
    stats = streaming_row_stats(s)  # pass 1 (not timed): m̄ and the norms
    t = time.perf_counter()
    run_pass(s, ConformityAccumulator(stats.mean_unit, known=(stats.rows, stats.norms)))
print(time.perf_counter() - t)
""",
    "full": """
import subprocess, sys, time, os
exe = os.path.join(os.path.dirname(sys.executable), "geomkit")
t = time.perf_counter()
out = subprocess.run([exe, "isotropy", PATH, "--json", "-q"], capture_output=True, text=True, check=True)
print(time.perf_counter() - t)
print(out.stdout.replace("\\n", " "))
""",
    "reference": """
import h5py, numpy as np, time
from IsoScore import IsoScore
with h5py.File(PATH, "r") as f:
    d = f["embeddings"]
    x = np.empty(d.shape, dtype=np.float32)
    d.read_direct(x)
t = time.perf_counter()
score = IsoScore.IsoScore(x.T.astype(np.float64))  # v1.0 takes (dims, points)
print(time.perf_counter() - t)
print(float(score))
""",
}


def run_child_rss(name: str, path: str) -> tuple[float, float, str]:
    out, rss = run_child(f"PATH = {path!r}\n" + CHILD[name], name)
    lines = out.strip().splitlines()
    return float(lines[0]), rss, " ".join(lines[1:])


def generate(path: str, rows: int, dim: int) -> None:
    import h5py
    rng = np.random.default_rng(0)
    scales = np.geomspace(10.0, 0.1, dim).astype(np.float32)
    q = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    offset = rng.standard_normal(dim).astype(np.float32)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("embeddings", shape=(rows, dim), dtype="f4", chunks=(4096, dim))
        for a in range(0, rows, 65536):
            b = min(rows, a + 65536)
            x = rng.standard_normal((b - a, dim), dtype=np.float32) * scales
            d[a:b] = x @ q + offset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=700_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--path", default="/tmp/geomkit_bench_iso.h5")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each step this many times (interleaved); medians are compared")
    args = ap.parse_args()
    t = time.perf_counter()
    generate(args.path, args.rows, args.dim)
    size = os.path.getsize(args.path) / 2**30
    print(f"generated {args.rows} x {args.dim} float32 ({size:.2f} GiB) in {time.perf_counter() - t:.1f} s",
          flush=True)
    # the new file's dirty pages are written back in the background for a while: flush them
    # and read the file once, untimed, so that no step competes with the writeback
    os.sync()
    run_child_rss("read", args.path)
    names = ["read", "read_stream", "rowstats", "conformity", "pass1", "full", "xtx"]
    runs = {name: [] for name in names}
    results = {}
    for rep in range(args.repeat):  # interleaved, so that a slow spell of the machine hits all
        for name in names:
            seconds, rss, extra = run_child_rss(name, args.path)
            runs[name].append(seconds)
            results[name] = {"seconds": round(float(np.median(runs[name])), 4),
                             "runs": [round(v, 3) for v in runs[name]], "peak_rss_mib": round(rss)}
            if extra:
                results[name]["output"] = extra[:400]
            print(rep, name, results[name], flush=True)
    if not args.skip_reference:
        seconds, rss, extra = run_child_rss("reference", args.path)
        results["reference"] = {"seconds": round(seconds, 4), "peak_rss_mib": round(rss),
                                "output": extra[:400]}
        print("reference", results["reference"], flush=True)
    read = min(results["read"]["seconds"], results["read_stream"]["seconds"])
    floor = max(read, results["xtx"]["seconds"], 1e-9)
    summary = {
        "rows": args.rows, "dim": args.dim, "file_gib": round(size, 2), "threads": os.cpu_count(),
        "repeat": args.repeat, "read_floor_seconds": read,
        "pass1_over_floor": round(results["pass1"]["seconds"] / floor, 2),
        "full_over_floor": round(results["full"]["seconds"] / floor, 2),
        "rowstats_over_read": round(results["rowstats"]["seconds"] / read, 2),
        "conformity_over_read": round(results["conformity"]["seconds"] / read, 2),
        "pass1_over_floor_per_run": [round(p / max(min(r1, r2), x), 2) for p, r1, r2, x in zip(
            runs["pass1"], runs["read"], runs["read_stream"], runs["xtx"])],
        "rowstats_over_read_per_run": [round(p / min(r1, r2), 2) for p, r1, r2 in zip(
            runs["rowstats"], runs["read"], runs["read_stream"])],
    }
    if "reference" in results:
        summary["reference_over_full"] = round(results["reference"]["seconds"] / results["full"]["seconds"], 2)
    print(json.dumps({"results": results, "summary": summary}, indent=2))
    if not args.keep:
        os.remove(args.path)


if __name__ == "__main__":
    main()
