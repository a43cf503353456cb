"""Every benchmark's smoke mode (tiny sizes, its agreement checks against the peer or a closed
form), so that none of the scripts behind docs/performance.md can rot. Slow: `make test-slow`
(CI) runs them; each aims at < 30 s on 2 idle cores. A benchmark whose script does not exist (yet)
is skipped; a peer that is not installed or not fetchable is skipped inside the script, and said so.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _run_all():
    spec = importlib.util.spec_from_file_location("geomkit_bench_run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN_ALL = _run_all()


@pytest.mark.slow
@pytest.mark.parametrize("name,script", [(n, s) for n, s, _ in RUN_ALL.BENCHMARKS],
                         ids=[n for n, _, _ in RUN_ALL.BENCHMARKS])
def test_benchmark_smoke(name, script):
    path = BENCH / script
    assert path.exists(), f"run_all.py lists benchmarks/{script}, which does not exist"
    proc = subprocess.run([sys.executable, str(path), "--smoke"], capture_output=True, text=True,
                          timeout=RUN_ALL.SMOKE_TIMEOUT, cwd=BENCH.parent)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} --smoke failed (exit {proc.returncode}):\n{out[-4000:]}"
    assert "FAIL" not in proc.stdout, out[-4000:]
