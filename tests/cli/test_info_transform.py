"""`geomkit info` and `geomkit transform` as a user runs them."""

import json

import h5py
import numpy as np
import pytest

from conftest import file_digest, run_cli, run_json, write_h5


def test_info_describes_tree_dataset_metadata_and_stats(tmp_path, rng):
    x = rng.standard_normal((50, 6)).astype("f4")
    x[3] = np.nan
    x[7] = 0
    x[20:23] = x[11]  # three copies of row 11
    p = tmp_path / "dump.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("model")
        g.create_dataset("embeddings", data=x, chunks=(10, 6))
        g["ids"] = np.arange(50)
        g.attrs["name"] = "toy"
        f["model/labels"] = np.array(["a"] * 50, dtype=object).astype(h5py.string_dtype())
    quick = run_json("info", p)  # from the file's metadata only: no row is read
    assert quick["scanned"] is False and "nonfinite_rows" not in quick
    assert (quick["n"], quick["d"]) == (50, 6)
    info = run_json("info", p, "--scan")
    assert info["dataset"] == "/model/embeddings"
    assert info["shape"] == [50, 6] and info["dtype"] == "float32"
    assert info["metadata"] == {"ids": "/model/ids", "labels": "/model/labels"}
    assert (info["n"], info["d"], info["nonfinite_rows"], info["zero_rows"]) == (50, 6, 1, 1)
    assert info["first_nonfinite_rows"] == [3] and info["first_zero_rows"] == [7]
    assert (info["duplicate_rows"], info["duplicate_groups"]) == (3, 1)
    finite = np.delete(x, 3, axis=0).astype(np.float64)
    norms = np.linalg.norm(finite, axis=1)
    assert info["norm_mean"] == pytest.approx(norms.mean(), rel=1e-6)
    assert (info["norm_min"], info["norm_max"]) == (0.0, pytest.approx(norms.max(), rel=1e-6))
    entry = next(e for e in info["tree"] if e["path"] == "/model/embeddings")
    assert entry["chunks"] == [10, 6]
    assert next(e for e in info["tree"] if e["path"] == "/model")["attrs"] == {"name": "toy"}
    table = run_cli("info", p, "--scan", "--format", "table", check_code=0).stdout
    assert "/model/embeddings" in table and "NaN/Inf" in table


def test_info_on_ambiguous_file_lists_candidates(tmp_path, rng):
    p = tmp_path / "two.h5"
    with h5py.File(p, "w") as f:
        f["a"] = rng.standard_normal((4, 3))
        f["b"] = rng.standard_normal((4, 3))
    info = run_json("info", p)
    assert info["dataset"] is None and "several candidate datasets" in info["problem"]


def test_info_layer_stack(tmp_path, rng):
    p = write_h5(tmp_path / "s.h5", rng.standard_normal((8, 4, 5)), dataset="hidden_states")
    info = run_json("info", p)
    assert info["layers"] == 4 and info["stats_layer"] == 3


def test_transform_whiten_output_file(tmp_path, rng):
    x = rng.standard_normal((3000, 8)) @ rng.standard_normal((8, 8)) + 2
    p = write_h5(tmp_path / "in.h5", x.astype("f4"), ids=[f"i{k}" for k in range(3000)],
                 texts=["t"] * 3000, labels=["l"] * 3000, counts=np.arange(3000))
    before = file_digest(p)
    out = tmp_path / "white.h5"
    res = run_json("transform", p, "-o", out, "--center", "--whiten", "--components", "6")
    assert res["d_out"] == 6 and [s["step"] for s in res["steps"]] == ["center", "whiten"]
    assert file_digest(p) == before
    with h5py.File(out) as f:
        y = f["embeddings"][0:3000].astype(np.float64)
        assert f["ids"].asstr()[5] == "i5" and f["counts"][10] == 10 and "texts" in f and "labels" in f
        whiten = json.loads(f.attrs["steps"])[1]
        assert {k: whiten[k] for k in ("step", "components", "dropped_directions",
                                       "below_floor")} == {"step": "whiten", "components": 6,
                                                           "dropped_directions": 2,
                                                           "below_floor": 0}
        assert f.attrs["source"].endswith("in.h5") and f.attrs["geomkit_version"]
        assert "geomkit_transform" in f
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(6), atol=2e-5)


def test_transform_fit_from_applies_stored_parameters(tmp_path, rng):
    a = rng.standard_normal((2000, 5)) * [1, 2, 3, 4, 5] + 1
    b = rng.standard_normal((500, 5)) * 3 - 2
    pa, pb = write_h5(tmp_path / "a.h5", a), write_h5(tmp_path / "b.h5", b)
    run_cli("transform", pa, "-o", tmp_path / "wa.h5", "--whiten", check_code=0)
    res = run_json("transform", pb, "-o", tmp_path / "wb.h5", "--fit-from", tmp_path / "wa.h5")
    assert res["fitted_on"].endswith("wa.h5")
    with h5py.File(tmp_path / "wa.h5") as f:
        mean = f["geomkit_transform/step_0_whiten/mean"][0:5]
        w = f["geomkit_transform/step_0_whiten/matrix"][0:5]
    with h5py.File(tmp_path / "wb.h5") as f:
        np.testing.assert_allclose(f["embeddings"][0:500], (b - mean) @ w)
    np.testing.assert_allclose(mean, a.mean(0))
    proc = run_cli("transform", pb, "-o", tmp_path / "x.h5", "--fit-from", pb)
    assert proc.returncode == 3 and "geomkit_transform" in proc.stderr


def test_existing_output_survives_failed_transform(tmp_path, rng):
    x = rng.standard_normal((20, 3))
    x[5] = 0
    p = write_h5(tmp_path / "z.h5", x)
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous result")
    assert run_cli("transform", p, "-o", out, "--normalize").returncode == 3
    assert out.read_bytes() == b"previous result"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out.h5", "z.h5"]


def test_output_formats_and_python_m(tmp_path, rng):
    import subprocess
    import sys
    p = write_h5(tmp_path / "a.h5", rng.standard_normal((10, 3)))
    csv = run_cli("transform", p, "-o", tmp_path / "o.h5", "--center", "--format", "csv",
                  check_code=0).stdout
    assert csv.splitlines()[0].startswith("input,output,n,d_in,d_out")
    proc = subprocess.run([sys.executable, "-m", "geomkit", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "geomkit" in proc.stdout


def test_groups_linked_into_a_cycle_are_listed_once(tmp_path, rng):
    """HDF5 allows a group to hard-link its parent: info and the default dataset search must
    not recurse forever."""
    p = tmp_path / "cycle.h5"
    with h5py.File(p, "w") as f:
        f["a/x"] = rng.standard_normal((6, 3))
        f["a"]["loop"] = f["a"]
        f["a"]["up"] = f
    info = run_json("info", p)
    kinds = {e["path"]: (e["kind"], e.get("target")) for e in info["tree"]}
    assert kinds["/a/loop"] == ("link to group", "/a") and kinds["/a/up"] == ("link to group", "/")
    assert info["dataset"] == "/a/x"
    assert run_json("norms", p)["n"] == 6
