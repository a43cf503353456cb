"""`geomkit compare` against the Platonic Representation Hypothesis code, side by side, and at scale.

    python benchmarks/compare.py [--platonic PATH/TO/platonic-rep] [--rows 20000] [--large 1000000]
                                 [--platonic-timeout 1800] [--smoke] [--markdown PATH]

PATH (default $GEOMKIT_PLATONIC, else /tmp/platonic-rep; the peer is skipped, and said so, when
there is no checkout) is a checkout of github.com/minyoungg/platonic-rep (the benchmark imports its metrics.py
unmodified; torchaudio, which it imports only for edit_distance_knn, is stubbed). Never vendored,
never needed by the tests.

1. N = --rows paired items, 384-d vs 768-d (B = a non-linear function of A plus noise, both rows
   L2-normalised as sentence models output them), float32 HDF5 files:
   - platonic-rep: ``AlignmentMetrics`` cka, unbiased_cka, cknna (topk 10), mutual_knn and
     cycle_knn (topk 10) on the float32 tensors in memory (CPU torch; its file reading is not
     counted), wall time and peak RSS in a fresh process;
   - geomkit: the whole command ``geomkit compare A.h5 B.h5 --pairs rows --json -q`` in its own
     process (imports, reads, all metrics), wall time and peak RSS; the values side by side;
   - the closed-form linear CKA of the same data in memory (numpy, float64), to check geomkit's
     value whether or not the peer ran.
   The peer is stopped after --platonic-timeout seconds (at 20 000 rows it ran > 26 min): its time
   is then recorded as a lower bound.
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
from _child import run_child_limited, time_command  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, write_section  # noqa: E402

DEFAULT_PLATONIC = os.environ.get("GEOMKIT_PLATONIC", "/tmp/platonic-rep")


def make(path_a: str, path_b: str, rows: int, seed: int = 0) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((384, 768)) / np.sqrt(384)
    scales = np.geomspace(1.0, 0.1, 384)
    offset = rng.standard_normal(384) * 0.3
    with h5py.File(path_a, "w") as fa, h5py.File(path_b, "w") as fb:
        da = fa.create_dataset("embeddings", (rows, 384), dtype="f4", chunks=(min(4096, rows), 384))
        db = fb.create_dataset("embeddings", (rows, 768), dtype="f4", chunks=(min(4096, rows), 768))
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
if {no_eps}:  # the unbiased CKA without the reference's + 1e-6 in the denominator (float64)
    from metrics import hsic_unbiased as h
    A64, B64 = A.double(), B.double()
    K, L = A64 @ A64.T, B64 @ B64.T
    out["cka_unbiased_no_eps"] = float(h(K, L) / torch.sqrt(h(K, K) * h(L, L)))
print(json.dumps(out))
"""


def geomkit_run(a: str, b: str, extra=()) -> tuple[dict, float, float]:
    exe = str(Path(sys.executable).with_name("geomkit"))
    body, seconds, rss = time_command([exe, "compare", a, b, "--pairs", "rows", "--json", "-q",
                                       *extra], "compare_geomkit")
    return json.loads(body), seconds, rss


KEYS = ("cka_linear", "cka_unbiased", "cknna", "mutual_knn", "cycle_knn")


def closed_form_cka(a: str, b: str) -> float:
    """Linear CKA from its definition on the centred data in memory (float64)."""
    import h5py

    with h5py.File(a) as fa, h5py.File(b) as fb:
        x = fa["embeddings"][:].astype(np.float64)
        y = fb["embeddings"][:].astype(np.float64)
    x -= x.mean(0)
    y -= y.mean(0)
    return float(np.linalg.norm(x.T @ y) ** 2
                 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def markdown(args, small: dict, large: dict | None) -> str:
    lines = [
        "## compare — `benchmarks/compare.py` (384-d vs 768-d, paired float32 HDF5)",
        "",
        f"{machine()}. Seeded data: B a non-linear function of A plus noise, unit rows. "
        f"N = {count(args.rows)} pairs:",
        "",
        "| | wall | peak RSS |",
        "|---|---|---|",
    ]
    ref = small.get("ref")
    ours = small["ours"]
    if ref is None:
        lines.append(f"| platonic-rep `AlignmentMetrics`: not run ({small['ref_note']}) | | |")
    elif ref.get("stopped"):
        lines.append(
            "| platonic-rep `AlignmentMetrics` (cka, unbiased_cka, cknna k=10, mutual_knn, "
            "cycle_knn; CPU torch, data already in memory) | "
            f"**> {secs(ref['seconds'])}** (stopped, not finished) | ≥ {mib(ref['rss'])} |")
    else:
        lines.append(
            "| platonic-rep `AlignmentMetrics` (cka, unbiased_cka, cknna k=10, mutual_knn, "
            f"cycle_knn; CPU torch, data already in memory) | **{secs(ref['seconds'])}** | "
            f"{mib(ref['rss'])} |")
    lines.append(
        "| `geomkit compare A.h5 B.h5 --pairs rows --json` (whole command: imports, reads, every "
        "metric incl. RSA, LCS, edit distance, per-item overlaps) | "
        f"**{secs(ours['seconds'])}** | {mib(ours['rss'])} |")
    lines.append("")
    if ref is not None:
        bound = "≥ " if ref.get("stopped") else ""
        lines.append(f"Speed-up {bound}**{ratio(ref['seconds'] / ours['seconds'])}**"
                     + (" (a lower bound: the reference did not finish)." if bound else "."))
    if ref is not None and not ref.get("stopped"):
        lines += ["", "| metric | platonic-rep | geomkit | abs difference |", "|---|---|---|---|"]
        for key in KEYS:
            lines.append(f"| {key} | {ref['values'][key]:.6f} | {ours['values'][key]:.6f} | "
                         f"{abs(ref['values'][key] - ours['values'][key]):.1e} |")
        lines.append("\nThe reference computes in float32 torch and adds 1e-6 to the denominators of "
                     "the unbiased CKA and CKNNA; without that eps (its own `hsic_unbiased`, float64"
                     + (f": {ref['values']['cka_unbiased_no_eps']:.8f}" if "cka_unbiased_no_eps"
                        in ref["values"] else "") + ") geomkit's unbiased CKA equals it to 1e-8; without "
                     "the eps all five equal the reference on the oracle data "
                     "(`tests/analysis/test_compare.py`).")
    else:
        lines.append(
            "Equal values are shown on the oracle data, where the reference's own outputs "
            "(tests/data/oracles/compare.json) are reproduced to their stated tolerances by "
            "`tests/analysis/test_compare.py`; geomkit's values here: "
            + ", ".join(f"{k} {ours['values'][k]:.6f}" for k in KEYS) + ".")
    lines.append(
        f"\nLinear CKA from its definition on the data in memory (numpy, float64): "
        f"{small['closed_form_cka']:.8f} (geomkit {ours['values']['cka_linear']:.8f}). "
        "The reference materialises several N × N float32 kernels and sorts full rows (its memory "
        "grows with N²); geomkit's CKAs come from d × d products and its k-NN from the blocked "
        "exact search. The floor of the CKAs is one read of both files plus the d × d products.")
    if large:
        lines += [
            "",
            f"N = {count(args.large)} pairs (same construction, seed 1): whole command "
            f"**{secs(large['seconds'])}**; CKA {large['values']['cka_linear']:.6f} and unbiased "
            f"{large['values']['cka_unbiased']:.6f} over every pair (streamed), the k-NN metrics "
            f"on a seeded sample of {count(large['values']['knn_items'])} pairs (`knn_items`; "
            f"CKNNA {large['values']['cknna']:.6f}); peak RSS **{mib(large['rss'])}** (target "
            "< 2 GB).",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--platonic", default=DEFAULT_PLATONIC, help="checkout of minyoungg/platonic-rep")
    ap.add_argument("--platonic-timeout", type=float, default=1800.0,
                    help="stop the reference after this many seconds (its time is then a bound)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    add_record_args(ap)
    args = ap.parse_args()
    checks = Checks()
    if args.smoke:
        args.rows, args.large = 1000, 0
    tmp = tempfile.mkdtemp(prefix="gk_compare_")
    a, b = f"{tmp}/a.h5", f"{tmp}/b.h5"
    make(a, b, args.rows)
    t = time.perf_counter()
    small: dict = {}
    if args.platonic and os.path.exists(os.path.join(args.platonic, "metrics.py")):
        out, rss_ref, wall = run_child_limited(
            PLATONIC.format(threads=args.threads, path=args.platonic, a=a, b=b,
                            no_eps=args.rows <= 5000),
            "compare_platonic", args.platonic_timeout)
        if out is None:
            small["ref"] = {"stopped": True, "seconds": wall, "rss": rss_ref}
        else:
            ref = json.loads(out.strip().splitlines()[-1])
            small["ref"] = {"seconds": ref.pop("seconds"), "rss": rss_ref, "values": ref}
    else:
        small["ref"] = None
        small["ref_note"] = f"no platonic-rep checkout at {args.platonic!r}"
        print(f"skip: {small['ref_note']} (--platonic PATH or $GEOMKIT_PLATONIC)", flush=True)
    values, seconds, rss_ours = geomkit_run(a, b)
    small["ours"] = {"seconds": seconds, "rss": rss_ours, "values": values}
    small["closed_form_cka"] = closed_form_cka(a, b)
    print(json.dumps(small, indent=2, default=str), flush=True)
    checks(abs(small["closed_form_cka"] - values["cka_linear"]) < 1e-8,
           f"linear CKA equals its closed form ({values['cka_linear']:.10f} vs "
           f"{small['closed_form_cka']:.10f})")
    ref = small["ref"]
    if ref is not None and not ref.get("stopped"):
        # the reference computes in float32 torch; neighbours of float32 data may swap on ties
        # and adds 1e-6 to the denominators of the unbiased CKA and CKNNA (~1e-4 here); the exact
        # equality (values without that eps) is tested on the oracle data in tests/analysis
        tol = {"cka_linear": 1e-4, "cka_unbiased": 1e-3, "cknna": 2e-3, "mutual_knn": 5e-3,
               "cycle_knn": 5e-3}
        for key in KEYS:
            diff = abs(ref["values"][key] - values[key])
            checks(diff <= tol[key], f"{key} equals platonic-rep's to {tol[key]:g} "
                   f"({values[key]:.6f} vs {ref['values'][key]:.6f})")
        if "cka_unbiased_no_eps" in ref["values"]:
            ne = ref["values"]["cka_unbiased_no_eps"]
            checks(abs(ne - values["cka_unbiased"]) < 1e-8, "unbiased CKA equals the reference's "
                   f"hsic_unbiased without its eps, float64 ({values['cka_unbiased']:.10f} vs {ne:.10f})")
    elif ref is not None:
        checks.skip(f"platonic-rep stopped after {ref['seconds']:.0f} s")
    else:
        checks.skip("the values against platonic-rep (no checkout)")
    os.remove(a)
    os.remove(b)
    large = None
    if args.large:
        make(a, b, args.large, seed=1)
        try:
            res, secs_, rss = geomkit_run(a, b)
        finally:
            os.remove(a)
            os.remove(b)
        large = {"seconds": secs_, "rss": rss, "values": res}
        print(json.dumps(large, indent=2, default=str), flush=True)
    os.rmdir(tmp)
    print(f"\n(elapsed {time.perf_counter() - t:.0f} s)")
    write_section(args.markdown, markdown(args, small, large))
    checks.exit()


if __name__ == "__main__":
    main()
