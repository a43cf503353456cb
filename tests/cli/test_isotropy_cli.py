"""`geomkit isotropy` through the installed command: JSON contract, sweeps, transform, HTML."""

import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5

KEYS = ["n", "d", "isoscore", "isoscore_star", "avg_cosine", "partition_isotropy", "effective_rank",
        "effective_rank_uncentred", "top_pc_share", "mean_norm_ratio", "uniformity", "n_dropped", "n_dropped_zero"]


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


def test_c0_file_acts_for_every_view_and_is_checked_before_any_pass(tmp_path):
    """--c0 FILE asks for IsoScore* (ζ = 0.2 unless given) even when N ≥ d, and a --dims sweep
    shrinks each prefix toward the leading block of the target covariance."""
    from geomkit.analysis.isotropy import isoscore_of_covariance

    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 6)) * np.array([3.0, 2.0, 1.0, 1.0, 0.5, 0.2])
    ref = rng.standard_normal((800, 6)) @ rng.standard_normal((6, 6))
    p = write_h5(tmp_path / "x.h5", x)
    c0 = write_h5(tmp_path / "c0.h5", ref)
    cov, target = np.cov(x, rowvar=False), np.cov(ref, rowvar=False)
    out = run_json("isotropy", p, "--c0", c0)
    assert out["isoscore_star"] == pytest.approx(isoscore_of_covariance(0.8 * cov + 0.2 * target),
                                                 rel=1e-9)
    sweep = run_json("isotropy", p, "--c0", c0, "--dims", "3,6", "--zeta", "0.5")
    first = sweep["dims"][0]
    assert first["dims"] == 3
    assert first["isoscore_star"] == pytest.approx(
        isoscore_of_covariance(0.5 * cov[:3, :3] + 0.5 * target[:3, :3]), rel=1e-9)
    wrong = write_h5(tmp_path / "wrong.h5", rng.standard_normal((50, 5)))
    proc = run_cli("isotropy", p, "--c0", wrong)
    assert proc.returncode == 2 and "5 dimensions" in proc.stderr


def test_layer_sweep_per_item_writes_every_layer(tmp_path):
    rng = np.random.default_rng(5)
    stack = rng.standard_normal((40, 3, 6))
    stack[:, 1] *= np.arange(1, 7)  # layer 1 has other norms than layers 0 and 2
    p = write_h5(tmp_path / "s.h5", stack, dataset="hidden")
    per = tmp_path / "per.csv"
    run_json("isotropy", p, "--layer", "all", "--per-item", per)
    import pandas as pd
    frame = pd.read_csv(per)
    assert list(frame.columns[:2]) == ["layer", "row"] and len(frame) == 3 * 40
    for layer in range(3):
        part = frame[frame["layer"] == layer].sort_values("row")
        np.testing.assert_allclose(part["norm"], np.linalg.norm(stack[:, layer], axis=1), rtol=1e-9)
