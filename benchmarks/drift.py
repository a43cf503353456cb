"""Drift: MMD² with a permutation test, geomkit against alibi-detect's pytorch MMDDrift.

    python benchmarks/drift.py [--n 10000] [--dim 384] [--permutations 1000]
                               [--peer-permutations P] [--peer-python PY] [--smoke] [--markdown PATH]
    python benchmarks/drift.py --power PAIRS     # the power table of docs/drift.md

N = M = --n rows of d = --dim float32 (seeded gaussians, NEW shifted by 0.02 in every dimension),
one bandwidth σ (the pooled median distance, computed once and given to both), --permutations
permutations. geomkit: `geomkit drift REF NEW --tests mmd --sigma σ` as a whole command in a fresh
process (reads from HDF5). alibi-detect 0.13 (benchmark-only: it pins numpy < 2, so it lives in
its own venv, --peer-python, default /tmp/gk_alibi_venv/bin/python): `MMDDrift(backend="pytorch",
sigma=σ, configure_kernel_from_x_ref=False).predict(NEW)` in a fresh process, its own time
including the imports and reading the same HDF5 files. alibi-detect re-indexes its (N+M)²
kernel matrix with a fresh copy per permutation; with --peer-permutations P < --permutations its
time is measured with P permutations and the permutation part scaled to --permutations (stated).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import time_command  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, write_section  # noqa: E402

PEER = """
import time, json, sys
t0 = time.perf_counter()
import h5py, numpy as np, torch
from alibi_detect.cd import MMDDrift
x = h5py.File({ref!r})["embeddings"][()]
y = h5py.File({new!r})["embeddings"][()]
t1 = time.perf_counter()
cd = MMDDrift(x, backend="pytorch", p_val=0.05, sigma=np.array([{sigma!r}], dtype=np.float32),
              configure_kernel_from_x_ref=False, n_permutations={perms})
torch.manual_seed(0)
t2 = time.perf_counter()
pred = cd.predict(y)
t3 = time.perf_counter()
data = pred["data"]
print(json.dumps({{"statistic": float(data["distance"]), "p_value": float(data["p_val"]),
                  "setup_seconds": t2 - t0, "predict_seconds": t3 - t2}}))
"""


def write(path, x):
    with h5py.File(path, "w") as f:
        f.create_dataset("embeddings", data=x, chunks=(min(4096, len(x)), x.shape[1]))


def markdown(args, out: dict) -> str:
    g, a = out["geomkit"], out.get("alibi")
    work = (f"N = M = {count(args.n)}, d = {args.dim}, float32, {count(args.permutations)} "
            f"permutations, σ = {out['sigma']:.4g} given to both")
    lines = [
        "## drift — `benchmarks/drift.py` (MMD² permutation test against alibi-detect 0.13 "
        "MMDDrift, pytorch backend)",
        "",
        f"{machine()}. {work}. Both as whole commands in fresh processes reading the same HDF5 "
        "files. geomkit computes the pooled kernel once, block by block, and multiplies each "
        "block with the 0/1 membership matrix of all permutations (zᵀKz, zᵀK1); alibi-detect "
        "holds the (N+M)² kernel and copies it re-indexed once per permutation.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| geomkit `drift --tests mmd` | {secs(g['seconds'])}, peak RSS {mib(g['rss'])} |",
    ]
    if a:
        note = ""
        rel = abs(g["statistic"] - a["statistic"]) / abs(a["statistic"])
        if a["perms"] != args.permutations:
            note = (f" (measured with {a['perms']} permutations: {secs(a['measured_seconds'])}; "
                    f"the predict part scaled ×{args.permutations / a['perms']:.0f})")
        lines += [
            f"| alibi-detect MMDDrift | {secs(a['seconds'])}{note}, peak RSS {mib(a['rss'])} |",
            f"| speed-up | **{ratio(a['seconds'] / g['seconds'])}** |",
            f"| MMD² geomkit / alibi-detect | {g['statistic']:.6e} / {a['statistic']:.6e} "
            f"(relative difference {rel:.1e}; float32 kernels) |",
            f"| relative error vs the float64 statistic {out['float64']:.6e}: geomkit / "
            f"alibi-detect | {abs(g['statistic'] - out['float64']) / abs(out['float64']):.1e} / "
            f"{abs(a['statistic'] - out['float64']) / abs(out['float64']):.1e} |",
            f"| p-value geomkit / alibi-detect | {g['p_value']:.4g} / {a['p_value']:.4g} "
            "(random permutations; alibi-detect has no +1 rule) |",
        ]
    else:
        lines.append("| alibi-detect | not run (no interpreter with alibi-detect) |")
    flops = 2 * (2 * args.n) ** 2 * (args.dim + args.permutations + 1)
    lines += ["", f"Floor: the kernel (2·(N+M)²·d flops) and the membership products "
              f"(2·(N+M)²·(B+1)) are {flops / 1e12:.2f} TFLOP; geomkit ran them at "
              f"{flops / g['seconds'] / 1e9:.0f} GFLOP/s including the reads and the imports."]
    return "\n".join(lines)


def power_table(pairs: int, n: int = 200, dim: int = 16, permutations: int = 199) -> str:
    """Share of ``pairs`` seeded pairs in which each test (and the overall verdict) finds drift at
    alpha = 0.05, under H0 and three planted shifts (the table of docs/drift.md)."""
    from geomkit.analysis.drift import TESTS, compute_drift
    from geomkit.report.progress import set_quiet

    set_quiet(True)
    scenarios = {
        "none (H0)": lambda base, rng: base,
        "mean shift +0.15 per dim (‖Δμ‖ = 0.6)": lambda base, rng: base + 0.15,
        "scale ×1.15": lambda base, rng: base * 1.15,
        "new cluster: 10% of NEW moved by +1.5 per dim": lambda base, rng: np.vstack(
            [base[: n - n // 10], base[n - n // 10:] + 1.5]),
    }
    head = "| planted change | " + " | ".join(TESTS) + " | overall |"
    lines = [f"N = M = {n}, d = {dim}, gaussian N(0, I) REF, {permutations} permutations, "
             f"{pairs} seeded pairs per row; share of pairs with p ≤ 0.05 (overall: Bonferroni "
             "over the 5 tests).", "", head, "|---" * (len(TESTS) + 2) + "|"]
    for name, make in scenarios.items():
        hits = {k: 0 for k in TESTS + ("overall",)}
        for i in range(pairs):
            rng = np.random.default_rng(10_000 + i)
            x = rng.standard_normal((n, dim))
            y = make(rng.standard_normal((n, dim)), rng)
            r = compute_drift(x, y, permutations=permutations, seed=i)
            for k, t in r.tests.items():
                hits[k] += t["drift"]
            hits["overall"] += r.drift
        lines.append(f"| {name} | " + " | ".join(f"{hits[k] / pairs:.2f}" for k in hits) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--power", type=int, metavar="PAIRS",
                    help="print the power table of docs/drift.md over PAIRS seeded pairs; exit")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--peer-permutations", type=int, default=None)
    ap.add_argument("--peer-python", default=os.environ.get("GK_ALIBI_PYTHON",
                                                            "/tmp/gk_alibi_venv/bin/python"))
    add_record_args(ap)
    args = ap.parse_args()
    if args.power:
        print(power_table(args.power))
        return
    checks = Checks()
    if args.smoke:
        args.n, args.dim, args.permutations = 400, 32, 100
    peer_perms = args.peer_permutations or args.permutations
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    y = (rng.standard_normal((args.n, args.dim)) + 0.02).astype(np.float32)
    tag = os.getpid()
    ref, new = f"/tmp/gk_drift_ref_{tag}.h5", f"/tmp/gk_drift_new_{tag}.h5"
    write(ref, x)
    write(new, y)
    from geomkit.analysis.drift import median_sigma, mmd_test

    sigma, _ = median_sigma(x, y)
    # the float64 statistic (one kernel pass, no permutations; not timed): the reference both
    # float32 runs are measured against
    exact64 = mmd_test(x.astype(np.float64), y.astype(np.float64), sigma=sigma,
                       permutations=0)["statistic"]
    del x, y
    out = {"sigma": sigma, "float64": exact64}
    geomkit = str(Path(sys.executable).parent / "geomkit")
    try:
        text, seconds, rss = time_command(
            [geomkit, "drift", ref, new, "--tests", "mmd", "--sigma", repr(sigma),
             "--permutations", str(args.permutations), "--json", "-q"], "drift_geomkit")
        t = json.loads(text)["tests"]["mmd"]
        out["geomkit"] = {"seconds": seconds, "rss": rss, "statistic": t["statistic"],
                          "p_value": t["p_value"], "estimator": t["estimator"]}
        print("geomkit", out["geomkit"], flush=True)
        checks(t["estimator"] == "exact", "geomkit used the exact kernel")
        err = abs(t["statistic"] - exact64) / abs(exact64)
        checks(err < 1e-4, f"geomkit's float32 MMD² within {err:.1e} of the float64 value")
        if os.path.exists(args.peer_python):
            code = PEER.format(ref=ref, new=new, sigma=float(sigma), perms=peer_perms)
            text, seconds, rss = time_command([args.peer_python, "-c", code], "drift_alibi")
            a = json.loads(text.strip().splitlines()[-1])
            measured = seconds
            if peer_perms != args.permutations:
                seconds = seconds + a["predict_seconds"] * (args.permutations / peer_perms - 1)
            out["alibi"] = {"seconds": seconds, "measured_seconds": measured, "rss": rss,
                            "perms": peer_perms, **a}
            print("alibi", out["alibi"], flush=True)
            rel = abs(out["geomkit"]["statistic"] - a["statistic"]) / abs(a["statistic"])
            # alibi-detect sums its float32 kernel in float32: its own error against the float64
            # value bounds the agreement one can ask for
            own = abs(a["statistic"] - exact64) / abs(exact64)
            checks(rel <= max(1e-3, 2 * own), f"same MMD² as alibi-detect (relative difference "
                   f"{rel:.1e}; alibi-detect's own float32 error {own:.1e})")
        else:
            checks.skip(f"alibi-detect ({args.peer_python} not found)")
    finally:
        for p in (ref, new):
            os.remove(p)
    print(json.dumps(out, indent=2))
    write_section(args.markdown, markdown(args, out))
    checks.exit()


if __name__ == "__main__":
    main()
