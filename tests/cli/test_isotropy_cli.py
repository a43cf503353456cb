"""`geomkit isotropy` through the installed command: JSON contract, sweeps, transform, HTML."""

import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5

KEYS = ["n", "d", "isoscore", "isoscore_star", "avg_cosine", "partition_isotropy", "effective_rank",
        "effective_rank_uncentred", "top_pc_share", "mean_norm_ratio", "uniformity", "n_dropped"]


def test_json_contract_and_oracle_value():
    out = run_json("isotropy", f"{ORACLES}/isotropy_depth_data.h5:/B_spike_rot")
    assert list(out) == KEYS
    assert out["isoscore"] == pytest.approx(0.0274781505, abs=1e-9)
    assert out["isoscore_star"] is None


def test_layer_sweep_and_dims_sweep(tmp_path, rng):
    x = rng.standard_normal((200, 3, 16))
    x[:, 1] *= np.linspace(1, 10, 16)
    p = write_h5(tmp_path / "s.h5", x, dataset="hidden_states")
    out = run_json("isotropy", p, "--layer", "all")
    assert [e["layer"] for e in out["layers"]] == [0, 1, 2]
    assert out["layers"][1]["isoscore"] < out["layers"][0]["isoscore"]
    assert out["isoscore"] == out["layers"][2]["isoscore"]
    dims = run_json("isotropy", p, "--layer", "0", "--dims", "4,8,16")
    assert [e["dims"] for e in dims["dims"]] == [4, 8, 16] and dims["d"] == 16
    assert [e["d"] for e in dims["dims"]] == [4, 8, 16]
    csv = run_cli("isotropy", p, "--layer", "all", "--format", "csv", check_code=0).stdout.splitlines()
    assert csv[0].startswith("layer,n,d,isoscore") and len(csv) == 4


def test_transform_whiten_side_by_side(tmp_path, rng):
    x = rng.standard_normal((2000, 8)) * np.linspace(1, 20, 8) + 5
    p = write_h5(tmp_path / "a.h5", x)
    out = run_json("isotropy", p, "--transform", "whiten")
    assert out["isoscore"] < 0.6
    assert out["after_transform"]["transform"] == "whiten"
    assert out["after_transform"]["isoscore"] == pytest.approx(1.0, abs=1e-9)


def test_html_and_per_item(tmp_path, rng):
    x = rng.standard_normal((100, 6)) + 1
    p = write_h5(tmp_path / "a.h5", x, ids=[f"i{k}" for k in range(100)],
                 texts=['<script>alert(1)</script>'] * 100)
    html, per = tmp_path / "r.html", tmp_path / "p.csv"
    run_cli("isotropy", p, "--html", html, "--per-item", per, "--json", check_code=0)
    page = html.read_text()
    assert "<script>alert(1)</script>" not in page and "eigenvalue spectrum" in page.lower()
    lines = per.read_text().splitlines()
    assert lines[0] == "row,id,conformity,norm" and len(lines) == 101
