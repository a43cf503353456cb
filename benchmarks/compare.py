"""`geomkit compare` against the Platonic Representation Hypothesis code, side by side, and at scale.

    python benchmarks/compare.py --platonic PATH/TO/platonic-rep [--rows 20000] [--large 1000000]

PATH is a checkout of github.com/minyoungg/platonic-rep (the benchmark imports its metrics.py
unmodified; torchaudio, which it imports only for edit_distance_knn, is stubbed). Never vendored,
never needed by the tests.

1. N = --rows paired items, 384-d vs 768-d (B = a non-linear function of A plus noise, both rows
   L2-normalised as sentence models output them), float32 HDF5 files:
   - platonic-rep: ``AlignmentMetrics`` cka, unbiased_cka, cknna (topk 10), mutual_knn and
     cycle_knn (topk 10) on the float32 tensors in memory (CPU torch; its file reading is not
     counted), wall time and peak RSS in a fresh process;
   - geomkit: the whole command ``geomkit compare A.h5 B.h5 --pairs rows --json -q`` in its own
     process (imports, reads, all metrics), wall time and peak RSS; the values side by side.
2. --large rows (default 1 000 000), 384 vs 768: the whole command; CKA streams over every pair,
   the k-NN metrics use a seeded sample of 20 000 pairs; peak RSS (target < 2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_child, time_command  # noqa: E402


def make(path_a: str, path_b: str, rows: int, seed: int = 0) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((384, 768)) / np.sqrt(384)
    scales = np.geomspace(1.0, 0.1, 384)
    offset = rng.standard_normal(384) * 0.3
    with h5py.File(path_a, "w") as fa, h5py.File(path_b, "w") as fb:
        da = fa.create_dataset("embeddings", (rows, 384), dtype="f4", chunks=(4096, 384))
        db = fb.create_dataset("embeddings", (rows, 768), dtype="f4", chunks=(4096, 768))
        for s in range(0, rows, 50000):
            m = min(rows, s + 50000) - s
            a = offset + rng.standard_normal((m, 384)) * scales
            b = np.tanh(a @ mix) + 0.3 * rng.standard_normal((m, 768)) / np.sqrt(768) * 8
            da[s:s + m] = (a / np.linalg.norm(a, axis=1, keepdims=True)).astype("f4")
            db[s:s + m] = (b / np.linalg.norm(b, axis=1, keepdims=True)).astype("f4")


PLATONIC = r"""
import sys, time, types, json
import numpy as np, torch, h5py
torch.set_num_threads({threads})
stub = types.ModuleType("torchaudio"); stub.functional = types.ModuleType("torchaudio.functional")
sys.modules["torchaudio"] = stub; sys.modules["torchaudio.functional"] = stub.functional
sys.path.insert(0, {path!r})
import io, contextlib
with contextlib.redirect_stdout(io.StringIO()):
    from metrics import AlignmentMetrics as M
with h5py.File({a!r}) as f: A = torch.from_numpy(f["embeddings"][:])
with h5py.File({b!r}) as f: B = torch.from_numpy(f["embeddings"][:])
out = {{}}
t0 = time.perf_counter()
out["cka_linear"] = float(M.cka(A, B))
out["cka_unbiased"] = float(M.unbiased_cka(A, B))
out["cknna"] = float(M.cknna(A, B, topk=10))
out["mutual_knn"] = float(M.mutual_knn(A, B, topk=10))
out["cycle_knn"] = float(M.cycle_knn(A, B, topk=10))
out["seconds"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def geomkit_run(a: str, b: str, extra=()) -> tuple[dict, float, float]:
    exe = str(Path(sys.executable).with_name("geomkit"))
    body, seconds, rss = time_command([exe, "compare", a, b, "--pairs", "rows", "--json", "-q",
                                       *extra], "compare_geomkit")
    return json.loads(body), seconds, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--platonic", required=True, help="checkout of minyoungg/platonic-rep")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gk_compare_")
    a, b = f"{tmp}/a.h5", f"{tmp}/b.h5"
    make(a, b, args.rows)

    t = time.perf_counter()
    out, rss_ref = run_child(PLATONIC.format(threads=args.threads, path=args.platonic, a=a, b=b),
                             "compare_platonic")
    ref = json.loads(out.strip().splitlines()[-1])
    ours, seconds, rss_ours = geomkit_run(a, b)
    print(f"## N = {args.rows}, 384-d vs 768-d, {args.threads} threads\n")
    print("| metric | platonic-rep | geomkit | abs diff |\n|---|---|---|---|")
    for key in ("cka_linear", "cka_unbiased", "cknna", "mutual_knn", "cycle_knn"):
        print(f"| {key} | {ref[key]:.8f} | {ours[key]:.8f} | {abs(ref[key] - ours[key]):.2e} |")
    print("\n| | wall s | peak RSS MiB |\n|---|---|---|")
    print(f"| platonic-rep (5 metric calls, data in memory) | {ref['seconds']:.1f} | {rss_ref:.0f} |")
    print(f"| geomkit compare (whole command, all its metrics) | {seconds:.1f} | {rss_ours:.0f} |")
    print(f"\nspeed-up {ref['seconds'] / seconds:.1f}x")
    os.remove(a)
    os.remove(b)

    if args.large:
        make(a, b, args.large, seed=1)
        res, secs, rss = geomkit_run(a, b)
        print(f"\n## N = {args.large:,} (384 vs 768): whole command {secs:.1f} s, peak RSS "
              f"{rss:.0f} MiB; cka_linear {res['cka_linear']:.4f}, cka_unbiased "
              f"{res['cka_unbiased']:.4f}, k-NN metrics on {res['knn_items']:,} sampled pairs "
              f"(mutual_knn {res['mutual_knn']:.3f})")
    print(f"\n(elapsed {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
