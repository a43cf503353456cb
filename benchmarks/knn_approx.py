"""Approximate kNN within the memory budget: geomkit against faiss's own search on the same index.

    python benchmarks/knn_approx.py [--n 200000] [--dim 384] [--big-n 1000000] [--big-dim 768]
                                    [--smoke] [--markdown PATH]

Clustered data (1 000 centres, benchmarks/hubness.py's recipe) is written into /tmp in blocks.
Measured, each whole command in a fresh process (time and peak RSS):
- `geomkit hubness --exact` and `geomkit hubness --approximate` at N × d (both run there);
- the nprobe trade-off on the index geomkit plans: recall@k of a seeded query sample against
  exact search and the projected search time of all N queries, per nprobe;
- geomkit's whole approximate kNN (train, stream-add, stream-search, recall pass) against faiss's
  own train + add + search of all N queries on the same index type, nlist and nprobe, with the
  data already in memory (the peer's best case; its load is not timed);
- `geomkit hubness --approximate` on the big float16 dump (default 1 000 000 × 768).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _child import run_child, time_command  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, versions, \
    write_section  # noqa: E402

GEOMKIT = os.path.join(os.path.dirname(sys.executable), "geomkit")
RESULTS = "/tmp/knn_approx_results.json"  # each stage saved as it ends (--resume skips them)


def write_clustered(path: str, n: int, d: int, dtype: str = "float32", seed: int = 0,
                    centers: int = 1000) -> str:
    """Clustered rows (centres N(0, I), noise 0.8) written in 100 000-row blocks."""
    import h5py

    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)).astype(np.float32)
    tmp = path + ".part"
    with h5py.File(tmp, "w") as h:
        ds = h.create_dataset("embeddings", (n, d), dtype=dtype, chunks=(min(n, 4096), d))
        for a in range(0, n, 100_000):
            b = min(n, a + 100_000)
            ds[a:b] = (c[rng.integers(0, centers, b - a)]
                       + 0.8 * rng.standard_normal((b - a, d), dtype=np.float32)).astype(dtype)
    os.replace(tmp, path)
    return path


def write_pair(path_a: str, path_b: str, n: int, da: int, db: int, seed: int = 1) -> None:
    """Two spaces of the same n items (paired by rows): A clustered (da), B = A·W + noise (db),
    float16, written in 100 000-row blocks."""
    import h5py

    if os.path.exists(path_a) and os.path.exists(path_b):
        return
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((1000, da)).astype(np.float32)
    w = (rng.standard_normal((da, db)) / np.sqrt(da)).astype(np.float32)
    with h5py.File(path_a + ".part", "w") as fa, h5py.File(path_b + ".part", "w") as fb:
        xa = fa.create_dataset("embeddings", (n, da), dtype="float16", chunks=(4096, da))
        xb = fb.create_dataset("embeddings", (n, db), dtype="float16", chunks=(4096, db))
        for a in range(0, n, 100_000):
            b = min(n, a + 100_000)
            x = c[rng.integers(0, 1000, b - a)] + 0.8 * rng.standard_normal((b - a, da),
                                                                          dtype=np.float32)
            xa[a:b] = x.astype("float16")
            xb[a:b] = (x @ w + 0.5 * rng.standard_normal((b - a, db), dtype=np.float32)
                       ).astype("float16")
    os.replace(path_a + ".part", path_a)
    os.replace(path_b + ".part", path_b)


def compare_stage(args, out, check) -> None:
    """`geomkit compare A B` over every pair of the big paired dumps, whole command."""
    pa = f"/tmp/knn_approx_cmp_a_{args.compare_n}.h5"
    pb = f"/tmp/knn_approx_cmp_b_{args.compare_n}.h5"
    write_pair(pa, pb, args.compare_n, args.compare_dims[0], args.compare_dims[1])
    cmd = [GEOMKIT, "compare", pa, pb, "--pairs", "rows", "--json", "--quiet", "--memory",
           args.compare_memory, *(["--nprobe", str(args.compare_nprobe)]
                                  if args.compare_nprobe else [])]
    body, sec, rss = time_command(cmd, "knn_compare_cmd")
    res = json.loads(body)
    out["compare_cmd"] = {"seconds": sec, "rss": rss, "json": res}
    print("compare", sec, rss, json.dumps({k: res[k] for k in ("cka_linear", "cknna",
                                                               "mutual_knn", "knn")}),
          flush=True)
    floor = recall_floor(args)
    check(res["knn"]["a"]["recall"] >= floor and res["knn"]["b"]["recall"] >= floor,
          f"compare recall >= {floor} in both spaces")
    if not args.keep_data:
        os.remove(pa)
        os.remove(pb)


def hubness_cmd(path, *extra):
    return [GEOMKIT, "hubness", path, "--json", "--quiet", *extra]


_NPROBE = r"""
import json, time, numpy as np, h5py, faiss
from geomkit.engine.ann import plan_index, _new_index
from geomkit.engine.rows import unit_rows
path, k, memory, probes, queries = {path!r}, {k}, {memory}, {probes!r}, {queries}
with h5py.File(path) as h:
    x = unit_rows(h["embeddings"][:].astype(np.float32))
n, d = x.shape
plan = plan_index(n, d, k, memory)
rng = np.random.default_rng(0)
index = _new_index(plan, d, True)
index.train(x[np.sort(rng.choice(n, plan.train_rows, replace=False))])
index.add(x)
q = np.sort(rng.choice(n, queries, replace=False))
exact = np.empty((queries, k), dtype=np.int64)
for s in range(0, queries, 500):
    sc = x[q[s:s + 500]] @ x.T
    sc[np.arange(sc.shape[0]), q[s:s + 500]] = -np.inf
    exact[s:s + 500] = np.argpartition(-sc, k - 1, axis=1)[:, :k]
out = []
cand = plan.refine * k + 1 if plan.kind != "flat" else k + 1
for p in probes:
    if p > plan.nlist:
        continue
    index.nprobe = p
    t = time.perf_counter()
    _, found = index.search(x[q], cand)
    sec = time.perf_counter() - t
    hits = 0
    for i, row in enumerate(found):
        row = [j for j in row if j != q[i]]
        if plan.kind != "flat":  # exact re-ranking of the candidates, as geomkit does
            row = sorted(row, key=lambda j: -float(x[q[i]] @ x[j]))
        hits += len(set(row[:k]) & set(exact[i]))
    out.append({{"nprobe": p, "recall": hits / (queries * k), "seconds_all": sec * n / queries}})
print(json.dumps({{"plan": plan.info(), "table": out}}))
"""

_FAISS = r"""
import json, time, numpy as np, h5py, faiss
from geomkit.engine.ann import plan_index, _new_index
from geomkit.engine.rows import unit_rows
path, k, memory, nprobe = {path!r}, {k}, {memory}, {nprobe}
with h5py.File(path) as h:
    x = unit_rows(h["embeddings"][:].astype(np.float32))
n, d = x.shape
plan = plan_index(n, d, k, memory, nprobe=nprobe)
t = time.perf_counter()
rng = np.random.default_rng(0)
index = _new_index(plan, d, True)
index.train(x[np.sort(rng.choice(n, plan.train_rows, replace=False))])
index.add(x)
index.nprobe = plan.nprobe
cand = plan.refine * k + 1 if plan.kind != "flat" else k + 1
for s in range(0, n, 65536):
    index.search(x[s:s + 65536], cand)
print(json.dumps({{"seconds": time.perf_counter() - t, "plan": plan.info()}}))
"""

_OURS = r"""
import json, time
import faiss, torch  # imported before the clock, as the peer's
from geomkit import Space
from geomkit.engine.ann import SpaceFeed, approximate_search
path, k, memory, nprobe = {path!r}, {k}, {memory}, {nprobe}
t = time.perf_counter()
with Space.open(path, memory=memory) as space:
    res = approximate_search(SpaceFeed(space, "cosine"), k, memory=memory, nprobe=nprobe)
print(json.dumps({{"seconds": time.perf_counter() - t, "info": res.info}}))
"""


def child_json(code: str, name: str) -> tuple[dict, float]:
    out, rss = run_child(code, name)
    return json.loads(out.strip().splitlines()[-1]), rss


def whole(path, name, *extra):
    out, sec, rss = time_command(hubness_cmd(path, *extra), name)
    return json.loads(out), sec, rss


def recall_floor(args) -> float:
    """The recall a run must reach: 0.9 at the record's sizes; 0.75 on the smoke's tiny, barely
    clustered dumps at the default nprobe (it checks the machinery and that recall is measured;
    the record's table gives recall per nprobe)."""
    return 0.75 if args.smoke else 0.9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--memory", default="256MB", help="--memory of the N × d runs")
    ap.add_argument("--big-n", type=int, default=1_000_000)
    ap.add_argument("--big-dim", type=int, default=768)
    ap.add_argument("--big-memory", default="2GB", help="--memory of the big run")
    ap.add_argument("--probes", default="1,2,4,8,16,32,64")
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--compare-n", type=int, default=1_000_000)
    ap.add_argument("--compare-dims", type=lambda v: [int(t) for t in v.split(",")],
                    default=[384, 768])
    ap.add_argument("--compare-memory", default="4GB")
    ap.add_argument("--resume", action="store_true",
                    help="keep the stages already in the last results file, run the others")
    ap.add_argument("--big-nprobe", type=int, default=None)
    ap.add_argument("--compare-nprobe", type=int, default=None)
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--keep-data", action="store_true")
    add_record_args(ap)
    args = ap.parse_args()
    if args.smoke:
        args.n, args.dim, args.big_n, args.big_dim = 8_000, 32, 30_000, 48
        args.queries, args.memory, args.big_memory = 500, "2MB", "1MB"
        args.compare_n, args.compare_dims, args.compare_memory = 30_000, [16, 32], "8MB"
    from geomkit.cli.options import _parse_memory

    memory = _parse_memory(None, None, args.memory)
    check = Checks()
    out: dict = {}
    if args.resume and os.path.exists(RESULTS):
        with open(RESULTS) as fh:
            out = json.load(fh)

    def save():
        with open(RESULTS, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
    path = write_clustered(f"/tmp/knn_approx_{args.n}x{args.dim}.h5", args.n, args.dim)

    # 1. nprobe trade-off on the index geomkit plans for this budget
    if "nprobe" not in out:
        table, _ = child_json(_NPROBE.format(path=path, k=args.k, memory=memory,
                                             queries=args.queries,
                                             probes=[int(p) for p in args.probes.split(",")]),
                              "knn_nprobe")
        out["nprobe"] = table
        save()
    print(json.dumps(out["nprobe"]), flush=True)

    # 2. geomkit's whole approximate kNN against faiss's own on the same index
    if "ours" not in out:
        ours, ours_rss = child_json(_OURS.format(path=path, k=args.k, memory=memory, nprobe=None),
                                    "knn_ours")
        # faiss searches with the nprobe geomkit tuned (its tuning is part of geomkit's time)
        peer, peer_rss = child_json(_FAISS.format(path=path, k=args.k, memory=memory,
                                                  nprobe=ours["info"]["nprobe"]), "knn_faiss")
        out["ours"], out["peer"] = dict(ours, rss=ours_rss), dict(peer, rss=peer_rss)
        save()
    ours = out["ours"]
    print(json.dumps(out["ours"]), json.dumps(out["peer"]), flush=True)
    check(ours["info"]["recall"] >= recall_floor(args),
          f"recall {ours['info']['recall']:.4f} >= {recall_floor(args)}")
    check(ours["info"]["index_bytes"] <= 0.75 * memory, "index within 3/4 of the budget")

    # 3. whole commands: approximate, exact
    if "approx_cmd" not in out:
        approx, a_sec, a_rss = whole(path, "knn_approx_cmd", "--approximate", "--memory",
                                     args.memory)
        out["approx_cmd"] = {"seconds": a_sec, "rss": a_rss, "json": approx}
        save()
    approx = out["approx_cmd"]["json"]
    print("approx", out["approx_cmd"]["seconds"], out["approx_cmd"]["rss"], flush=True)
    if not args.skip_exact:
        if "exact_cmd" not in out:
            exact, e_sec, e_rss = whole(path, "knn_exact_cmd", "--exact")
            out["exact_cmd"] = {"seconds": e_sec, "rss": e_rss, "json": exact}
            save()
        exact = out["exact_cmd"]["json"]
        print("exact", out["exact_cmd"]["seconds"], out["exact_cmd"]["rss"], flush=True)
        ds = abs(approx["methods"]["none"]["k_skewness"] - exact["methods"]["none"]["k_skewness"])
        check(ds < 0.05, f"k-skewness approximate vs exact differ by {ds:.2e} < 0.05")

    # 4. the big float16 dump
    if not args.skip_big:
        big = write_clustered(f"/tmp/knn_approx_{args.big_n}x{args.big_dim}_f16.h5", args.big_n,
                              args.big_dim, dtype="float16")
        from geomkit.engine.ann import _pq_sizes

        refused = __import__("subprocess").run(
            hubness_cmd(big, "--approximate", "--memory", "1MB"), capture_output=True, text=True)
        if args.big_n * (min(_pq_sizes(args.big_dim)) + 8) > 0.75 * 2**20:  # cannot fit
            check(refused.returncode == 2 and "MB or more" in refused.stderr,
                  "an index that cannot fit is refused with exit 2 naming the --memory needed")
        if "big_cmd" not in out:
            res, b_sec, b_rss = whole(big, "knn_big_cmd", "--approximate", "--memory",
                                      args.big_memory, *(["--nprobe", str(args.big_nprobe)]
                                                         if args.big_nprobe else []))
            out["big_cmd"] = {"seconds": b_sec, "rss": b_rss, "json": res}
            save()
        res, b_sec, b_rss = (out["big_cmd"][key] for key in ("json", "seconds", "rss"))
        print("big", b_sec, b_rss, json.dumps(res["knn"]), flush=True)
        check(res["knn"]["recall"] >= recall_floor(args),
              f"big recall {res['knn']['recall']:.4f} >= {recall_floor(args)}")
        if not args.keep_data:
            os.remove(big)
    if not args.keep_data:
        os.remove(path)
    if not args.skip_compare:
        if "compare_cmd" not in out:
            compare_stage(args, out, check)
            save()
    save()
    write_section(args.markdown, markdown(args, out))
    check.exit()


def markdown(args, out) -> str:
    ours, peer = out["ours"], out["peer"]
    info = ours["info"]
    lines = [
        f"## knn_approx — `benchmarks/knn_approx.py` (approximate kNN within --memory; "
        f"N = {count(args.n)}, d = {args.dim}, k = {args.k}, cosine, clustered)",
        "",
        f"{machine()}; {versions()}, faiss-cpu {__import__('faiss').__version__}. Clustered "
        "float32 rows (1 000 centres, noise 0.8) written to /tmp in blocks. Every geomkit "
        "number is a whole command (or a whole call) in a fresh process; peak RSS is that "
        "process's.",
        "",
        f"**geomkit vs faiss on the same index** ({info['index']}, nlist {info['nlist']}, nprobe "
        f"{info['nprobe']}, --memory {args.memory}): geomkit's whole approximate kNN — seeded "
        "training sample read from the file, rows added block by block, the exact neighbours of "
        f"{info['recall_sample']} queries for the recall in the same pass, all N queries searched "
        "block by block" + (", candidates re-ranked exactly from the file" if info["rerank"] else "")
        + " — against faiss's own train + add + search of all N queries with the matrix already "
        "in memory (its load not timed):",
        "",
        "| | time | peak RSS | recall@k |",
        "|---|---|---|---|",
        f"| geomkit `approximate_search` (streamed) | {secs(ours['seconds'])} | "
        f"{mib(ours['rss'])} | {info['recall']:.4f} |",
        f"| faiss train + add + search (in memory) | {secs(peer['seconds'])} | "
        f"{mib(peer['rss'])} | |",
        f"| ratio | **{ratio(ours['seconds'] / peer['seconds'])}** | | |",
        "",
        f"geomkit's time by phase: train {secs(info['train_s'])}, add + recall pass "
        f"{secs(info['add_s'])}, search pass {secs(info['search_s'])} (of which faiss search "
        f"{secs(info['faiss_search_s'])}). Index: {info['index_bytes'] / 2**20:.0f} MiB planned, "
        f"{info['index_bytes_measured'] / 2**20:.0f} MiB held.",
        "",
    ]
    ap = out["approx_cmd"]
    lines += ["**Whole commands** (`geomkit hubness FILE --json`):", "",
              "| command | time | peak RSS | k-skewness | recall@k | index |", "|---|---|---|---|---|---|"]
    if "exact_cmd" in out:
        ex = out["exact_cmd"]
        lines.append(f"| `--exact` | {secs(ex['seconds'])} | {mib(ex['rss'])} | "
                     f"{ex['json']['methods']['none']['k_skewness']:.5f} | 1 (exact) | |")
    aj = ap["json"]
    lines.append(f"| `--approximate --memory {args.memory}` | {secs(ap['seconds'])} | "
                 f"{mib(ap['rss'])} | {aj['methods']['none']['k_skewness']:.5f} | "
                 f"{aj['knn']['recall']:.4f} | {aj['knn']['index']}, nlist {aj['knn']['nlist']}, "
                 f"nprobe {aj['knn']['nprobe']}, {aj['knn']['index_bytes'] / 2**20:.0f} MiB |")
    if "big_cmd" in out:
        b = out["big_cmd"]
        bj = b["json"]["knn"]
        lines.append(f"| {count(args.big_n)} × {args.big_dim} float16, `--approximate --memory "
                     f"{args.big_memory}` | {secs(b['seconds'])} | {mib(b['rss'])} | "
                     f"{b['json']['methods']['none']['k_skewness']:.5f} | {bj['recall']:.4f} | "
                     f"{bj['index']}, nlist {bj['nlist']}, nprobe {bj['nprobe']}, "
                     f"{bj['index_bytes'] / 2**20:.0f} MiB |")
    if "compare_cmd" in out:
        c = out["compare_cmd"]
        cj = c["json"]
        ka, kb = cj["knn"]["a"], cj["knn"]["b"]
        lines += ["", f"**compare over every pair**: `geomkit compare A B --pairs rows --memory "
                  f"{args.compare_memory}`, {count(cj['n'])} pairs, A {cj['d']['a']}-d and B "
                  f"{cj['d']['b']}-d float16 (B = A·W + noise): CKAs streamed, the k-NN metrics "
                  "from the approximate neighbours of every item in each space:", "",
                  "| time | peak RSS | recall A | recall B | index A | index B | cka_linear | "
                  "cknna | mutual_knn |", "|---|---|---|---|---|---|---|---|---|",
                  f"| {secs(c['seconds'])} | {mib(c['rss'])} | {ka['recall']:.4f} | "
                  f"{kb['recall']:.4f} | {ka['index']}, nlist {ka['nlist']}, nprobe {ka['nprobe']} "
                  f"({ka['index_bytes'] / 2**20:.0f} MiB) | {kb['index']}, nlist {kb['nlist']}, "
                  f"nprobe {kb['nprobe']} ({kb['index_bytes'] / 2**20:.0f} MiB) | "
                  f"{cj['cka_linear']:.4f} | {cj['cknna']:.4f} | {cj['mutual_knn']:.4f} |"]
    t = out["nprobe"]
    lines += ["", f"**nprobe trade-off** on the index planned for --memory {args.memory} "
              f"({t['plan']['index']}, nlist {t['plan']['nlist']}): recall@{args.k} of "
              f"{count(args.queries)} seeded queries against exact search, and faiss's search "
              "time for all N queries projected from theirs:", "",
              "| nprobe | recall@k | search, all N |", "|---|---|---|"]
    for row in t["table"]:
        lines.append(f"| {row['nprobe']} | {row['recall']:.4f} | {secs(row['seconds_all'])} |")
    lines += ["", "Physical floor: the search cannot beat faiss's own search on the same index; "
              "the streamed path adds two reads of the file (add, search), the recall pass "
              "(a sample × N product) and, for compressed indexes, the candidate reads."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
