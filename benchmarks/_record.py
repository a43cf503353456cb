"""What every benchmark shares for the performance record (docs/performance.md).

Each benchmark takes ``--smoke`` (tiny sizes, its agreement checks, non-zero exit when one fails)
and ``--markdown PATH`` (writes its own section of the record: ``## <name> — `benchmarks/<file>.py` …``,
then the workload, the machine, geomkit's time and peak RSS, the peer side by side, the ratio and
the physical floor). ``benchmarks/run_all.py`` assembles the sections.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys


def add_record_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, quick; check the agreement assertions (exit 1 on failure)")
    ap.add_argument("--markdown", metavar="PATH",
                    help="write this benchmark's section of docs/performance.md to PATH")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def today() -> str:
    return datetime.date.today().isoformat()


def machine() -> str:
    """One line: the date, cores, RAM and the load when the measurement ended."""
    ram = ram_gib()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{today()}, {os.cpu_count()} cores ({cpu_model()}), "
            + (f"{ram:.0f} GiB RAM, " if ram else "")
            + f"load {load:.1f} at the end")


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for mod in ("numpy", "torch", "h5py", "geomkit"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except Exception:  # noqa: BLE001 - a version line must not fail the record
            pass
    return ", ".join(parts)


def write_section(path: str | None, text: str) -> None:
    if path:
        with open(path, "w") as fh:
            fh.write(text.rstrip() + "\n")
        print(f"wrote {path}", flush=True)


class Checks:
    """Agreement assertions of a smoke run: each one printed; ``exit()`` fails on any miss."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if not ok:
            self.failed.append(what)

    def skip(self, what: str) -> None:
        print("skip  " + what, flush=True)

    def exit(self) -> None:
        if self.failed:
            print(f"{len(self.failed)} check(s) failed", file=sys.stderr)
            sys.exit(1)
        print("all checks passed", flush=True)


def mib(v: float) -> str:
    return f"{v / 1024:.1f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def secs(v: float) -> str:
    if v >= 100:
        return f"{v:.0f} s"
    if v >= 10:
        return f"{v:.1f} s"
    if v >= 1:
        return f"{v:.2f} s"
    return f"{v:.3f} s"


def count(n: int) -> str:
    """1 000 000 (thin spaces are not used: a plain space, as the record writes numbers)."""
    return f"{n:,}".replace(",", " ")


def ratio(v: float) -> str:
    """A ratio as the record writes it: 1.25×, 44×, 0.46×."""
    return f"{v:.0f}×" if v >= 100 else (f"{v:.1f}×" if v >= 10 else f"{v:.2f}×")
