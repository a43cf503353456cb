"""Run a measurement in a fresh Python process and report its own peak RSS."""

from __future__ import annotations

import os
import sys


def run_child(code: str, name: str) -> tuple[str, float]:
    """Execute ``code`` with this interpreter; returns (its stdout, its peak RSS in MiB)."""
    out_path = f"/tmp/geomkit_bench_{name}.out"
    pid = os.fork()
    if pid == 0:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.execv(sys.executable, [sys.executable, "-c", code])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise RuntimeError(f"{name} failed with status {status}")
    with open(out_path) as fh:
        return fh.read(), usage.ru_maxrss / 1024


_TIMED = r"""
import subprocess, sys, time
t = time.perf_counter()
p = subprocess.run({argv!r}, capture_output=True, text=True)
sys.stderr.write(p.stderr[-3000:])
print(p.stdout)
print("SECONDS", time.perf_counter() - t)
"""


def time_command(argv: list, name: str) -> tuple[str, float, float]:
    """Run the command ``argv`` whole (its own process: imports, reads, writes) from a fresh
    child; returns (its stdout, wall seconds, peak RSS in MiB — the child's peak covers the
    command it waited on)."""
    out, rss = run_child(_TIMED.format(argv=[str(a) for a in argv]), name)
    body, seconds = out.rsplit("SECONDS", 1)
    return body, float(seconds), rss


def run_child_limited(code: str, name: str, timeout: float) -> tuple[str | None, float, float]:
    """``run_child`` stopped after ``timeout`` seconds: returns (its stdout, or None when it was
    stopped; its peak RSS in MiB; wall seconds)."""
    import signal
    import time

    out_path = f"/tmp/geomkit_bench_{name}.out"
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.execv(sys.executable, [sys.executable, "-c", code])
    stopped = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            stopped = True
            break
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if stopped:
        return None, usage.ru_maxrss / 1024, seconds
    if status != 0:
        raise RuntimeError(f"{name} failed with status {status}")
    with open(out_path) as fh:
        return fh.read(), usage.ru_maxrss / 1024, seconds
