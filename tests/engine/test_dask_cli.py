"""Every command with --scheduler gives the local backend's numbers (issue #16).

One LocalCluster of 2 worker processes serves the module; the commands reach it as a user
reaches an existing cluster (``--scheduler tcp://HOST:PORT``), in this process. ``local:N``
(geomkit starts and stops its own cluster) and ``GEOMKIT_SCHEDULER`` are run as real processes.
Tolerances: 1e-6 relative on float32 dumps and 1e-9 on float64 ones, where the summation order of
the parts legitimately differs; counts (k-occurrence, rows, ids) exactly.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import h5py
import numpy as np
import pytest

from conftest import run_cli, run_cli_subprocess, write_h5

distributed = pytest.importorskip("distributed")
import distributed.diagnostics.plugin  # noqa: E402

N, D = 3000, 24


def _dump(path, dtype, seed=1, shift=0.3):
    """Anisotropic data (distinct covariance eigenvalues: whitening is well conditioned), ids
    and three labels."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, D)) * np.geomspace(3.0, 0.1, D) + shift).astype(dtype)
    ids = np.array([f"item{i}" for i in range(N)])
    write_h5(path, x, ids=ids, labels=np.array([f"c{i % 3}" for i in range(N)]))
    return x


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as lc, Client(lc) as client:
        client.register_plugin(TaskCounter())
        yield lc.scheduler_address, client


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    out = {}
    for name, dtype in (("f32", np.float32), ("f64", np.float64)):
        x = _dump(root / f"a_{name}.h5", dtype)
        rng = np.random.default_rng(7)
        y = (x[:, :16] @ rng.standard_normal((16, 20)) + 0.2 * rng.standard_normal((N, 20)))
        write_h5(root / f"b_{name}.h5", y.astype(dtype), ids=np.array([f"item{i}" for i in range(N)]))
        _dump(root / f"t_{name}.h5", dtype, seed=3, shift=0.5)  # a shifted test set for depth
        out[name] = {k: str(root / f"{k}_{name}.h5") for k in ("a", "b", "t")}
    out["root"] = root
    return out


def assert_same(local, remote, rel: float, where: str = ""):
    """Equal structures; floats within ``rel`` relative (absolute near 0), the rest exactly."""
    if isinstance(local, dict):
        assert set(local) == set(remote), (where, set(local) ^ set(remote))
        for key in local:
            assert_same(local[key], remote[key], rel, f"{where}/{key}")
    elif isinstance(local, list):
        assert len(local) == len(remote), where
        for i, (u, v) in enumerate(zip(local, remote)):
            assert_same(u, v, rel, f"{where}[{i}]")
    elif isinstance(local, float) and isinstance(remote, (float, int)):
        assert remote == pytest.approx(local, rel=rel, abs=rel), where
    else:
        assert local == remote, (where, local, remote)


class TaskCounter(distributed.diagnostics.plugin.SchedulerPlugin):
    """Counts the tasks the scheduler saw finish."""

    name = "geomkit-task-counter"

    def __init__(self):
        self.done = 0

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory":
            self.done += 1


def tasks_run(client) -> int:
    """Tasks finished on the cluster so far."""
    return client.run_on_scheduler(
        lambda dask_scheduler: dask_scheduler.plugins[TaskCounter.name].done)


def both(args, address, out=None, client=None):
    """The JSON of ``geomkit ARGS`` locally and with --scheduler ADDRESS (``out``: an output
    path, returned as its two copies); with ``client``, the second run must have run tasks on
    that cluster (the option acts)."""
    results, files = [], []
    before = tasks_run(client) if client is not None else None
    for extra in ([], ["--scheduler", address]):
        call = list(args)
        if out is not None:
            path = f"{out}.{len(results)}.h5"
            call += ["-o", path]
            files.append(path)
        proc = run_cli(*call, *extra, "--json", "--quiet", check_code=0)
        results.append(json.loads(proc.stdout))
    if client is not None:
        assert tasks_run(client) > before, f"{args[0]}: --scheduler ran no task on the cluster"
    for r in results:  # paths of the outputs differ by construction
        if isinstance(r, dict):
            r.pop("output", None), r.pop("map_file", None)
    return results, files


TOL = {"f32": 1e-6, "f64": 1e-9}
COMMANDS = {
    "info": lambda d: ["info", d["a"], "--scan"],
    "norms": lambda d: ["norms", d["a"], "--labels", "labels"],
    "isotropy": lambda d: ["isotropy", d["a"]],
    "isotropy-layers-free": lambda d: ["isotropy", d["a"], "--dims", "8,16"],
    "depth-cosine": lambda d: ["depth", d["a"], d["t"]],
    "depth-chord": lambda d: ["depth", d["a"], d["t"], "--depth", "chord"],
    "depth-split": lambda d: ["depth", d["a"], "--split-by", "labels", "--ref", "c0",
                              "--test", "c1"],
    "depth-spatial-self": lambda d: ["depth", d["a"], "--depth", "spatial"],
    "compare": lambda d: ["compare", d["a"], d["b"], "-k", "5"],
    "hubness": lambda d: ["hubness", d["a"], "-k", "10", "--labels", "labels"],
    "hubness-euclidean": lambda d: ["hubness", d["a"], "-k", "5", "--metric", "euclidean"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["f32", "f64"])
def test_command_on_the_cluster_equals_local(cluster, dumps, name, kind):
    address, client = cluster
    (local, remote), _ = both(COMMANDS[name](dumps[kind]), address, client=client)
    assert_same(local, remote, TOL[kind])


@pytest.mark.parametrize("kind", ["f32", "f64"])
@pytest.mark.parametrize("steps", [["--center", "--whiten"], ["--normalize", "--abtt", "2"]])
def test_transform_on_the_cluster_writes_the_same_file(cluster, dumps, tmp_path, kind, steps):
    address, client = cluster
    (local, remote), (fa, fb) = both(["transform", dumps[kind]["a"], *steps, "--drop-zero"],
                                     address, out=tmp_path / "t", client=client)
    assert_same(local, remote, TOL[kind])
    with h5py.File(fa) as a, h5py.File(fb) as b:
        xa, xb = a["embeddings"][()], b["embeddings"][()]
        assert xa.shape == xb.shape == (N, D - (0 if "--center" in steps else 0))
        scale = np.abs(xa).max()
        np.testing.assert_allclose(xb, xa, rtol=0, atol=50 * TOL[kind] * scale)
        assert list(a["ids"][()]) == list(b["ids"][()])


@pytest.mark.parametrize("kind", ["f32", "f64"])
@pytest.mark.parametrize("method", ["procrustes", "lstsq", "affine"])
def test_translate_fit_on_the_cluster_equals_local(cluster, dumps, tmp_path, kind, method):
    address, client = cluster
    d = dumps[kind]
    (local, remote), (fa, fb) = both(["translate", "fit", d["a"], d["b"], "--method", method,
                                      "--train-fraction", "0.8"], address, out=tmp_path / "m",
                                     client=client)
    assert_same(local, remote, 100 * TOL[kind])  # a solve after the products
    with h5py.File(fa) as a, h5py.File(fb) as b:
        wa, wb = a["geomkit_translate/matrix"][()], b["geomkit_translate/matrix"][()]
        np.testing.assert_allclose(wb, wa, rtol=0, atol=100 * TOL[kind] * np.abs(wa).max())


def test_dropped_rows_are_counted_on_the_cluster(cluster, tmp_path):
    address, _ = cluster
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 8)).astype(np.float32)
    x[[3, 1500]] = np.nan
    x[[10, 1999]] = 0
    path = write_h5(tmp_path / "bad.h5", x)
    (local, remote), _ = both(["norms", path, "--drop-nonfinite", "--drop-zero",
                               "--no-likelihood"], address)
    assert remote["n_dropped"] == local["n_dropped"] == 4
    assert remote["n_dropped_zero"] == 2
    assert_same(local, remote, 1e-6)
    (local, remote), _ = both(["info", path, "--scan"], address)
    assert remote["nonfinite_rows"] == 2 and remote["first_nonfinite_rows"] == [3, 1500]
    assert remote["first_zero_rows"] == [10, 1999]
    assert_same(local, remote, 1e-6)
    # without dropping: the same input error as locally (exit 3, the rows named)
    proc = run_cli("norms", path, "--scheduler", address, "--quiet", check_code=3)
    assert "rows 3, 1500" in proc.stderr and "Traceback" not in proc.stderr


def test_local_n_starts_and_stops_its_own_cluster(dumps):
    """``--scheduler local:2`` in a real process, and GEOMKIT_SCHEDULER as the default."""
    d = dumps["f32"]
    local = json.loads(run_cli("isotropy", d["a"], "--json", "--quiet", check_code=0).stdout)
    own = run_cli_subprocess("isotropy", d["a"], "--json", "--quiet", "--scheduler", "local:2",
                             check_code=0)
    assert_same(local, json.loads(own.stdout), 1e-6)
    assert own.stderr == ""  # the cluster's own logging is not the user's output
    env = run_cli_subprocess("isotropy", d["a"], "--json", "--quiet",
                             env={"GEOMKIT_SCHEDULER": "local:2"}, check_code=0)
    assert_same(local, json.loads(env.stdout), 1e-6)


def test_scheduler_is_refused_where_it_cannot_act(dumps):
    d = dumps["f32"]
    proc = run_cli("info", d["a"], "--scheduler", "local:2", check_code=2)
    assert "--scheduler" in proc.stderr and "cannot act" in proc.stderr
    proc = run_cli("translate", "fit", d["a"], d["b"], "--method", "unsupervised", "-o",
                   str(dumps["root"] / "u.h5"), "--scheduler", "local:2", check_code=2)
    assert "--scheduler cannot act" in proc.stderr
    for bad in ("local:0", "local", "http://x", "nowhere:80"):
        proc = run_cli("norms", d["a"], "--scheduler", bad, check_code=2)
        assert "--scheduler" in proc.stderr and "Traceback" not in proc.stderr
    # the environment variable sets a default: where no pass runs, it is ignored, not refused
    run_cli_subprocess("info", d["a"], "--json", env={"GEOMKIT_SCHEDULER": "local:2"},
                       check_code=0)


def test_unreachable_scheduler_is_a_usage_error(dumps, monkeypatch):
    import socket

    from geomkit.engine import cluster as cluster_module

    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", "2s")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("norms", dumps["f32"]["a"], "--scheduler", f"tcp://127.0.0.1:{port}",
                   check_code=2)
    assert f"tcp://127.0.0.1:{port}" in proc.stderr and "no Dask scheduler answered" in proc.stderr


def test_a_worker_that_cannot_see_the_file_is_named(cluster, tmp_path):
    """The workers open the file themselves: one that cannot gets an input error naming the
    worker and the path (here the file moved after the command opened it)."""
    from geomkit import Space
    from geomkit.engine import DaskExecutor
    from geomkit.errors import InputError

    address, client = cluster
    path = write_h5(tmp_path / "moved.h5", np.ones((500, 4), dtype=np.float32))
    space = Space.open(str(path), executor=DaskExecutor(client))
    os.rename(path, tmp_path / "elsewhere.h5")
    with pytest.raises(InputError) as err:
        space.moments()
    message = str(err.value)
    assert "Dask worker tcp://" in message and str(path) in message
    assert "no such file" in message and "same path" in message


class SlowMoments:
    """The moment accumulator, slowed down so that a worker can be killed in mid-pass."""

    def __init__(self):
        from geomkit.engine.moments import MomentAccumulator

        self.acc = MomentAccumulator()

    def consume(self, rows, x):
        time.sleep(0.25)
        self.acc.consume(rows, x)

    def fresh(self):
        return SlowMoments()

    def merge(self, other):
        self.acc.merge(other.acc)
        return self


def test_a_worker_killed_in_mid_pass_changes_nothing(tmp_path):
    """Kill one of the two worker processes while the pass runs: Dask runs its tasks again on
    the restarted worker and the result equals the local pass."""
    import cloudpickle
    import sys

    from distributed import Client, LocalCluster

    from geomkit import Space
    from geomkit.engine import DaskExecutor

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    rng = np.random.default_rng(0)
    path = write_h5(tmp_path / "kill.h5", rng.standard_normal((40_000, 16)))
    local = SlowMoments()
    Space.open(str(path), memory=2**20).run(local)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as lc, Client(lc) as client:
        pids = client.run(os.getpid)
        remote = SlowMoments()
        space = Space.open(str(path), memory=2**20,
                           executor=DaskExecutor(client, partitions=8))
        killed = []

        def kill():
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            killed.append(time.perf_counter())

        killer = threading.Timer(1.0, kill)
        killer.start()
        space.run(remote)
        ended = time.perf_counter()
        killer.join()
        assert killed and killed[0] < ended  # the worker died while the pass ran
        client.wait_for_workers(2, timeout=60)
        assert set(client.run(os.getpid).values()) != set(pids.values())  # one was replaced
    a, b = local.acc.result(), remote.acc.result()
    assert a.n == b.n == 40_000
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.scatter, a.scatter, rtol=1e-12)


def test_ctrl_c_with_a_local_cluster_leaves_one_line_and_no_process(tmp_path):
    """Interrupted while its LocalCluster works: the one-line message (exit 130), and the worker
    processes end with the command."""
    import subprocess

    import psutil

    from conftest import geomkit_executable

    rng = np.random.default_rng(0)
    path = write_h5(tmp_path / "long.h5", rng.standard_normal((200_000, 128)).astype(np.float32))
    proc = subprocess.Popen([geomkit_executable(), "depth", str(path), "--depth", "chord",
                             "--json", "--scheduler", "local:2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    me = psutil.Process(proc.pid)
    deadline = time.time() + 120
    while time.time() < deadline and len(me.children(recursive=True)) < 3:
        time.sleep(0.2)  # the resource tracker and two workers are up
    time.sleep(2.0)
    children = me.children(recursive=True)
    assert len(children) >= 2
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["geomkit: error: interrupted (Ctrl-C); nothing was written."]
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
