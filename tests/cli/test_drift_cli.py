"""``geomkit drift`` on the command line: the JSON contract, exit codes, the HTML page."""

import numpy as np

from conftest import run_cli, run_json, write_h5

KEYS = {"n_ref", "n_new", "alpha", "tests", "drift", "rule"}
TEST_KEYS = {"statistic", "p_value", "effect_size", "drift"}


def _files(tmp_path, shift=0.0, d=6):
    rng = np.random.default_rng(0)
    ref = write_h5(tmp_path / "ref.h5", rng.standard_normal((80, d)) + 1,
                   ids=[f"r{i}" for i in range(80)], texts=[f"ref text {i}" for i in range(80)])
    new = rng.standard_normal((70, d)) + 1
    new[:20] += shift
    new_path = write_h5(tmp_path / "new.h5", new, ids=[f"n{i}" for i in range(70)],
                        texts=[f"new text {i}" for i in range(70)])
    return str(ref), str(new_path)


def test_json_contract_and_exit_0_with_drift(tmp_path):
    ref, new = _files(tmp_path, shift=4.0)
    out = run_json("drift", ref, new, "--permutations", "100")
    assert KEYS <= set(out) and out["n_ref"] == 80 and out["n_new"] == 70
    assert list(out["tests"]) == ["depth", "mmd", "classifier", "ks", "mean"]
    for t in out["tests"].values():
        assert TEST_KEYS <= set(t) and isinstance(t["drift"], bool)
    assert out["drift"] is True and "alpha/5" in out["rule"]
    assert out["tests"]["mmd"]["permutations"] == 100


def test_no_drift_exit_0_and_test_subset(tmp_path):
    ref, new = _files(tmp_path)
    out = run_json("drift", ref, new, "--tests", "mean,mmd", "--permutations", "50",
                   "--alpha", "0.01")
    assert list(out["tests"]) == ["mmd", "mean"] and out["alpha"] == 0.01
    assert out["drift"] is False and "alpha/2" in out["rule"]


def test_usage_and_input_errors(tmp_path):
    ref, new = _files(tmp_path)
    assert run_cli("drift", ref, new, "--tests", "bogus").returncode == 2
    other = write_h5(tmp_path / "other.h5", np.ones((10, 3)))
    p = run_cli("drift", ref, str(other), "--json")
    assert p.returncode == 2 and "dimensions" in p.stderr and "Traceback" not in p.stderr
    tiny = write_h5(tmp_path / "tiny.h5", np.random.default_rng(1).standard_normal((3, 6)))
    p = run_cli("drift", ref, str(tiny), "--tests", "classifier", "--json")
    assert p.returncode == 3 and "tiny.h5" in p.stderr and "at least 5" in p.stderr
    assert run_cli("drift", ref, new, "--tests", "ks", "--sigma", "1").returncode == 2


def test_html_csv_and_per_item(tmp_path):
    ref, new = _files(tmp_path, shift=3.0)
    page, items = tmp_path / "d.html", tmp_path / "items.csv"
    p = run_cli("drift", ref, new, "--permutations", "60", "--html", page, "--per-item", items,
                "--format", "csv", "-q", check_code=0)
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith("test,") and len(lines) == 1 + 5 + 1
    html = page.read_text()
    for what in ("MMD²", "ROC", "KS statistic of each", "most responsible", "new text"):
        assert what in html, what
    table = items.read_text().splitlines()
    assert table[0].startswith("corpus,row,id,") and len(table) == 71
