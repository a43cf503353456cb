"""Long passes show progress on a terminal (rows done, rate, time left), locally and on Dask;
nothing with --quiet or when stderr is not a terminal (issue #16)."""

from __future__ import annotations

import os
import pty
import subprocess

import numpy as np
import pytest

from conftest import geomkit_executable, run_cli_subprocess, write_h5


def run_on_terminal(*args) -> tuple[int, str]:
    """Run ``geomkit ARGS`` with stderr on a pseudo-terminal; returns (exit code, what the
    terminal showed)."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="120")
    proc = subprocess.Popen([geomkit_executable(), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=slave, env=env)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    proc.stdout.read()
    os.close(master)
    return proc.wait(timeout=300), shown.decode(errors="replace")


@pytest.fixture(scope="module")
def slow_dump(tmp_path_factory):
    """Chord depth of 20 000 items against themselves in 256 dimensions: the REF pass takes ~1.7 s
    on 2 idle cores (a bar appears after one second; 12 000 rows took ~1.0 s, borderline)."""
    root = tmp_path_factory.mktemp("progress")
    rng = np.random.default_rng(0)
    ref = write_h5(root / "ref.h5", rng.standard_normal((20_000, 256)).astype(np.float32))
    return ref


def test_a_long_pass_shows_rows_rate_and_time_left(slow_dump):
    ref = slow_dump
    code, shown = run_on_terminal("depth", ref, "--depth", "chord", "--json",
                                  "--memory", "32MB")
    assert code == 0
    assert "depth: REF" in shown and "rows/s" in shown  # tqdm: n/total rows [elapsed<left, rate]
    assert "<" in shown and "%" in shown


def test_quiet_and_a_pipe_show_nothing(slow_dump):
    ref = slow_dump
    code, shown = run_on_terminal("depth", ref, "--depth", "chord", "--json", "--quiet",
                                  "--memory", "32MB")
    assert code == 0 and shown.strip() == ""
    proc = run_cli_subprocess("depth", ref, "--depth", "chord", "--json",
                              "--memory", "32MB", check_code=0)
    assert proc.stderr == ""  # stderr is a pipe here


def test_the_exact_knn_pass_shows_progress(tmp_path):
    rng = np.random.default_rng(1)
    path = write_h5(tmp_path / "knn.h5", rng.standard_normal((30_000, 128)).astype(np.float32))
    code, shown = run_on_terminal("hubness", path, "-k", "10", "--json")
    assert code == 0
    assert "kNN" in shown and "%" in shown


def test_dask_tasks_show_progress(slow_dump):
    ref = slow_dump
    code, shown = run_on_terminal("depth", ref, "--depth", "chord", "--json", "--memory", "32MB",
                                  "--scheduler", "local:2")
    assert code == 0
    assert "depth: REF" in shown and "rows/s" in shown
