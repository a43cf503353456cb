"""`geomkit depth` through the installed command."""

import json

import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5

DATA = f"{ORACLES}/isotropy_depth_data.h5"
KEYS = ["depth", "n_ref", "n_test", "mean_depth_ref", "mean_depth_test", "W", "p", "alternative",
        "q_liu_singh", "q_package", "effect_size"]


def test_json_contract_against_oracle():
    case = json.loads((ORACLES / "depth.json").read_text())["tests"][3]
    out = run_json("depth", f"{DATA}:/{case['F']}", f"{DATA}:/{case['G']}")
    assert list(out)[:len(KEYS)] == KEYS
    assert out["W"] == pytest.approx(case["W"], abs=1e-9)
    assert out["q_liu_singh"] == pytest.approx(case["q_liu_singh"], abs=1e-9)
    two = run_json("depth", f"{DATA}:/{case['F']}", f"{DATA}:/{case['G']}", "--alternative", "two-sided")
    assert two["p"] == pytest.approx(2 * case["p"], rel=1e-6)


def test_split_by_labels_per_item_and_html(tmp_path, rng):
    x = np.vstack([rng.standard_normal((80, 6)) + 1, rng.standard_normal((50, 6)) * 2 + 1])
    p = write_h5(tmp_path / "c.h5", x, labels=["human"] * 80 + ["synthetic"] * 50,
                 ids=[f"t{i}" for i in range(130)], texts=["<img src=x onerror=alert(1)>"] * 130)
    per, html = tmp_path / "d.csv", tmp_path / "d.html"
    out = run_json("depth", p, "--split-by", "labels", "--ref", "human", "--test", "synthetic",
                   "--per-item", per, "--html", html)
    assert (out["n_ref"], out["n_test"]) == (80, 50)
    assert out["p"] < 0.05  # the synthetic corpus is more spread, hence more outlying
    lines = per.read_text().splitlines()
    assert lines[0] == "corpus,row,depth,id,text" and len(lines) == 131
    page = html.read_text()
    assert "<img src=x onerror" not in page and "DD-plot" in page
    bad = run_cli("depth", p, "--split-by", "labels", "--ref", "human", "--test", "robot")
    assert bad.returncode == 2 and "robot" in bad.stderr and "human" in bad.stderr


def test_single_corpus_and_dimension_mismatch(tmp_path, rng):
    a = write_h5(tmp_path / "a.h5", rng.standard_normal((30, 4)))
    b = write_h5(tmp_path / "b.h5", rng.standard_normal((30, 5)))
    out = run_json("depth", a)
    assert out["n_test"] is None and out["W"] is None and out["n_ref"] == 30
    proc = run_cli("depth", a, b)
    assert proc.returncode == 2 and "dimensions" in proc.stderr
