"""The Dask backend's overhead: the same commands local vs ``--scheduler local:2`` on this machine.

    python benchmarks/dask_overhead.py [--rows 500000] [--dim 768] [--knn-rows 20000] [--knn-dim 384]
                              [--smoke] [--markdown PATH]

Whole commands, each in a fresh process (imports, cluster start and stop included), side by side
in one run: ``geomkit isotropy`` on a float32 dump of --rows × --dim, and ``geomkit hubness``
(exact kNN, k = 10) on --knn-rows × --knn-dim. The results must agree (1e-6 relative; the
k-occurrence measures exactly, as floats computed from identical counts). Then, on one running
LocalCluster(2): what starting and stopping a cluster costs, what one task costs (submit + result
of a no-op, and of a pass part over an empty range), and the isotropy pass alone through the
library (no start-up), against the local pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _child import run_child, time_command  # noqa: E402
from _record import Checks, add_record_args, count, machine, mib, ratio, secs, write_section  # noqa: E402

GEOMKIT = str(Path(sys.executable).parent / "geomkit")


def make_dump(path: str, n: int, d: int, seed: int = 0, clustered: bool = False) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    scale = np.geomspace(2.0, 0.05, d).astype(np.float32)
    centres = rng.standard_normal((200, d)).astype(np.float32) if clustered else None
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("embeddings", (n, d), dtype=np.float32, chunks=(min(n, 4096), d))
        for a in range(0, n, 65536):
            b = min(n, a + 65536)
            x = rng.standard_normal((b - a, d)).astype(np.float32) * scale + 0.2
            if clustered:
                x = 0.5 * x + centres[rng.integers(0, 200, b - a)]
            ds[a:b] = x
    os.sync()


def agree(a, b, rel: float) -> bool:
    if isinstance(a, dict):
        return set(a) == set(b) and all(agree(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(agree(u, v, rel) for u, v in zip(a, b))
    if isinstance(a, float) and isinstance(b, (float, int)):
        return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)
    return a == b


def side_by_side(argv: list, name: str) -> dict:
    out_l, t_l, rss_l = time_command([GEOMKIT, *argv, "--json", "--quiet"], f"{name}_local")
    out_d, t_d, rss_d = time_command([GEOMKIT, *argv, "--json", "--quiet", "--scheduler",
                                      "local:2"], f"{name}_dask")
    try:
        same = agree(json.loads(out_l), json.loads(out_d), 1e-6)
    except json.JSONDecodeError:
        same = False
    return {"local": t_l, "dask": t_d, "rss_local": rss_l, "rss_dask": rss_d, "same": same}


CLUSTER_CHILD = r"""
import json, time, numpy as np
from distributed import Client, LocalCluster
from geomkit import Space
from geomkit.engine import DaskExecutor
from geomkit.engine.executor import _part_pass
t = time.perf_counter()
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
client = Client(cluster)
start = time.perf_counter() - t
noop = lambda i: i
client.gather([client.submit(noop, i, pure=False) for i in range(20)])  # warm
t = time.perf_counter()
client.gather([client.submit(noop, i, pure=False) for i in range(400)])
per_task = (time.perf_counter() - t) / 400
space = Space.open(PATH)
t = time.perf_counter()
client.gather([client.submit(_part_pass, space.source, 0, 0, [], {}, pure=False)
               for _ in range(100)])
per_part = (time.perf_counter() - t) / 100
def timed(executor):  # the faster of two runs (the first warms the page cache)
    best = None
    for _ in range(2):
        space = Space.open(PATH, executor=executor)
        t = time.perf_counter()
        space.products("moments", "row_stats")
        took = time.perf_counter() - t
        best = took if best is None else min(best, took)
    return best, space
t_local, local = timed(None)
t_dask, remote = timed(DaskExecutor(client))
parts = len(remote.executor.edges(remote.n_selected, remote.source.stream_block_rows()))
diff = float(np.abs(remote.moments().scatter - local.moments().scatter).max()
             / np.abs(local.moments().scatter).max())
t = time.perf_counter()
client.close(); cluster.close()
stop = time.perf_counter() - t
print(json.dumps(dict(start=start, stop=stop, per_task=per_task, per_part=per_part,
                      pass_local=t_local, pass_dask=t_dask, parts=parts, scatter_rel=diff)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--knn-rows", type=int, default=20_000)
    ap.add_argument("--knn-dim", type=int, default=384)
    ap.add_argument("--dir", default="/tmp")
    add_record_args(ap)
    args = ap.parse_args()
    if args.smoke:
        args.rows, args.dim, args.knn_rows, args.knn_dim = 40_000, 64, 3_000, 32
    checks = Checks()
    iso_path = os.path.join(args.dir, "geomkit_bench_dask_iso.h5")
    knn_path = os.path.join(args.dir, "geomkit_bench_dask_knn.h5")
    make_dump(iso_path, args.rows, args.dim)
    make_dump(knn_path, args.knn_rows, args.knn_dim, seed=1, clustered=True)
    try:
        iso = side_by_side(["isotropy", iso_path], "dask_iso")
        print("isotropy", iso, flush=True)
        checks(iso["same"], "isotropy: local:2 gives the local numbers (1e-6)")
        hub = side_by_side(["hubness", knn_path, "-k", "10"], "dask_hub")
        print("hubness", hub, flush=True)
        checks(hub["same"], "hubness: local:2 gives the local k-occurrence measures")
        out, _ = run_child(f"PATH = {iso_path!r}\n" + CLUSTER_CHILD, "dask_cluster")
        costs = json.loads(out.strip().splitlines()[-1])
        print("cluster", costs, flush=True)
        checks(costs["scatter_rel"] < 1e-6, "library pass on the cluster equals the local pass")
    finally:
        for p in (iso_path, knn_path):
            if os.path.exists(p):
                os.remove(p)
    gb = args.rows * args.dim * 4 / 1e9
    text = f"""## dask — `benchmarks/dask_overhead.py` (local vs `--scheduler local:2`, whole commands)

Machine: {machine()}. Each command in a fresh process, one after the other in the same run;
`--scheduler local:2` starts a `distributed.LocalCluster` of 2 worker processes (one thread each)
and stops it, inside the timed command. Results equal to the local run: isotropy to 1e-6, hubness
k-occurrence exactly ({'yes' if iso['same'] and hub['same'] else 'NO'}).

| workload | local | local:2 | ratio | peak RSS local / local:2 (client) |
|---|---|---|---|---|
| `isotropy`, {count(args.rows)} × {args.dim} float32 ({gb:.2f} GB) | {secs(iso['local'])} | {secs(iso['dask'])} | {ratio(iso['dask'] / iso['local'])} | {mib(iso['rss_local'])} / {mib(iso['rss_dask'])} |
| `hubness -k 10` (exact), {count(args.knn_rows)} × {args.knn_dim} float32 | {secs(hub['local'])} | {secs(hub['dask'])} | {ratio(hub['dask'] / hub['local'])} | {mib(hub['rss_local'])} / {mib(hub['rss_dask'])} |

What the cluster costs (one LocalCluster(2), measured in the library):

| item | time |
|---|---|
| start a LocalCluster(2) + client | {secs(costs['start'])} |
| stop it | {secs(costs['stop'])} |
| one task (submit + result of a no-op, 400 in flight) | {costs['per_task'] * 1e3:.2f} ms |
| one pass part over an empty range (a source travels, opens its file) | {costs['per_part'] * 1e3:.2f} ms |
| the isotropy pass alone (moments + row statistics, faster of 2), local | {secs(costs['pass_local'])} |
| the same pass on the running cluster ({costs['parts']} parts, faster of 2) | {secs(costs['pass_dask'])} ({ratio(costs['pass_dask'] / costs['pass_local'])}) |

The whole-command ratio is the price of the scale-out path on one 2-core machine — cluster
start-up and stop, pickling the source to each task, the merge of the parts — against an
in-process pass that already uses both cores (threaded BLAS, HDF5 reads); the pass-alone row
shows what remains once a cluster is running. Worker processes read the file themselves (shared
filesystem), so the client holds only the merged accumulators (peak RSS above: the client's).
"""
    write_section(args.markdown, text)
    checks.exit()


if __name__ == "__main__":
    main()
