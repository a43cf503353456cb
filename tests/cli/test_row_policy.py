"""One row policy for every command (docs/format.md, "Rows geomkit refuses or drops").

- NaN/Inf rows: every command that reads rows refuses them (exit 3, one line naming file,
  dataset and --drop-nonfinite); with --drop-nonfinite it runs on the finite rows and reports
  ``n_dropped``.
- All-zero rows: a command that needs a direction (cosine isotropy, cosine hubness, cosine and
  chord depth, normalize) refuses them (exit 3, naming --drop-zero); a command that does not
  (norms, euclidean hubness, spatial depth, center) keeps them. With --drop-zero every command
  drops them alike and reports ``n_dropped_zero``.
- ``info --scan`` reports both kinds and drops nothing.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import run_cli, write_h5

N, D = 40, 6
NAN_ROWS, ZERO_ROWS = [4, 17], [9, 30]

# (name, argv after the input, needs a direction); "O" is replaced by an output path
COMMANDS = [
    ("transform_center", ["transform", "{in}", "--center", "-o", "{out}"], False),
    ("transform_normalize", ["transform", "{in}", "--normalize", "-o", "{out}"], True),
    ("isotropy", ["isotropy", "{in}"], True),
    ("hubness_cosine", ["hubness", "{in}", "-k", "3"], True),
    ("hubness_euclidean", ["hubness", "{in}", "-k", "3", "--metric", "euclidean"], False),
    ("depth_cosine", ["depth", "{in}", "{good}"], True),
    ("depth_chord", ["depth", "{in}", "{good}", "--depth", "chord"], True),
    ("depth_spatial", ["depth", "{in}", "{good}", "--depth", "spatial"], False),
    ("drift", ["drift", "{in}", "{good}", "--permutations", "20"], True),  # depth: cosine
    ("intdim", ["intdim", "{in}", "-k", "3"], False),  # euclidean neighbours: zero rows are points
    ("norms", ["norms", "{in}"], False),
    ("infogain", ["infogain", "{corpus}", "--embeddings", "{in}", "--window", "2"], False),
    ("axes_score", ["axes", "score", "{in}", "--attribute", "year", "--folds", "2",
                    "--null-directions", "100", "--shots", "5", "--no-upper-bound"], True),
    ("axes_fit", ["axes", "fit", "{in}", "--attribute", "year", "-o", "{out}"], True),
    ("axes_project", ["axes", "project", "{in}", "--axis", "{axis}"], True),
    # B: the clean rows under the same ids (pairs by ids: A's dropped rows have no partner)
    ("compare", ["compare", "{in}", "{twin}", "-k", "3"], True),
    ("translate_fit", ["translate", "fit", "{in}", "{twin}", "-o", "{out}"], True),
    ("translate_fit_raw", ["translate", "fit", "{in}", "{twin}", "-o", "{out}", "--normalize",
                           "none", "--pairs", "ids"], True),  # its evaluation is by cosine
    ("translate_apply", ["translate", "apply", "{map}", "{in}", "-o", "{out}"], True),
    ("translate_eval", ["translate", "eval", "{map}", "{in}", "{twin}"], True),
    # check runs only what its rules name: norms keeps zero rows, isotropy needs directions
    ("check_norms", ["check", "{in}", "--max", "norms.n=1000"], False),
    ("check_isotropy", ["check", "{in}", "--min", "isotropy.n=1"], True),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("rows")
    words = [f"w{i}" for i in range(N)]
    base = rng.standard_normal((N, D)) + 0.5
    nan, zero = base.copy(), base.copy()
    nan[NAN_ROWS[0], 1] = np.nan
    nan[NAN_ROWS[1], 3] = np.inf
    zero[ZERO_ROWS] = 0.0
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 30)) for _ in range(60)) + "\n")
    year = np.arange(N, dtype=float)
    axis = folder / "axis.h5"
    with h5py.File(axis, "w") as f:
        f["axis"] = np.ones(D) / np.sqrt(D)
        f.attrs.update({"kind": "geomkit rank axis", "method": "given", "attribute": "year"})
    twin = write_h5(folder / "twin.h5", base, ids=words)
    run_cli("translate", "fit", twin, twin, "-o", folder / "map.h5", check_code=0)
    return {"nan": str(write_h5(folder / "nan.h5", nan, ids=words, year=year)),
            "zero": str(write_h5(folder / "zero.h5", zero, ids=words, year=year)),
            "axis": str(axis),
            "twin": str(twin), "map": str(folder / "map.h5"),
            "good": str(write_h5(folder / "good.h5", rng.standard_normal((30, D)) + 0.5)),
            "corpus": str(corpus), "folder": folder}


def _run(files, argv, kind, *extra):
    out = files["folder"] / f"out_{kind}_{len(extra)}.h5"
    if out.exists():
        out.unlink()
    args = [a.format(**{"in": files[kind], "good": files["good"], "corpus": files["corpus"],
                        "out": out, "axis": files["axis"], "twin": files["twin"],
                        "map": files["map"]})
            for a in argv]
    return run_cli(*args, *extra, "--json", "--quiet")


def _n(out: dict) -> int:
    for key in ("n", "n_ref"):
        if key in out:
            return out[key]
    return None


def _one_line_error(proc, path, flag):
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("geomkit: error: ")
    assert path in proc.stderr and "/embeddings" in proc.stderr and flag in proc.stderr


@pytest.mark.parametrize("name,argv,direction", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_nonfinite_rows_are_refused_or_dropped_and_counted(files, name, argv, direction):
    proc = _run(files, argv, "nan")
    assert proc.returncode == 3, proc.stderr
    _one_line_error(proc, files["nan"], "--drop-nonfinite")
    assert "NaN or Inf" in proc.stderr and "rows 4, 17" in proc.stderr
    proc = _run(files, argv, "nan", "--drop-nonfinite")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_dropped"] == 2 and out["n_dropped_zero"] == 0
    if _n(out) is not None:
        assert _n(out) == N - 2


@pytest.mark.parametrize("name,argv,direction", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_zero_rows_are_refused_where_a_direction_is_needed_or_dropped_alike(files, name, argv,
                                                                             direction):
    proc = _run(files, argv, "zero")
    if direction:
        assert proc.returncode == 3, proc.stderr
        _one_line_error(proc, files["zero"], "--drop-zero")
        assert "all zero" in proc.stderr and "rows 9, 30" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["n_dropped"] == 0 and out["n_dropped_zero"] == 0
        if _n(out) is not None:
            assert _n(out) == N  # kept: a zero vector has a norm, and a euclidean position
        if name == "norms":
            assert out["n_zero"] == 2
    proc = _run(files, argv, "zero", "--drop-zero")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_dropped"] == 2 and out["n_dropped_zero"] == 2
    if _n(out) is not None:
        assert _n(out) == N - 2
    if name == "norms":
        assert out["n_zero"] == 0


def test_info_scan_reports_both_and_drops_nothing(files):
    for kind, key, rows in (("nan", "nonfinite_rows", NAN_ROWS), ("zero", "zero_rows", ZERO_ROWS)):
        out = json.loads(run_cli("info", files[kind], "--scan", "--json", check_code=0).stdout)
        assert out[key] == 2 and out[f"first_{key}"] == rows
    for flag in ("--drop-nonfinite", "--drop-zero"):  # info analyses nothing: no such option
        assert run_cli("info", files["zero"], "--scan", flag).returncode == 2


def test_every_command_that_reads_rows_is_covered():
    from geomkit.cli.main import cli

    # report: tests/analysis/test_check.py::test_report_row_policy (its stdout is no JSON)
    covered = {argv[0] for _, argv, _ in COMMANDS} | {"info", "report"}
    assert {argv[1] for _, argv, _ in COMMANDS if argv[0] == "axes"} == {"fit", "score", "project"}
    assert {argv[1] for _, argv, _ in COMMANDS if argv[0] == "translate"} == {"fit", "apply",
                                                                               "eval"}
    assert covered == set(cli.list_commands(None))
