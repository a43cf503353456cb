"""Does a compiled row-sweep kernel earn its place? Whole commands, with it and with numpy (#12).

    python benchmarks/kernel.py [PATH] [--rows 700000] [--dim 768] [--repeat 3]
                                [--commands isotropy,norms,transform] [--keep] [--json OUT]

Times each command as a user runs it, in its own process (`geomkit isotropy F --json -q`,
`geomkit norms F --json -q`, `geomkit transform F --center -o out.h5 -q`), once per variant per
repeat, the variants alternating so that a slow spell of the machine hits both:

  kernel   the compiled kernel (geomkit/engine/_sweep.c), where the installed geomkit still has
           one and it was built (skipped otherwise, and said so)
  numpy    GEOMKIT_NO_KERNEL=1: the numpy path of geomkit/engine/kernels.py

It reports the median wall time of each and the ratio numpy / kernel. The rule of #12: the kernel
stays only if a whole command is at least 1.3x faster with it.

Before the commands, a per-block measurement in one process (`--no-blocks` skips it): the row
sweep and the centring of one 4096-row block of the file, with the kernel, with numpy as BLAS
threads it by default, and with numpy with BLAS limited to one thread (threadpoolctl) around the
small per-block products. Such a product is a few hundred microseconds of work: splitting it
over threads costs more than it saves, and far more when the other core is busy.

PATH is an HDF5 dump to reuse (dataset `embeddings`); without it one is generated in a temporary
directory: ROWS x DIM float32, rows chunked 4096, seeded; a shared mean offset plus an anisotropic
gaussian (a geometric spectrum of scales, randomly rotated), like a real embedding dump. A
generated file is deleted at the end unless --keep. The file is synced and read once, untimed,
before the first measurement (reads come from the page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

COMMANDS = {
    "isotropy": lambda f, out: ["isotropy", f, "--json", "-q"],
    "norms": lambda f, out: ["norms", f, "--json", "-q"],
    "transform": lambda f, out: ["transform", f, "--center", "-o", out, "-q"],
}

BLOCKS_CHILD = r"""
import json, sys, time
import h5py, numpy as np
from threadpoolctl import ThreadpoolController
from geomkit.engine import kernels

PATH = sys.argv[1]
with h5py.File(PATH, "r") as f:
    x = np.ascontiguousarray(f["embeddings"][:4096])
mean = x.mean(0).astype(x.dtype)
out = np.empty_like(x)
blas = ThreadpoolController()

def best_ms(fn, n=200, rounds=7):
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t) / n * 1e3)
    return round(min(times), 4)

def numpy_sweep_plain(x):  # the numpy path as it was before #12: BLAS threads as they come
    vecdot = getattr(np, "vecdot", None)
    sq = vecdot(x, x) if vecdot is not None else np.einsum("ij,ij->i", x, x)
    inv = (1.0 / np.sqrt(sq.astype(np.float64))).astype(x.dtype)
    ones = np.ones(x.shape[0], dtype=x.dtype)
    return sq, ones @ x, inv @ x

def numpy_sweep_one_thread(x):
    with blas.limit(limits=1, user_api="blas"):
        return numpy_sweep_plain(x)

res = {"blas": [{k: i.get(k) for k in ("internal_api", "num_threads", "version")}
                for i in blas.info() if i.get("user_api") == "blas"]}
available = getattr(kernels, "kernel_available", lambda: False)()
res["kernel_available"] = available
if available:
    res["sweep_kernel_ms"] = best_ms(lambda: kernels.row_sweep(x))
    res["centre_kernel_ms"] = best_ms(lambda: kernels.centre(x, mean, out))
    kernels._kernel = False  # from here on: the numpy path of this geomkit
res["sweep_geomkit_numpy_ms"] = best_ms(lambda: kernels.row_sweep(x))
res["centre_geomkit_numpy_ms"] = best_ms(lambda: kernels.centre(x, mean, out))
res["sweep_numpy_blas_default_ms"] = best_ms(lambda: numpy_sweep_plain(x))
res["sweep_numpy_blas_1_thread_ms"] = best_ms(lambda: numpy_sweep_one_thread(x))
res["centre_numpy_subtract_ms"] = best_ms(lambda: np.subtract(x, mean, out=out))
res["blas_limit_enter_exit_ms"] = best_ms(
    lambda: blas.limit(limits=1, user_api="blas").__exit__(None, None, None))
print(json.dumps(res))
"""


def generate(path: str, rows: int, dim: int, seed: int = 0) -> None:
    """A realistic dump: x = offset + (z * scales) @ Q, z ~ N(0, 1), a geometric spectrum of
    scales (10 → 0.1) rotated by a random orthogonal Q, and a shared mean offset."""
    import h5py
    rng = np.random.default_rng(seed)
    scales = np.geomspace(10.0, 0.1, dim).astype(np.float32)
    q = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    offset = (rng.standard_normal(dim) * 2.0).astype(np.float32)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("embeddings", shape=(rows, dim), dtype="f4",
                             chunks=(min(4096, rows), dim))
        for a in range(0, rows, 65536):
            b = min(rows, a + 65536)
            z = rng.standard_normal((b - a, dim), dtype=np.float32) * scales
            d[a:b] = z @ q + offset


def warm(path: str) -> None:
    """Flush the new file's dirty pages and read it once, so that no timed run competes with the
    writeback or reads from disk."""
    os.sync()
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def installed_kernel_available() -> bool:
    code = ("from geomkit.engine import kernels; "
            "print(int(getattr(kernels, 'kernel_available', lambda: False)()))")
    env = {k: v for k, v in os.environ.items() if k != "GEOMKIT_NO_KERNEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return out.stdout.strip() == "1"


def run_command(exe: str, argv: list[str], no_kernel: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the command's process)."""
    env = {k: v for k, v in os.environ.items() if k != "GEOMKIT_NO_KERNEL"}
    if no_kernel:
        env["GEOMKIT_NO_KERNEL"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([exe, *argv], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"geomkit {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", nargs="?", help="an HDF5 dump to reuse (dataset `embeddings`)")
    ap.add_argument("--rows", type=int, default=700_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--commands", default="isotropy,norms,transform")
    ap.add_argument("--no-blocks", action="store_true", help="skip the per-block measurement")
    ap.add_argument("--keep", action="store_true", help="keep a generated file")
    ap.add_argument("--json", dest="json_out", help="also write the results to this file")
    args = ap.parse_args()
    commands = [c for c in args.commands.split(",") if c]
    exe = os.path.join(os.path.dirname(sys.executable), "geomkit")
    tmp = tempfile.mkdtemp(prefix="geomkit_bench_kernel_")
    path = args.path
    generated = path is None
    try:
        if generated:
            path = os.path.join(tmp, "dump.h5")
            t = time.perf_counter()
            generate(path, args.rows, args.dim)
            print(f"generated {args.rows} x {args.dim} float32 "
                  f"({os.path.getsize(path) / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s",
                  flush=True)
        warm(path)
        report: dict = {"file": path, "cpus": os.cpu_count(), "repeat": args.repeat}
        has_kernel = installed_kernel_available()
        report["kernel_available"] = has_kernel
        if not has_kernel:
            print("note: the installed geomkit has no compiled kernel: only the numpy path is "
                  "timed", flush=True)
        if not args.no_blocks:
            out = subprocess.run([sys.executable, "-c", BLOCKS_CHILD, path], capture_output=True,
                                 text=True, check=True)
            report["block_4096_rows"] = json.loads(out.stdout)
            print("per block:", report["block_4096_rows"], flush=True)
        variants = ["kernel", "numpy"] if has_kernel else ["numpy"]
        runs = {c: {v: [] for v in variants} for c in commands}
        cpu = {c: {v: [] for v in variants} for c in commands}
        report["load_average_before"] = [round(v, 2) for v in os.getloadavg()]
        out_h5 = os.path.join(tmp, "out.h5")
        for rep in range(args.repeat):
            for cmd in commands:
                # alternate which variant goes first, so neither always follows the other
                order = variants if rep % 2 == 0 else variants[::-1]
                for v in order:
                    seconds, cpu_s = run_command(exe, COMMANDS[cmd](path, out_h5), v == "numpy")
                    runs[cmd][v].append(seconds)
                    cpu[cmd][v].append(cpu_s)
                    if os.path.exists(out_h5):
                        os.remove(out_h5)
                    print(f"{rep} {cmd:9s} {v:6s} {seconds:7.2f} s wall {cpu_s:7.2f} s CPU  "
                          f"(load {os.getloadavg()[0]:.2f})", flush=True)
        report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        table = {}
        for cmd in commands:
            row = {v: {"median_s": round(float(np.median(runs[cmd][v])), 3),
                       "runs_s": [round(s, 2) for s in runs[cmd][v]],
                       "median_cpu_s": round(float(np.median(cpu[cmd][v])), 3),
                       "cpu_s": [round(s, 2) for s in cpu[cmd][v]]} for v in variants}
            if has_kernel:
                row["numpy_over_kernel"] = round(row["numpy"]["median_s"]
                                                 / row["kernel"]["median_s"], 3)
                row["numpy_over_kernel_per_repeat"] = [
                    round(n / k, 3) for n, k in zip(runs[cmd]["numpy"], runs[cmd]["kernel"])]
                row["numpy_over_kernel_cpu"] = round(row["numpy"]["median_cpu_s"]
                                                     / row["kernel"]["median_cpu_s"], 3)
            table[cmd] = row
        report["commands"] = table
        if has_kernel:
            best = max(r["numpy_over_kernel"] for r in table.values())
            report["best_ratio"] = best
            report["decision"] = ("keep the kernel (a whole command >= 1.3x faster with it)"
                                  if best >= 1.3 else
                                  "drop the kernel (no whole command >= 1.3x faster with it)")
        print(json.dumps(report, indent=2))
        if args.json_out:
            with open(args.json_out, "w") as fh:
                json.dump(report, fh, indent=2)
        print()
        print("| command | kernel: wall (CPU) | numpy: wall (CPU) | numpy / kernel: wall (CPU) |")
        print("|---|---|---|---|")
        for cmd, row in table.items():
            n = row["numpy"]
            if has_kernel:
                k = row["kernel"]
                kcell = f"{k['median_s']:.2f} s ({k['median_cpu_s']:.2f} s)"
                rcell = f"{row['numpy_over_kernel']:.2f}× ({row['numpy_over_kernel_cpu']:.2f}×)"
            else:
                kcell = rcell = "—"
            print(f"| {cmd} | {kcell} | {n['median_s']:.2f} s ({n['median_cpu_s']:.2f} s) | {rcell} |")
    finally:
        if generated and args.keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
