"""benchmarks/run_all.py: how the record is assembled from the sections (no benchmark runs here
beyond two stand-in scripts)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

RECORD = """# Performance

Old header, written by hand.

## The compiled kernel: removed (#12)

History, `benchmarks/kernel.py`.

## axes — `benchmarks/axes.py` (100 000 × 768)

old axes figures

## Space (#12): shared products

more history

## depth — `benchmarks/depth.py`

old depth figures
"""


@pytest.fixture
def run_all():
    spec = importlib.util.spec_from_file_location("geomkit_bench_run_all_t", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sections_are_owned_by_name_or_script(run_all):
    _, sections = run_all.split_sections(RECORD)
    assert [run_all.section_owner(s) for s in sections] == [None, "axes", None, "depth"]
    assert run_all.section_owner("## Compare, again: `benchmarks/compare.py --x`\n") == "compare"
    assert run_all.section_owner("## axes2 — something\n") is None


def test_splice_replaces_only_the_rerun_section(run_all):
    new = {"depth": "## depth — `benchmarks/depth.py`\n\nnew depth figures\n"}
    out = run_all.splice(RECORD, "# Performance\n\nNEW HEADER", new)
    assert out.startswith("# Performance\n\nNEW HEADER\n\n## ")
    assert "Old header" not in out and "old depth figures" not in out
    assert "new depth figures" in out and "old axes figures" in out
    # the benchmarks' sections in BENCHMARKS order, then the sections that belong to no
    # benchmark, in their order
    order = [line for line in out.splitlines() if line.startswith("## ")]
    names = run_all.NAMES
    assert order[:2] == sorted(order[:2], key=lambda h: names.index(run_all.section_owner(h)))
    assert order[2:] == ["## The compiled kernel: removed (#12)", "## Space (#12): shared products"]
    # every old line but the replaced section's and the old header survives
    kept = set(RECORD.splitlines()) - {"old depth figures", "Old header, written by hand."}
    assert kept <= set(out.splitlines())


def test_splice_is_stable_when_nothing_is_rerun(run_all):
    once = run_all.splice(RECORD, "# Performance\n\nH", {})
    assert run_all.splice(once, "# Performance\n\nH", {}) == once


def _fake(tmp_path, name, body):
    (tmp_path / name).write_text(body)


def test_smoke_fails_on_a_failing_benchmark_and_skips_a_missing_one(run_all, tmp_path, monkeypatch,
                                                                      capsys):
    _fake(tmp_path, "good.py", "import sys\nassert '--smoke' in sys.argv\nprint('ok')\n")
    _fake(tmp_path, "bad.py", "import sys\nprint('FAIL  a check')\nsys.exit(1)\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "BENCHMARKS", [("good", "good.py", []), ("bad", "bad.py", []),
                                                ("absent", "absent.py", [])])
    monkeypatch.setattr(run_all, "NAMES", ["good", "bad", "absent"])
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--smoke", "--logs", str(tmp_path / "logs")])
    assert run_all.main() == 1
    out = capsys.readouterr().out
    assert "skip absent" in out and "1 passed, 1 failed: bad" in out
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--smoke", "--only", "good",
                                      "--logs", str(tmp_path / "logs")])
    assert run_all.main() == 0


def test_only_reruns_and_keeps_the_rest(run_all, tmp_path, monkeypatch):
    section = "## good — `benchmarks/good.py`\n\nfresh figures\n"
    _fake(tmp_path, "good.py", "import sys\nopen(sys.argv[sys.argv.index('--markdown') + 1], 'w')"
                               f".write({section!r})\n")
    record = tmp_path / "performance.md"
    record.write_text("# Performance\n\nold\n\n## good — x\n\nstale\n\n## other — y\n\nother figures\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "BENCHMARKS", [("good", "good.py", ["--full"]),
                                                ("other", "other.py", [])])
    monkeypatch.setattr(run_all, "NAMES", ["good", "other"])
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--only", "good", "--output", str(record),
                                      "--logs", str(tmp_path / "logs")])
    assert run_all.main() == 0
    text = record.read_text()
    assert "fresh figures" in text and "stale" not in text and "other figures" in text
    assert text.index("fresh figures") < text.index("other figures")
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--only", "nosuch", "--output", str(record)])
    assert run_all.main() == 2
