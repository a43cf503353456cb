"""Isotropy on a dump larger than the block budget: time and peak memory against the physical floor.

    python benchmarks/isotropy.py [--rows 700000] [--dim 768] [--repeat 3] [--path /tmp/geomkit_bench_iso.h5]
                                  [--smoke] [--markdown PATH]

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
  norms     the whole `geomkit norms` command, against the read
  reference PyPI IsoScore 1.0 on the in-memory array (IsoScore only)
The file is deleted at the end unless --keep. Reading is from the page cache (warm): after the
write the file is synced and read once untimed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_child  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, write_section  # noqa: E402

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
import json
print(json.dumps({"isoscore": json.loads(out.stdout)["isoscore"]}))
""",
    "norms": """
import subprocess, sys, time, os
exe = os.path.join(os.path.dirname(sys.executable), "geomkit")
t = time.perf_counter()
out = subprocess.run([exe, "norms", PATH, "--json", "-q"], capture_output=True, text=True, check=True)
print(time.perf_counter() - t)
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
print(repr(float(score)))
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


LABELS = {
    "read": "plain h5py read, 32 768-row blocks (page cache)",
    "read_stream": "plain h5py read, geomkit's streaming block",
    "xtx": "numpy XᵀX on the data in memory (float32): **the compute floor**",
    "pass1": "geomkit isotropy pass 1 (mean, covariance, norms, Σx̂, Σx; one pass)",
    "rowstats": "geomkit O(N·d) parts of pass 1 alone (norms, Σx̂ → avg cosine, mean-norm ratio)",
    "conformity": "geomkit conformity alone (x̂_i·m̄ needs m̄: a second pass, with the first pass's norms)",
    "full": "whole `geomkit isotropy` command (pass 1 + partition/conformity pass 2 + exact "
            "uniformity on 10k rows)",
    "norms": "whole `geomkit norms` command",
    "reference": "PyPI IsoScore 1.0 on the in-memory array (IsoScore only)",
}


def markdown(args, results: dict, summary: dict, step: int) -> str:
    gib = summary["file_gib"]
    read_key = "read" if results["read"]["seconds"] <= results["read_stream"]["seconds"] else "read_stream"
    lines = [
        f"## isotropy — `benchmarks/isotropy.py --repeat {args.repeat}` ({count(args.rows)} × "
        f"{args.dim} float32, {gib:.1f} GiB, chunks of 4 096 rows)",
        "",
        f"{machine()}. Each step runs in its own process (peak RSS per process); the steps are "
        f"interleaved {args.repeat} time(s) and the medians compared, because this machine's speed "
        "drifts within minutes. The new file is synced and read once, untimed, before the first "
        "step (reads come from the page cache). The read floor is the faster of the two plain "
        "reads; the floor of pass 1 is max(read, XᵀX).",
        "",
        "| measurement | median | runs (s) | peak RSS |",
        "|---|---|---|---|",
    ]
    for name in ("read", "read_stream", "xtx", "pass1", "rowstats", "conformity", "full", "norms",
                 "reference"):
        if name not in results:
            continue
        r = results[name]
        label = LABELS[name]
        if name == "read_stream":
            label += f" ({count(step)} rows)"
        if name == read_key:
            label += ": **the read floor**"
        runs = " / ".join(f"{v:.3f}" for v in r.get("runs", [r["seconds"]]))
        lines.append(f"| {label} | {secs(r['seconds'])} | {runs} | {mib(r['peak_rss_mib'])} |")
    s = summary
    lines += [
        "",
        f"- Pass 1 / max(read, XᵀX) = **{s['pass1_over_floor']:.2f}×** (per run "
        f"{' / '.join(f'{v:.2f}' for v in s['pass1_over_floor_per_run'])}; target ≤ 1.5×: "
        f"{'met' if s['pass1_over_floor'] <= 1.5 else 'not met'}) at "
        f"{mib(results['pass1']['peak_rss_mib'])} peak RSS (target < 1 GB). Pass 1 is one syrk "
        "per gathered buffer of centred blocks (the XᵀX floor) plus the row sums; the read is a "
        "memcpy-speed copy from the page cache.",
        f"- Pass 1's O(N·d) parts / read = **{s['rowstats_over_read']:.2f}×** (per run "
        f"{' / '.join(f'{v:.2f}' for v in s['rowstats_over_read_per_run'])}; target ≤ 1.5×: "
        f"{'met' if s['rowstats_over_read'] <= 1.5 else 'not met'}): the "
        "read plus one numpy sweep per block for the squared norms, Σx and Σx̂ "
        "(`geomkit/engine/rows.py`; the compiled kernel was removed, see the kernel section).",
        f"- Conformity / read = **{s['conformity_over_read']:.2f}×**: the second pass reads through "
        "the low-level hyperslab read into a reused buffer, does one matrix-vector product per "
        "block and takes its norms from pass 1.",
        f"- The whole command costs **{s['full_over_floor']:.1f}×** the floor: pass 2 projects "
        "every row on all d eigenvectors (a full N·d² product, twice the flops of the symmetric "
        "XᵀX) for partition isotropy; the exact uniformity on a 10 000-row sample comes on top.",
    ]
    lines.append(
        f"- The whole `geomkit norms` command: {secs(results['norms']['seconds'])}, "
        f"{ratio(s['norms_over_read'])} the read floor, at {mib(results['norms']['peak_rss_mib'])} "
        "(target < 1 GB); the difference to the read is the norm statistics, any further pass "
        "the command makes (docs/norms.md), and a process start with its imports.")
    if "reference" in results:
        ref, full = results["reference"], results["full"]
        lines.append(
            f"- Against the reference: IsoScore 1.0 takes {secs(ref['seconds'])} for IsoScore "
            f"alone, **{ratio(s['reference_over_full'])}** the time geomkit needs for all the "
            f"measures ({secs(full['seconds'])}), and {ratio(ref['peak_rss_mib'] / full['peak_rss_mib'])} "
            f"the memory ({mib(ref['peak_rss_mib'])}). geomkit's IsoScore "
            f"{s['geomkit_isoscore']:.10f} against the reference's {s['reference_isoscore']:.10f} "
            f"(difference {abs(s['geomkit_isoscore'] - s['reference_isoscore']):.1e}; the reference "
            "runs in float64 through PCA on the float32 data).")
    else:
        lines.append("- The reference (PyPI IsoScore 1.0) was not run (`--skip-reference` or not "
                     "installed).")
    lines += [
        "- Tried and not kept (#6, #12): a compiled C row-sweep kernel (whole commands at most "
        "1.07× faster, below the 1.3× rule: removed); sweeping each block on a second thread while "
        "the next is read (1.65× in two of six runs when the other core was busy); Numba (0.47 s "
        "import and cache load per process); memory-mapping the chunks (page faults cost as much "
        "as the copy); `os.preadv` reads of plain datasets (within the noise); blocks of 512–8192 "
        "rows (4096, the chunk, is best).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=700_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--path", default="/tmp/geomkit_bench_iso.h5")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each step this many times (interleaved); medians are compared")
    add_record_args(ap)
    args = ap.parse_args()
    checks = Checks()
    if args.smoke:
        args.rows, args.dim, args.repeat = 20_000, 64, 1
        args.path = f"/tmp/geomkit_bench_iso_smoke_{os.getpid()}.h5"
    reference = not args.skip_reference
    if reference:
        try:
            import IsoScore  # noqa: F401
        except ImportError:
            reference = False
            print("skip: the reference package IsoScore is not installed "
                  "(pip install IsoScore==1.0)", flush=True)
    t = time.perf_counter()
    generate(args.path, args.rows, args.dim)
    size = os.path.getsize(args.path) / 2**30
    print(f"generated {args.rows} x {args.dim} float32 ({size:.2f} GiB) in {time.perf_counter() - t:.1f} s",
          flush=True)
    try:
        # the new file's dirty pages are written back in the background for a while: flush them
        # and read the file once, untimed, so that no step competes with the writeback
        os.sync()
        run_child_rss("read", args.path)
        names = ["read", "read_stream", "rowstats", "conformity", "pass1", "full", "norms", "xtx"]
        runs = {name: [] for name in names}
        results = {}
        step = 0
        for rep in range(args.repeat):  # interleaved, so that a slow spell of the machine hits all
            for name in names:
                seconds, rss, extra = run_child_rss(name, args.path)
                runs[name].append(seconds)
                results[name] = {"seconds": round(float(np.median(runs[name])), 4),
                                 "runs": [round(v, 3) for v in runs[name]], "peak_rss_mib": round(rss)}
                if extra:
                    results[name]["output"] = extra[:400]
                if name == "read_stream":
                    step = int(extra)
                print(rep, name, results[name], flush=True)
        if reference:
            seconds, rss, extra = run_child_rss("reference", args.path)
            results["reference"] = {"seconds": round(seconds, 4), "peak_rss_mib": round(rss),
                                    "output": extra[:400]}
            print("reference", results["reference"], flush=True)
    finally:
        if not args.keep:
            os.remove(args.path)
    read = min(results["read"]["seconds"], results["read_stream"]["seconds"])
    floor = max(read, results["xtx"]["seconds"], 1e-9)
    summary = {
        "rows": args.rows, "dim": args.dim, "file_gib": round(size, 2), "threads": os.cpu_count(),
        "repeat": args.repeat, "read_floor_seconds": read,
        "pass1_over_floor": round(results["pass1"]["seconds"] / floor, 2),
        "full_over_floor": round(results["full"]["seconds"] / floor, 2),
        "rowstats_over_read": round(results["rowstats"]["seconds"] / read, 2),
        "norms_over_read": round(results["norms"]["seconds"] / read, 2),
        "conformity_over_read": round(results["conformity"]["seconds"] / read, 2),
        "pass1_over_floor_per_run": [round(p / max(min(r1, r2), x), 2) for p, r1, r2, x in zip(
            runs["pass1"], runs["read"], runs["read_stream"], runs["xtx"])],
        "rowstats_over_read_per_run": [round(p / min(r1, r2), 2) for p, r1, r2 in zip(
            runs["rowstats"], runs["read"], runs["read_stream"])],
        "geomkit_isoscore": json.loads(results["full"]["output"])["isoscore"],
    }
    if "reference" in results:
        summary["reference_over_full"] = round(results["reference"]["seconds"] / results["full"]["seconds"], 2)
        summary["reference_isoscore"] = float(results["reference"]["output"])
        diff = abs(summary["geomkit_isoscore"] - summary["reference_isoscore"])
        checks(diff < 1e-7, f"IsoScore equals IsoScore 1.0 (|difference| = {diff:.1e} < 1e-7)")
    else:
        checks.skip("IsoScore against IsoScore 1.0 (the package is not installed)")
    checks(0.0 <= summary["geomkit_isoscore"] <= 1.0, "IsoScore within [0, 1]")
    print(json.dumps({"results": results, "summary": summary}, indent=2))
    write_section(args.markdown, markdown(args, results, summary, step))
    checks.exit()


if __name__ == "__main__":
    main()
