"""Shared test helpers: writing small HDF5 dumps and running the ``geomkit`` command (in-process
through click's CliRunner by default; as a subprocess where the process is the point)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ORACLES = DATA / "oracles"
REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def geomkit_executable() -> str:
    """The installed console script next to the running interpreter (not CliRunner)."""
    candidate = Path(sys.executable).parent / "geomkit"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("geomkit")
    if found is None:
        raise RuntimeError("the geomkit console script is not installed (pip install -e .)")
    return found


def run_cli_subprocess(*args, input_text=None, check_code=None, env=None):
    """Run ``geomkit ARGS`` as a user would, in its own process (the console script); returns a
    CompletedProcess (text mode). For what a subprocess is the point of: signals, environment
    variables read at import, the installed script itself."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONWARNINGS", "ignore")
    if env:
        full_env.update(env)
    proc = subprocess.run([geomkit_executable(), *map(str, args)], capture_output=True, text=True,
                          input=input_text, env=full_env, timeout=600)
    if check_code is not None:
        assert proc.returncode == check_code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def run_cli(*args, input_text=None, check_code=None, env=None):
    """Run ``geomkit ARGS`` in this process through click's CliRunner (the same entry point as
    the console script, stdout and stderr apart); returns an object with ``returncode``,
    ``stdout`` and ``stderr`` like a CompletedProcess. An uncaught exception becomes exit 1 with
    its traceback on stderr, as in a real process. With ``env`` or ``input_text`` it runs as a
    subprocess (:func:`run_cli_subprocess`)."""
    if env is not None or input_text is not None:
        return run_cli_subprocess(*args, input_text=input_text, check_code=check_code, env=env)
    hardening = str(Path(__file__).parent / "hardening")
    if hardening not in sys.path:
        sys.path.insert(0, hardening)
    from badfiles import invoke  # the console script's main() through CliRunner

    code, out, err, tb = invoke(args)
    if tb:  # an uncaught exception: exit 1 with its traceback, as in a real process
        code, err = 1, err + tb
    proc = subprocess.CompletedProcess(["geomkit", *map(str, args)], code, out, err)
    if check_code is not None:
        assert proc.returncode == check_code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def run_json(*args):
    """Run ``geomkit ARGS --json`` expecting success; return the parsed JSON."""
    proc = run_cli(*args, "--json", "--quiet", check_code=0)
    return json.loads(proc.stdout)


def write_h5(path, x=None, *, dataset="embeddings", **extra):
    """Write a dump: ``x`` under ``dataset`` and any extra datasets (strings become UTF-8)."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        if x is not None:
            f.create_dataset(dataset, data=x)
        for name, values in extra.items():
            values = np.asarray(values)
            if values.dtype.kind in ("U", "O"):
                f.create_dataset(name, data=np.array([str(v) for v in values], dtype=object),
                                 dtype=h5py.string_dtype("utf-8"))
            else:
                f.create_dataset(name, data=values)
    return path


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def oracle_json():
    def load(name):
        return json.loads((ORACLES / name).read_text())
    return load
