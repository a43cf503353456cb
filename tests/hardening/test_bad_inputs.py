"""The permanent bad-input suite: every case of ``badfiles.py`` through every command it applies to.

In-process (click's CliRunner on the console script's ``geomkit.cli.main.main``, which wraps the
click group ``geomkit.cli.main.cli``; stderr captured apart from stdout) for speed, a handful of the same runs through the installed ``geomkit`` command, and the huge sparse
dataset (declared (10**9, 768), nothing or one chunk written) as subprocesses watched for time and
peak memory.

Contract per run (``badfiles.check_run``): exit code allowed for the case, no traceback, on failure
one line ``geomkit: error: ...`` naming the file (and dataset) and the problem and nothing on
stdout, on success strict finite JSON; input bytes unchanged; after a failure no new file
(temporary ``.X.tmp`` or output) in the folders involved. In-process runs also fail on a numpy
RuntimeWarning raised in geomkit's code (a NaN/Inf made and used silently).
"""

from __future__ import annotations

import os
import subprocess
import time
import warnings

import pytest

import badfiles
from badfiles import (bad_cases, build_case, check_run, invoke, make_common, snapshot,
                      spec_by_name)
from conftest import geomkit_executable, run_cli_subprocess as run_cli

RUN_IDS = badfiles.run_ids()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    cases = {c.name: c for c in bad_cases(root)}
    return root, cases


def contract_problems(case, run, code, out, err, tb, before, after):
    if tb:  # an uncaught exception: report it alone (exit 1 and an empty stderr follow from it)
        problems = [f"uncaught exception: {tb.strip().splitlines()[-1]}"]
    else:
        problems = check_run(run, case, code, out, err)
    allowed_new = {str(p) for p in run.outputs} if code == 0 else set()
    for path, digest in before.items():
        if path not in after:
            problems.append(f"input removed: {path}")
        elif after[path] != digest:
            problems.append(f"input changed: {path}")
    new = sorted(set(after) - set(before) - allowed_new)
    if new:
        problems.append(f"files left behind: {[os.path.basename(p) for p in new]}")
    return problems


def numeric_warnings(caught) -> list[str]:
    """NaN/Inf made inside geomkit's own code (numpy's RuntimeWarning: invalid value, overflow,
    divide by zero): a value that silently steers a result (a NaN distance ranks anywhere). Code
    that means it says so with ``np.errstate``."""
    out = []
    for w in caught:
        path = str(w.filename)
        if issubclass(w.category, RuntimeWarning) and "/geomkit/" in path and "/tests/" not in path:
            where = path[path.rindex("/geomkit/") + 1:]
            text = f"RuntimeWarning at {where}:{w.lineno}: {w.message}"
            if text not in out:
                out.append(text)
    return out


def _cleanup(run):
    for p in run.outputs:
        if os.path.lexists(p):
            os.remove(p)


@pytest.mark.parametrize("case_name,slot", RUN_IDS, ids=[f"{c}-{s}" for c, s in RUN_IDS])
def test_bad_input(built, case_name, slot):
    root, cases = built
    case = cases[case_name]
    run = next(r for r in case.runs if r.slot == slot)
    folders = [case.folder, root / "common"]
    before = snapshot(folders)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err, tb = invoke(run.argv)
    after = snapshot(folders)
    problems = contract_problems(case, run, code, out, err, tb, before, after)
    problems += numeric_warnings(caught)
    _cleanup(run)
    assert not problems, (f"geomkit {' '.join(map(str, run.argv))}\n  exit {code}\n  stderr: "
                          f"{err.strip()[:500]}\n  " + "\n  ".join(problems)
                          + (f"\n{tb[-1500:]}" if tb else ""))


def test_every_command_is_covered():
    """The suite reaches every command and every input position at least once."""
    slots = {badfiles.base_slot(s) for _, s in RUN_IDS}
    assert set(badfiles.SLOTS) <= slots, set(badfiles.SLOTS) - slots
    assert len(badfiles.CASE_NAMES) == len(set(badfiles.CASE_NAMES))


# --------------------------------------------------------------------------- end to end (subprocess)

E2E = [("nan_rows", "isotropy"), ("truncated_contig_0.5", "info"), ("text_file", "transform"),
       ("missing_file", "norms"), ("dtype_int64", "hubness"),
       ("external_link_missing_as_dataset", "depth"), ("soft_link_dangling_as_dataset", "info"),
       ("f32_1e30", "isotropy"), ("zero_rows", "depth"), ("corpus_non_utf8", "infogain_corpus"),
       ("labels_float", "hubness[--knn-error]")]


@pytest.mark.parametrize("case_name,slot", E2E, ids=[f"{c}-{s}" for c, s in E2E])
def test_bad_input_subprocess(tmp_path, case_name, slot):
    common = make_common(tmp_path / "common")
    case = build_case(spec_by_name(case_name), tmp_path, common)
    run = next(r for r in case.runs if r.slot == slot)
    folders = [case.folder, tmp_path / "common"]
    before = snapshot(folders)
    proc = run_cli(*run.argv)
    after = snapshot(folders)
    problems = contract_problems(case, run, proc.returncode, proc.stdout, proc.stderr, "", before,
                                 after)
    assert not problems, (f"geomkit {' '.join(map(str, run.argv))}\n  exit {proc.returncode}\n  "
                          f"stderr: {proc.stderr.strip()[-800:]}\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- huge declared shape

HUGE_ROWS, HUGE_D = 10**9, 768
RSS_LIMIT_KB = 600 * 1024


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def watch(args, seconds, env=None):
    """Start ``geomkit ARGS``; poll peak RSS for ``seconds`` (or until it exits), then end it
    with SIGTERM (SIGKILL 15 s later). Returns (exit code, or None if it was still running,
    peak KB, stdout, stderr, elapsed)."""
    full_env = dict(os.environ, PYTHONWARNINGS="ignore", **(env or {}))
    proc = subprocess.Popen([geomkit_executable(), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env)
    t0 = time.monotonic()
    peak = 0
    code = None
    try:
        while time.monotonic() - t0 < seconds:
            hwm = _status_kb(proc.pid, "VmHWM")
            rss = _status_kb(proc.pid, "VmRSS")
            peak = max(peak, hwm or 0, rss or 0)
            code = proc.poll()
            if code is not None:
                break
            time.sleep(0.02)
    finally:
        elapsed = time.monotonic() - t0
        if proc.poll() is None:
            code = None
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        out, err = proc.communicate(timeout=60)
    return code, peak, out, err, elapsed


@pytest.fixture(scope="module")
def huge_empty(tmp_path_factory):
    """(10**9, 768) float32, chunked, nothing written: a few KB on disk."""
    p = badfiles.make_huge(tmp_path_factory.mktemp("huge") / "huge.h5", HUGE_ROWS, HUGE_D)
    assert p.stat().st_size < 1 << 20
    return p


@pytest.fixture(scope="module")
def huge_filled(tmp_path_factory):
    """The same shape with a non-zero fill value and one chunk of random data (~3 MB on disk), so
    that no analysis can stop early on all-zero rows."""
    import h5py
    import numpy as np

    p = tmp_path_factory.mktemp("huge") / "hugefill.h5"
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("embeddings", shape=(HUGE_ROWS, HUGE_D), dtype="float32",
                              chunks=(1024, HUGE_D), fillvalue=0.5)
        ds[0:1024] = np.random.default_rng(0).standard_normal((1024, HUGE_D)).astype("float32")
    return p


def test_info_on_huge_sparse_file_answers_quickly(huge_empty):
    before = snapshot([huge_empty.parent])
    code, peak, out, err, elapsed = watch(["info", huge_empty], 30)
    assert code == 0, (code, err[-800:])
    assert elapsed < 5, f"info took {elapsed:.1f} s on a file with nothing written (reads the data?)"
    assert peak < RSS_LIMIT_KB, f"info peaked at {peak // 1024} MB"
    obj = badfiles.parse_json_strict(out)
    assert not badfiles.nonfinite_numbers(obj)
    assert obj.get("shape") == [HUGE_ROWS, HUGE_D], obj.get("shape")
    assert snapshot([huge_empty.parent]) == before


@pytest.mark.parametrize("args", [["isotropy"], ["norms"], ["info", "--scan"], ["depth"],
                                  ["transform", "-o", "OUT", "--center"],
                                  ["drift", "HUGE"],  # REF and NEW both the huge file
                                  ["intdim", "--approximate"]],
                         ids=["isotropy", "norms", "info-scan", "depth", "transform", "drift",
                              "intdim-approximate"])
def test_streaming_commands_stay_bounded_on_huge_file(huge_filled, args):
    """10**9 rows would take hours: the command must still be working after 5 s (no early
    failure) and its peak RSS must stay under ~600 MB (no O(N) allocation beyond a few bytes a
    row, no whole-matrix read). Ended with SIGTERM, it leaves no file behind."""
    before = snapshot([huge_filled.parent])
    args = [str(huge_filled.parent / "out.h5") if a == "OUT" else
            str(huge_filled) if a == "HUGE" else a for a in args]
    code, peak, out, err, elapsed = watch([args[0], huge_filled, *args[1:], "--memory", "16MB"], 5)
    assert code is None, f"exited {code} after {elapsed:.1f} s: {err.strip()[-800:]}"
    assert peak < RSS_LIMIT_KB, f"{' '.join(args)} peaked at {peak // 1024} MB within 5 s"
    assert snapshot([huge_filled.parent]) == before


@pytest.mark.parametrize("args", [["hubness"], ["intdim", "--exact"]], ids=["hubness", "intdim"])
def test_exact_knn_on_huge_file_refuses_quickly(huge_filled, args):
    """Exact kNN needs the whole matrix: on 10**9 x 768 rows hubness and intdim --exact must
    refuse at once (exit 2 or 3, one line) without allocating it."""
    before = snapshot([huge_filled.parent])
    code, peak, out, err, elapsed = watch([args[0], huge_filled, *args[1:], "--memory", "16MB"],
                                          30)
    assert code in (2, 3), f"exit {code} after {elapsed:.1f} s: {err.strip()[-800:]}"
    assert err.strip().startswith("geomkit: error: ") and len(err.strip().splitlines()) == 1, err
    assert "hugefill.h5" in err
    assert peak < RSS_LIMIT_KB, f"{args[0]} peaked at {peak // 1024} MB"
    assert snapshot([huge_filled.parent]) == before
