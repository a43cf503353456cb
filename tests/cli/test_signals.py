"""A run ended by a signal leaves no partial output and says so in one line (exit 128 + N)."""

import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import geomkit_executable, write_h5


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_removes_the_partial_output(tmp_path, sig):
    x = np.random.default_rng(0).standard_normal((300_000, 128)).astype("f4")
    p = write_h5(tmp_path / "in.h5", x)
    out = tmp_path / "out.h5"
    proc = subprocess.Popen([geomkit_executable(), "transform", str(p), "-o", str(out), "--center",
                             "--whiten", "--abtt", "2", "--normalize", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # wait until the temporary output exists (the fits are done, rows are being written)
    while not list(tmp_path.glob(".out.h5.*.tmp")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert err.strip().count("\n") == 0 and err.startswith("geomkit: error: interrupted")
    assert "Traceback" not in err and "Aborted" not in err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.h5"]
