"""Regenerate the performance record, docs/performance.md, from the benchmarks.

    .venv/bin/python benchmarks/run_all.py                    # every benchmark, full size (hours)
    .venv/bin/python benchmarks/run_all.py --only depth,axes  # rerun some; keep the other sections
    .venv/bin/python benchmarks/run_all.py --smoke            # tiny sizes and agreement checks (CI)
    .venv/bin/python benchmarks/run_all.py --list

Each benchmark is a script in benchmarks/ that takes ``--markdown PATH`` (writes its section,
headed ``## <name> — `benchmarks/<file>.py` …``) and ``--smoke``. A full run runs each listed
benchmark with its full-size arguments into a temporary folder, then writes the record: a header
(this machine: CPU model, cores and RAM from /proc; Python, numpy, BLAS and torch versions; the
date) and the sections in the order of BENCHMARKS. A section that was not rerun (``--only``), whose
benchmark failed, or whose script does not exist (yet) is kept from the existing record; sections
of the existing record that belong to no benchmark (historical decisions such as the removed
compiled kernel) are kept, in their order, after the benchmark sections. ``--smoke`` writes no
record and exits 1 when any present benchmark failed (a missing optional script is skipped, and
said so).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORD = ROOT / "docs" / "performance.md"
sys.path.insert(0, str(HERE))
from _record import cpu_model, ram_gib, today  # noqa: E402

# (name, script, full-size arguments), in the record's order: the issue #16 list (the floors and
# peers of isotropy, kNN, hubness, depth, infogain), then the commands as they landed, then the
# whole-pipeline and scale rows. Scripts that do not exist yet are skipped with a message; every
# one takes --smoke and --markdown PATH.
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("isotropy", "isotropy.py", ["--repeat", "3"]),
    ("hubness", "hubness.py", ["--repeat", "3"]),
    ("knn_approx", "knn_approx.py", []),
    ("depth", "depth.py", []),
    ("infogain", "infogain.py", []),
    ("axes", "axes.py", []),
    ("compare", "compare.py", []),
    ("translate", "translate.py", []),
    ("translate_real", "translate_real.py", []),
    ("report", "report.py", []),
    ("drift", "drift.py", []),
    ("intdim", "intdim.py", []),
    ("end_to_end", "end_to_end.py", []),
    ("out_of_core", "out_of_core.py", []),
    ("dask", "dask_overhead.py", []),
]
NAMES = [b[0] for b in BENCHMARKS]
SMOKE_TIMEOUT = 300  # seconds per benchmark's smoke run (each aims at < 30 s on 2 idle cores)


def split_sections(text: str) -> tuple[str, list[str]]:
    """(the text before the first ``## `` heading, the sections: each from its heading on)."""
    parts = re.split(r"(?m)^(?=## )", text)
    if parts and not parts[0].startswith("## "):
        return parts[0], [p for p in parts[1:]]
    return "", parts


def section_owner(section: str) -> str | None:
    """The benchmark a section belongs to: its heading's first word is the benchmark's name, or
    the heading names the benchmark's script (`benchmarks/<file>.py`); None for other sections."""
    heading = section.splitlines()[0]
    first = heading[3:].split(" ", 1)[0].strip("`:,")
    if first in NAMES:
        return first
    for name, script, _ in BENCHMARKS:
        if f"benchmarks/{script}" in heading:
            return name
    return None


def splice(existing: str, header: str, new: dict[str, str]) -> str:
    """The record: ``header``, then per benchmark (in BENCHMARKS order) its new section or else
    its existing one, then the existing sections that belong to no benchmark."""
    _, old = split_sections(existing)
    owned: dict[str, str] = {}
    other: list[str] = []
    for sec in old:
        owner = section_owner(sec)
        if owner is None:
            other.append(sec)
        elif owner not in owned:
            owned[owner] = sec
        else:  # two old sections of one benchmark: keep both, the second after the first
            owned[owner] = owned[owner].rstrip() + "\n\n" + sec
    body = []
    for name in NAMES:
        sec = new.get(name) or owned.get(name)
        if sec:
            body.append(sec.strip() + "\n")
    body += [sec.strip() + "\n" for sec in other]
    return header.rstrip() + "\n\n" + "\n".join(body)


def blas_version() -> str:
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                return (f"{info.get('internal_api')} {info.get('version')}, "
                        f"{info.get('num_threads')} threads")
    except Exception:  # noqa: BLE001 - the header must not fail the record
        pass
    return "unknown BLAS"


def header() -> str:
    import numpy

    try:
        import torch

        torch_v = f"torch {torch.__version__} ({'CUDA' if torch.cuda.is_available() else 'CPU'})"
    except ImportError:
        torch_v = "no torch"
    ram = ram_gib()
    return "\n".join([
        "# Performance",
        "",
        f"Regenerated by `benchmarks/run_all.py` on {today()}, on {cpu_model()}: "
        f"{os.cpu_count()} cores, " + (f"{ram:.0f} GiB RAM" if ram else "RAM unknown")
        + f"; Python {platform.python_version()}, numpy {numpy.__version__} ({blas_version()}), "
        f"{torch_v}. Each section states its own date, machine and load (a section kept from an "
        "earlier run by `--only`, or written by hand before the record was generated, keeps "
        "its own).",
        "",
        "Unless a section says otherwise: geomkit's time is the whole command in a fresh process "
        "(imports, reads, every pass, the output) with its peak RSS; the peer runs side by side in "
        "the same invocation, so the ratio that matters is always measured within one run; files "
        "are read from the page cache (warm) after being written; the physical floor is named in "
        "each section (the read, XᵀX, the products a method cannot avoid).",
        "",
        "Reproduce: `.venv/bin/python benchmarks/run_all.py` (every benchmark, full size: hours), "
        "`--only NAME[,NAME]` (some sections, the others kept), `--smoke` (tiny sizes and each "
        "benchmark's agreement checks; CI runs it). Sections in order: "
        + ", ".join(NAMES) + "; then the kept historical notes.",
    ])


def present(only: list[str] | None) -> list[tuple[str, Path, list[str]]]:
    chosen = []
    for name, script, args in BENCHMARKS:
        if only is not None and name not in only:
            continue
        path = HERE / script
        if not path.exists():
            print(f"skip {name}: benchmarks/{script} does not exist (yet)", flush=True)
            continue
        chosen.append((name, path, args))
    return chosen


def run_one(name: str, path: Path, argv: list[str], log: Path, timeout: float | None) -> bool:
    cmd = [sys.executable, str(path), *argv]
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as fh:
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                  timeout=timeout)
            ok = proc.returncode == 0
            status = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            ok, status = False, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    print(f"   {name}: {'ok' if ok else 'FAILED (' + status + ')'} in {seconds:.0f} s "
          f"(log {log})", flush=True)
    if not ok:
        tail = log.read_text(errors="replace")[-3000:]
        print("   " + tail.replace("\n", "\n   "), flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated benchmark names to rerun; the other sections "
                                   "are kept from the existing record")
    ap.add_argument("--smoke", action="store_true",
                    help="run every benchmark's smoke mode (no record written); exit 1 on failure")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--output", default=str(RECORD), help="the record to write (default: %(default)s)")
    ap.add_argument("--logs", help="folder for the benchmarks' logs and sections (default: a "
                                   "temporary folder)")
    args = ap.parse_args()
    if args.list:
        for name, script, full in BENCHMARKS:
            state = "" if (HERE / script).exists() else "  (absent)"
            print(f"{name:15s} benchmarks/{script} {' '.join(full)}{state}")
        return 0
    only = None
    if args.only:
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in only if n not in NAMES]
        if unknown:
            print(f"run_all.py: --only names unknown benchmark(s) {', '.join(unknown)}; known: "
                  f"{', '.join(NAMES)}", file=sys.stderr)
            return 2
    logs = Path(args.logs or tempfile.mkdtemp(prefix="geomkit_run_all_"))
    logs.mkdir(parents=True, exist_ok=True)
    chosen = present(only)
    failed: list[str] = []
    new: dict[str, str] = {}
    for name, path, full in chosen:
        md = logs / f"{name}.md"
        if args.smoke:
            ok = run_one(name, path, ["--smoke"], logs / f"{name}.smoke.log", SMOKE_TIMEOUT)
        else:
            ok = run_one(name, path, [*full, "--markdown", str(md)], logs / f"{name}.log", None)
            if ok and md.exists() and md.read_text().startswith("## "):
                new[name] = md.read_text()
            elif ok:
                ok = False
                print(f"   {name}: wrote no section starting with '## ' to {md}", flush=True)
        if not ok:
            failed.append(name)
    if not args.smoke:
        out = Path(args.output)
        existing = out.read_text() if out.exists() else ""
        out.write_text(splice(existing, header(), new))
        print(f"wrote {out}: {len(new)} section(s) regenerated"
              + (f" ({', '.join(new)})" if new else "")
              + (f"; kept from before: {', '.join(failed)}" if failed else ""), flush=True)
    print(f"{len(chosen) - len(failed)} passed, {len(failed)} failed"
          + (f": {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
