"""Every bad-input case through the installed ``geomkit`` command: exit code 3, one sentence naming
the file, dataset and problem, no traceback, and the input file's bytes unchanged."""

import json

import h5py
import numpy as np
import pytest

from conftest import file_digest, run_cli, write_h5


def _expect_input_error(path, *args, match, cmd="transform", code=3):
    before = file_digest(path)
    extra = ["-o", str(path) + ".out.h5", "--center"] if cmd == "transform" else []
    proc = run_cli(cmd, *args, *extra)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert err.startswith("geomkit: error: ") and len(err.splitlines()) == 1, err
    assert str(path).split("/")[-1] in err
    for m in match if isinstance(match, (list, tuple)) else [match]:
        assert m in err, err
    assert file_digest(path) == before
    return err


def test_nonfinite_rows_error_and_drop(tmp_path, rng):
    x = rng.standard_normal((40, 4))
    x[[2, 9], 0] = np.nan
    x[30, 3] = -np.inf
    p = write_h5(tmp_path / "nan.h5", x)
    _expect_input_error(p, str(p), match=["/embeddings", "3 of 40 rows contain NaN or Inf",
                                          "rows 2, 9, 30", "--drop-nonfinite"])
    proc = run_cli("transform", p, "-o", tmp_path / "ok.h5", "--center", "--drop-nonfinite",
                   "--json", check_code=0)
    assert '"n_dropped": 3' in proc.stdout and '"n": 37' in proc.stdout


def test_zero_rows_when_cosine_needed(tmp_path, rng):
    x = rng.standard_normal((10, 4))
    x[[4, 7]] = 0
    p = write_h5(tmp_path / "zero.h5", x)
    before = file_digest(p)
    proc = run_cli("transform", p, "-o", tmp_path / "o.h5", "--normalize")
    assert proc.returncode == 3 and "2 of 10 rows are all zero" in proc.stderr and "zero.h5" in proc.stderr
    assert file_digest(p) == before and not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("data,words", [
    (np.arange(12).reshape(6, 2), "integer dtype int64"),
    (np.ones((3, 2), dtype=np.complex64), "complex dtype"),
    (np.array([[b"a", b"b"], [b"c", b"d"]]), "string dtype"),
    (np.ones(5), "1 dimensions, shape (5,)"),
    (np.ones((2, 2, 2, 2)), "4 dimensions"),
    (np.ones((0, 8)), "is empty"),
    (np.ones((1, 8)), "has 1 row"),
])
def test_bad_dataset_shapes_and_dtypes(tmp_path, data, words):
    p = write_h5(tmp_path / "bad.h5", data, dataset="vec")
    _expect_input_error(p, f"{p}:/vec", match=["bad.h5:/vec", words])


def test_metadata_length_mismatch(tmp_path, rng):
    p = write_h5(tmp_path / "meta.h5", rng.standard_normal((5, 3)), ids=["a", "b", "c"])
    _expect_input_error(p, p, match=["/ids", "has 3 ids but /embeddings has 5 rows"])


def test_missing_dataset_lists_what_exists(tmp_path, rng):
    p = write_h5(tmp_path / "m.h5", rng.standard_normal((5, 3)))
    _expect_input_error(p, f"{p}:/nope", match=["no dataset '/nope'", "/embeddings"])


def test_not_hdf5_and_truncated(tmp_path, rng):
    p = tmp_path / "text.h5"
    p.write_text("id,vector\n1,2\n")
    _expect_input_error(p, p, match="is not an HDF5 file")
    good = write_h5(tmp_path / "trunc.h5", rng.standard_normal((20000, 16)))
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    err = _expect_input_error(good, good, match="trunc.h5")
    assert "truncated or corrupt" in err


def test_missing_file(tmp_path):
    proc = run_cli("info", tmp_path / "nothing.h5")
    assert proc.returncode == 3 and "nothing.h5: no such file" in proc.stderr


def test_external_link_refused_unless_allowed(tmp_path, rng):
    other = write_h5(tmp_path / "other.h5", rng.standard_normal((6, 3)))
    p = tmp_path / "link.h5"
    with h5py.File(p, "w") as f:
        f["embeddings"] = h5py.ExternalLink(str(other), "/embeddings")
    _expect_input_error(p, p, match=["external link", "--allow-external"])
    run_cli("transform", p, "-o", tmp_path / "o.h5", "--center", "--allow-external", check_code=0)


def test_virtual_dataset_from_other_file_refused(tmp_path, rng):
    other = write_h5(tmp_path / "src.h5", rng.standard_normal((6, 3)))
    p = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(6, 3), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "embeddings", shape=(6, 3))
    with h5py.File(p, "w") as f:
        f.create_virtual_dataset("embeddings", layout)
    _expect_input_error(p, p, match=["virtual dataset", "src.h5", "--allow-external"])
    run_cli("transform", p, "-o", tmp_path / "o.h5", "--center", "--allow-external", check_code=0)


def test_usage_errors_exit_2(tmp_path, rng):
    stack = write_h5(tmp_path / "stack.h5", rng.standard_normal((5, 3, 4)), dataset="hidden")
    proc = run_cli("transform", stack, "-o", tmp_path / "o.h5", "--center")
    assert proc.returncode == 2 and "--layer" in proc.stderr and "Traceback" not in proc.stderr
    flat = write_h5(tmp_path / "flat.h5", rng.standard_normal((5, 4)))
    assert run_cli("transform", flat, "-o", tmp_path / "o.h5").returncode == 2  # no step
    assert run_cli("transform", flat, "-o", tmp_path / "o.h5", "--center", "--layer", "1").returncode == 2
    assert run_cli("info", flat, "--dims", "x").returncode == 2
    proc = run_cli("transform", flat, "-o", flat, "--center")
    assert proc.returncode == 2 and "is the input" in proc.stderr


def test_extended_precision_float_is_named_as_such(tmp_path):
    p = write_h5(tmp_path / "ld.h5", np.ones((5, 3), dtype=np.longdouble))
    if h5py.File(p)["embeddings"].dtype.itemsize in (2, 4, 8):  # platforms without float128
        return
    _expect_input_error(p, p, match=["extended-precision float dtype", "float64"])


def test_dangling_links_are_named(tmp_path, rng):
    soft = tmp_path / "soft.h5"
    with h5py.File(soft, "w") as f:
        f["embeddings"] = h5py.SoftLink("/nowhere")
    _expect_input_error(soft, soft, match=["soft link to /nowhere", "does not exist"])
    ext = tmp_path / "ext.h5"
    with h5py.File(ext, "w") as f:
        f["embeddings"] = h5py.ExternalLink("missing.h5", "/embeddings")
    _expect_input_error(ext, ext, match=["external link to missing.h5:/embeddings", "--allow-external"])
    _expect_input_error(ext, ext, "--allow-external", match=["missing.h5", "cannot be opened"])
    # a broken link elsewhere in the file: info lists it, the analysis works
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["embeddings"] = rng.standard_normal((6, 3))
        f["ids"] = h5py.SoftLink("/gone")
    info = run_cli("info", other, "--json", check_code=0).stdout
    assert '"kind": "broken link"' in info and '"target": "/gone"' in info


@pytest.mark.parametrize("cmd", ["isotropy", "norms", "depth"])
def test_dropped_rows_are_counted_in_the_json(tmp_path, rng, cmd):
    x = rng.standard_normal((30, 4))
    x[[1, 5, 6], 2] = np.nan
    p = write_h5(tmp_path / "nan.h5", x)
    out = run_cli(cmd, p, "--drop-nonfinite", "--json", check_code=0).stdout
    assert '"n_dropped": 3' in out


def test_float_labels_are_refused_as_classes(tmp_path, rng):
    x = rng.standard_normal((20, 4))
    p = write_h5(tmp_path / "fl.h5", x, labels=rng.random(20), year=rng.random(20))
    _expect_input_error(p, p, "--labels", "labels", cmd="norms", match=["fl.h5:/labels", "float"])
    _expect_input_error(p, p, "--group-by", "year", cmd="norms", match=["fl.h5:/year", "float"])
    _expect_input_error(p, p, "--split-by", "labels", "--ref", "0.1", "--test", "0.2", cmd="depth",
                        match=["fl.h5:/labels", "float"])
    ok = write_h5(tmp_path / "int.h5", x, labels=np.arange(20) % 2)
    out = run_cli("norms", ok, "--labels", "labels", "--json", check_code=0).stdout
    assert '"group": "0"' in out and '"group": "1"' in out


def test_zero_rows_refused_by_cosine_measures(tmp_path, rng):
    x = rng.standard_normal((200, 8))
    x[[3, 50]] = 0
    p = write_h5(tmp_path / "zeros.h5", x)
    for cmd in ("isotropy", "depth"):
        _expect_input_error(p, p, cmd=cmd, match=["2 of 200 rows are all zero", "rows 3, 50"])
    # norms are defined for zero rows: counted, not refused
    assert '"n_zero": 2' in run_cli("norms", p, "--json", check_code=0).stdout


@pytest.mark.parametrize("dtype,scale", [("f4", 1e30), ("f4", 1e-40), ("f4", 1e18), ("f8", 1e120)])
def test_extreme_finite_magnitudes_give_the_unscaled_geometry(tmp_path, rng, dtype, scale):
    """Products of float32 values near 1e30 overflow and squares of 1e-40 underflow: the blocks are
    widened to float64, so every scale-free measure equals the one of the unscaled data
    (partition isotropy, Σ exp(cᵀx) over raw vectors, is not scale-free)."""
    x = rng.standard_normal((300, 12))
    ref = write_h5(tmp_path / "ref.h5", x.astype(dtype))
    p = write_h5(tmp_path / "scaled.h5", (x * scale).astype(dtype))
    a = json.loads(run_cli("isotropy", ref, "--json", check_code=0).stdout)
    b = json.loads(run_cli("isotropy", p, "--json", check_code=0).stdout)
    for key in ("isoscore", "avg_cosine", "effective_rank", "uniformity", "mean_norm_ratio"):
        assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    n = json.loads(run_cli("norms", p, "--json", check_code=0).stdout)
    assert n["mean"] == pytest.approx(np.linalg.norm((x * scale).astype(dtype).astype(float), axis=1).mean(),
                                      rel=1e-5)


def test_squares_beyond_float64_are_refused(tmp_path, rng):
    p = write_h5(tmp_path / "huge.h5", rng.standard_normal((20, 4)) * 1e200)
    for cmd in ("isotropy", "norms", "transform"):
        _expect_input_error(p, p, cmd=cmd, match=["too large", "overflow float64"])
