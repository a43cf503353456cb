"""`geomkit intdim` through the command: the JSON contract with scikit-dimension's values, the
per-item file, the HTML page, layer / prefix sweeps, and refusals (exit 2 / 3, one sentence)."""

import json

import h5py
import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5

G = json.loads((ORACLES / "intrinsic_dim.json").read_text())["global"]
PW = json.loads((ORACLES / "intrinsic_dim.json").read_text())["pointwise"]
SWISS = f"{ORACLES}/compare_data.h5:/id_swiss"
KEYS = ["n", "d", "k", "twonn", "mle", "gride", "lpca", "n_duplicates", "lid", "n_dropped",
        "n_dropped_zero", "knn"]


def _swiss():
    with h5py.File(ORACLES / "compare_data.h5") as f:
        return f["id_swiss"][0:2000]


def test_json_contract_matches_oracle():
    out = run_json("intdim", SWISS)
    assert list(out) == KEYS  # the contract (+ the dropped-row counts every result has,
    # + the kNN engine used: exact below geomkit hubness' APPROXIMATE_FROM rows)
    assert out["knn"] == {"exact": True, "recall": None, "search": {"products": "float64"}}
    assert (out["n"], out["d"], out["k"], out["n_duplicates"]) == (2000, 3, 20, 0)
    assert out["twonn"] == pytest.approx(G["TwoNN_linear_discard0.1"]["id_swiss"]["value"],
                                         rel=1e-9)
    assert out["mle"] == pytest.approx(G["MLE_k20_comb_mle"]["id_swiss"]["value"], rel=1e-9)
    assert out["gride"] == pytest.approx(G["GRIDE_n1_1_n2_2"]["id_swiss"]["value"], rel=1e-9)
    assert out["lpca"] == G["lPCA_ratio_0.95"]["id_swiss"]["value"]
    assert list(out["lid"]) == ["mean", "median", "p95"]
    assert out["lid"]["mean"] == pytest.approx(PW["MLE_k20"]["id_swiss"]["mean_all"], rel=1e-9)
    # parameters reach the estimators
    alt = run_json("intdim", SWISS, "-k", "10", "--twonn-fit", "mle", "--gride-n1", "4",
                   "--mle-average", "mean")
    assert alt["twonn"] == pytest.approx(G["TwoNN_mle_discard0.1"]["id_swiss"]["value"], rel=1e-9)
    assert alt["gride"] == pytest.approx(G["GRIDE_n1_4_n2_8"]["id_swiss"]["value"], rel=1e-9)
    assert alt["mle"] == pytest.approx(PW["MLE_k10"]["id_swiss"]["mean_all"], rel=1e-9)
    only = run_json("intdim", SWISS, "--estimators", "lpca", "--variance", "0.5")
    assert (only["twonn"], only["mle"], only["gride"], only["lpca"]) == (None, None, None, 2)


def test_per_item_html_scales_hubness(tmp_path):
    x = _swiss()[:400]
    p = write_h5(tmp_path / "s.h5", np.vstack([x, x[:3]]), ids=[f"i{k}" for k in range(403)],
                 texts=["<b>t</b>"] * 403)
    per, html = tmp_path / "l.csv", tmp_path / "l.html"
    out = run_json("intdim", p, "-k", "10", "--scales", "16", "--with-hubness",
                   "--local-twonn", "30", "--per-item", per, "--html", html)
    assert out["n_duplicates"] == 3 and out["n"] == 403
    assert [s["n1"] for s in out["gride_scales"]] == [1, 2, 4, 8]
    assert out["gride_scales"][0]["id"] == pytest.approx(out["gride"], rel=1e-12)
    assert set(out["hubness"]) == {"k", "metric", "spearman", "pearson", "k_skewness"}
    assert -1 <= out["hubness"]["spearman"] <= 1
    assert set(out["twonn_local"]) == {"mean", "median", "p95"}
    lines = per.read_text().splitlines()
    assert lines[0] == "row,id,lid,twonn_local,k_occurrence"
    assert len(lines) == 404
    rows = [line.split(",") for line in lines[1:]]
    assert rows[400][2] == rows[0][2] and rows[402][2] == rows[2][2]  # copies: their twin's LID
    # k-occurrence over the distinct rows sums to k per distinct row
    assert sum(int(r[4]) for r in rows[:400]) == 10 * 400
    page = html.read_text()
    assert "<b>t</b>" not in page and "GRIDE ID against neighbourhood scale" in page
    assert "Local intrinsic dimension" in page and "highest local ID (LID) items" in page


def test_table_view_names_the_parameters():
    out = run_cli("intdim", SWISS, "--format", "table", "-q", check_code=0).stdout
    assert "linear fit, discard 0.1" in out and "k = 20, average mackay" in out
    assert "Fukunaga-Olsen" in out and "highest local ID" in out


def test_dims_and_layer_sweeps(tmp_path):
    x = _swiss()
    dims = run_json("intdim", SWISS, "--dims", "2,3", "--estimators", "twonn,mle")
    assert [v["dims"] for v in dims["dims"]] == [2, 3]
    assert dims["dims"][1]["twonn"] == pytest.approx(
        G["TwoNN_linear_discard0.1"]["id_swiss"]["value"], rel=1e-9)
    assert dims["twonn"] == dims["dims"][1]["twonn"]
    # layer 1 = layer 0 scaled and shifted: the same ID; layer 2 = a 10-d Gaussian
    rng = np.random.default_rng(0)
    stack = np.stack([x, 3 * x + 1, rng.standard_normal((2000, 10))[:, :3]], axis=1)
    p = write_h5(tmp_path / "stack.h5", stack, dataset="h")
    out = run_json("intdim", f"{p}:/h", "--layer", "all", "--estimators", "twonn")
    layers = out["layers"]
    assert [v["layer"] for v in layers] == [0, 1, 2]
    assert layers[0]["twonn"] == pytest.approx(G["TwoNN_linear_discard0.1"]["id_swiss"]["value"],
                                               rel=1e-9)
    assert layers[1]["twonn"] == pytest.approx(layers[0]["twonn"], rel=1e-9)
    assert abs(layers[2]["twonn"] - 3) < 0.4
    html = tmp_path / "p.html"
    run_cli("intdim", f"{p}:/h", "--layer", "all", "--html", html, "-q", "--json", check_code=0)
    assert "intdim per layer" in html.read_text()


def test_refusals(tmp_path, rng):
    small = write_h5(tmp_path / "small.h5", rng.standard_normal((15, 4)))
    bad = run_cli("intdim", small)  # k = 20 needs 21 rows
    assert bad.returncode == 2 and "small.h5" in bad.stderr and "21 distinct rows" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    same = write_h5(tmp_path / "same.h5", np.ones((40, 4)))
    bad = run_cli("intdim", same, "-k", "5")
    assert bad.returncode == 3 and "same.h5" in bad.stderr and "copies of one row" in bad.stderr
    assert "Traceback" not in bad.stderr
    for args, words in ((["--discard", "0"], "--twonn-fit mle"),
                        (["--estimators", "mle", "--gride-n1", "2"], "--gride-n1 acts on gride"),
                        (["--estimators", "twonn", "--variance", "0.5"], "--variance acts"),
                        (["--estimators", "danco"], "choose from"),
                        (["-k", "1"], "-k"),
                        (["--device", "nosuchdevice"], "not available")):
        bad = run_cli("intdim", SWISS, *args)
        assert bad.returncode == 2 and words in bad.stderr, (args, bad.stderr)
