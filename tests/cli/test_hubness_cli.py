"""`geomkit hubness` through the installed command."""

import json

import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5


def test_json_contract_matches_oracle():
    oracle = json.loads((ORACLES / "hubness.json").read_text())["values"]["gauss_d16_cosine"]
    out = run_json("hubness", f"{ORACLES}/hubness_data.h5:/gauss_d16", "--reduce", "none,mp")
    assert list(out) == ["methods", "k", "metric", "n", "n_dropped", "n_dropped_zero",
                         "n_duplicates",
                         "n_duplicate_groups", "candidates", "knn"]
    assert out["candidates"] == {"mp": None}  # Gaussian MP over all other items
    assert (out["n_dropped"], out["n_duplicates"], out["n_duplicate_groups"]) == (0, 0, 0)
    assert (out["k"], out["metric"], out["n"]) == (10, "cosine", 2000)
    assert out["knn"] == {"exact": True, "recall": None}
    for method, variant in (("none", "base_k10"), ("mp", "mp_normal_full_noself")):
        assert out["methods"][method]["k_skewness"] == pytest.approx(oracle[variant]["k_skewness"],
                                                                     abs=1e-9)


def test_labels_error_per_item_html(tmp_path, rng):
    x = np.vstack([rng.standard_normal((60, 8)) + 2 * np.eye(8)[0],
                   rng.standard_normal((60, 8)) - 2 * np.eye(8)[0]])
    p = write_h5(tmp_path / "l.h5", x, labels=["x"] * 60 + ["y"] * 60,
                 ids=[f"i{k}" for k in range(120)], texts=["<b>t</b>"] * 120)
    per, html = tmp_path / "k.csv", tmp_path / "h.html"
    out = run_json("hubness", p, "-k", "5", "--reduce", "none,ls,csls", "--knn-error",
                   "--per-item", per, "--html", html)
    assert set(out["methods"]) == {"none", "ls", "csls"}
    assert all(0 <= m["knn_error"] < 0.2 for m in out["methods"].values())
    lines = per.read_text().splitlines()
    assert lines[0] == "row,id,k_occurrence_none,k_occurrence_ls,k_occurrence_csls"
    assert sum(int(line.split(",")[2]) for line in lines[1:]) == 5 * 120
    assert "<b>t</b>" not in html.read_text()
    bad = run_cli("hubness", p, "--reduce", "dsl")
    assert bad.returncode == 2 and "euclidean" in bad.stderr


def test_mp_candidates_option():
    data = f"{ORACLES}/hubness_data.h5:/gauss_d16"
    oracle = json.loads((ORACLES / "hubness.json").read_text())["values"]["gauss_d16_cosine"]
    out = run_json("hubness", data, "--reduce", "mp,mp_empiric", "--mp-candidates", "100")
    assert out["methods"]["mp"]["gini"] == pytest.approx(oracle["mp_normal_c100_noself"]["gini"],
                                                         abs=1e-9)
    assert out["methods"]["mp_empiric"]["n_antihubs"] >= 0
    assert out["candidates"] == {"mp": 100, "mp_empiric": 100}
    bad = run_cli("hubness", data, "-k", "10", "--reduce", "mp", "--mp-candidates", "10")
    assert bad.returncode == 2 and "--mp-candidates" in bad.stderr


def test_device_option(tmp_path, rng):
    p = write_h5(tmp_path / "d.h5", rng.standard_normal((200, 8)))
    cpu = run_json("hubness", p, "--device", "cpu")
    assert cpu == run_json("hubness", p)
    bad = run_cli("hubness", p, "--device", "nosuchdevice")
    assert bad.returncode == 2 and "--device nosuchdevice" in bad.stderr


@pytest.mark.parametrize("device", ["cuda", "xpu", "meta", "cuda:7"])
def test_unavailable_devices_are_one_line_usage_errors(tmp_path, rng, device):
    import torch
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU
    p = write_h5(tmp_path / "d.h5", rng.standard_normal((50, 4)))
    bad = run_cli("hubness", p, "--device", device)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and f"--device {device}" in bad.stderr
    assert "(available: cpu" in bad.stderr  # names what can be used instead


@pytest.mark.parametrize("method,n", [("ls", 5), ("nicdm", 5), ("dsl", 4), ("csls", 10)])
def test_too_few_items_for_a_fixed_neighbourhood(tmp_path, rng, method, n):
    metric = "euclidean" if method == "dsl" else "cosine"
    p = write_h5(tmp_path / "few.h5", rng.standard_normal((n, 4)))
    bad = run_cli("hubness", p, "-k", "2", "--reduce", method, "--metric", metric)
    assert bad.returncode == 2 and f"at least {n + 1} items" in bad.stderr
    ok = write_h5(tmp_path / "enough.h5", rng.standard_normal((n + 1, 4)))
    out = run_json("hubness", ok, "-k", "2", "--reduce", method, "--metric", metric)
    assert out["methods"][method]["n_antihubs"] >= 0


def test_dsl_accepts_squared_euclidean(tmp_path, rng):
    p = write_h5(tmp_path / "s.h5", rng.standard_normal((60, 4)))
    a = run_json("hubness", p, "--reduce", "dsl", "--metric", "sqeuclidean")
    b = run_json("hubness", p, "--reduce", "dsl", "--metric", "euclidean")
    assert a["methods"]["dsl"] == b["methods"]["dsl"]


def test_duplicates_counted_and_zero_rows_refused_for_cosine(tmp_path, rng):
    x = rng.standard_normal((80, 6))
    x[10:20] = x[3]  # 10 copies of row 3
    x[40] = x[41]
    p = write_h5(tmp_path / "dup.h5", x)
    out = run_json("hubness", p, "--reduce", "none,ls,nicdm,mp")
    assert (out["n_duplicates"], out["n_duplicate_groups"]) == (11, 2)
    for m in out["methods"].values():
        assert all(v is None or np.isfinite(v) for v in m.values())
    z = x.copy()
    z[5] = 0
    pz = write_h5(tmp_path / "zero.h5", z)
    bad = run_cli("hubness", pz)
    assert bad.returncode == 3 and "1 of 80 rows are all zero" in bad.stderr
    assert run_json("hubness", pz, "--metric", "euclidean")["n"] == 80


def test_candidate_lists_longer_than_the_data_are_clamped_and_said(tmp_path, rng):
    """mp_empiric's default 100 candidates on 40 items: all 39 others, in the JSON and a note;
    Gaussian MP with 39 candidates is then MP over all items (the same k-occurrence)."""
    p = write_h5(tmp_path / "c.h5", rng.standard_normal((40, 5)))
    out = run_json("hubness", p, "-k", "3", "--reduce", "mp,mp_empiric", "--mp-candidates", "500")
    assert out["candidates"] == {"mp": 39, "mp_empiric": 39}
    full = run_json("hubness", p, "-k", "3", "--reduce", "mp")
    assert out["methods"]["mp"] == full["methods"]["mp"] and full["candidates"] == {"mp": None}
    table = run_cli("hubness", p, "-k", "3", "--reduce", "mp_empiric", "--format", "table",
                    check_code=0)
    assert "mp_empiric: candidate lists hold all 39 other items" in " ".join(table.stdout.split())


def test_degenerate_inputs_exit_cleanly(tmp_path, rng):
    """The hardening issue's tracebacks: each is now a result with finite numbers (skewness
    null where every item has the same k-occurrence) or one line with exit code 2 or 3."""
    same = write_h5(tmp_path / "same.h5", np.ones((30, 4)))
    zero = write_h5(tmp_path / "zero.h5", np.zeros((30, 4)))
    two = write_h5(tmp_path / "two.h5", rng.standard_normal((2, 4)))
    three = write_h5(tmp_path / "three.h5", rng.standard_normal((3, 4)))
    ok = [(same, "--reduce", "mp"), (zero, "--reduce", "mp,ls,nicdm,dsl,mp_empiric", "--metric",
                                     "euclidean"),
          (two, "-k", "1", "--reduce", "none,mp,mp_empiric,dis")]
    for args in ok:
        out = run_json("hubness", *args)
        for values in out["methods"].values():
            assert all(v is None or np.isfinite(v) for v in values.values()), args
    two_out = run_json("hubness", two, "-k", "1", "--reduce", "mp")
    assert two_out["methods"]["mp"]["k_skewness"] is None  # N_k = (1, 1)
    refused = [((zero, "--reduce", "mp"), 3), ((three, "-k", "2", "--reduce", "ls"), 2),
               ((three, "-k", "2", "--reduce", "nicdm"), 2),
               ((three, "-k", "2", "--reduce", "csls"), 2),
               ((three, "--metric", "dot", "--reduce", "nicdm"), 2)]
    for args, code in refused:
        bad = run_cli("hubness", *args)
        assert bad.returncode == code and "Traceback" not in bad.stderr, (args, bad.stderr)
        assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("geomkit: error: "), args


def test_dsl_metric_message_names_the_metrics_that_fit(tmp_path, rng):
    p = write_h5(tmp_path / "m.h5", rng.standard_normal((30, 4)))
    for metric in ("cosine", "dot"):
        bad = run_cli("hubness", p, "--reduce", "dsl", "--metric", metric)
        assert bad.returncode == 2 and f"not {metric}" in bad.stderr
        assert "euclidean or sqeuclidean" in bad.stderr

