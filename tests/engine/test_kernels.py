"""The row sweep and centring kernels (C, with their numpy fallback) against float64 numpy, and
the streaming passes that use them: same blocks, same statistics, whichever way they run."""

import os

import numpy as np
import pytest

from conftest import write_h5
from geomkit import open_source
from geomkit.engine import MomentAccumulator, RowStatAccumulator, run_pass
from geomkit.engine import kernels
from geomkit.errors import InputError


def _need_kernel():
    """The compiled kernel, or a skip on a machine where it could not be built. `make test` and
    CI set GEOMKIT_REQUIRE_KERNEL=1 where a C compiler exists: there a missing kernel fails."""
    if not kernels.kernel_available():
        if os.environ.get("GEOMKIT_REQUIRE_KERNEL") == "1":
            pytest.fail("the C row-sweep kernel was not built (geomkit/engine/_sweep.c)")
        pytest.skip("no C compiler at install: the kernel was not built (numpy fallback only)")


@pytest.fixture(params=["kernel", "numpy"])
def path_kind(request, monkeypatch):
    """Run a test with the compiled kernel and with the numpy fallback."""
    if request.param == "kernel":
        _need_kernel()
    else:
        monkeypatch.setattr(kernels, "_kernel", False)
    return request.param


def _reference(x):
    xf = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        sq = (xf * xf).sum(1)
    fin = np.isfinite(sq)
    norms = np.sqrt(sq[fin])
    unit = np.zeros(x.shape[1])
    nz = norms > 0
    unit = (xf[fin][nz] / norms[nz, None]).sum(0)
    return sq, fin, xf[fin].sum(0), unit


@pytest.mark.parametrize("dtype,rtol", [("f4", 2e-6), ("f8", 1e-12)])
@pytest.mark.parametrize("n", [1, 3, 4, 5, 255, 256, 257, 1031])
def test_sweep_equals_float64_reference(path_kind, dtype, rtol, n, rng):
    d = 37  # not a multiple of the kernel's 16 partial sums: the tail loop runs
    x = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
    if n > 8:
        x[2] = 0.0  # a zero row: in the sums, nothing in the unit sum
        x[4, 3] = np.nan
        x[7, 1] = -np.inf
    sq_ref, fin, col_ref, unit_ref = _reference(x)
    sw = kernels.row_sweep(x)
    assert sw.sq_norms.shape == (n,)
    np.testing.assert_array_equal(np.isfinite(sw.sq_norms), fin)
    np.testing.assert_allclose(sw.sq_norms[fin], sq_ref[fin], rtol=rtol * 10)
    scale = np.abs(x[fin]).astype(np.float64).sum(0) + 1
    assert np.all(np.abs(sw.col_sum - col_ref) <= rtol * 10 * scale)
    assert np.all(np.abs(sw.unit_sum - unit_ref) <= rtol * 10 * (fin.sum() + 1))
    assert sw.col_sum.dtype == np.float64 and sw.unit_sum.dtype == np.float64


def test_sweep_of_a_view_that_is_not_contiguous(rng):
    x = rng.standard_normal((50, 20))
    sw = kernels.row_sweep(x[:, ::2])  # strided: the numpy path
    np.testing.assert_allclose(sw.col_sum, x[:, ::2].sum(0))


def test_float32_sums_stay_accurate_over_many_rows(path_kind, rng):
    # 200k rows of offset 100: float32 running sums would drift by ~1e-3 relative; the kernel's
    # partial sums go to float64 every 256 rows
    x = (rng.standard_normal((200_000, 8)) + 100).astype("f4")
    sw = kernels.row_sweep(x)
    np.testing.assert_allclose(sw.col_sum, x.astype(np.float64).sum(0), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_centre(path_kind, dtype, rng):
    x = rng.standard_normal((300, 33)).astype(dtype)
    mean = x.mean(0).astype(dtype)
    out = np.empty_like(x)
    kernels.centre(x, mean, out)
    np.testing.assert_array_equal(out, x - mean)


def _dump(tmp_path, rng, n=3000, d=24, dtype="f4", chunks=(500, 24)):
    x = (rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 2).astype(dtype)
    import h5py
    p = tmp_path / "a.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("embeddings", data=x, chunks=chunks)
    return p, x


@pytest.mark.parametrize("mode", [False, True])
def test_blocks_are_the_same_with_and_without_the_sweep(path_kind, mode, tmp_path, rng):
    p, x = _dump(tmp_path, rng)
    with open_source(str(p)) as src:
        got, sweeps = [], []
        for blk in src.blocks(block_rows=500, reuse=True, sweep=mode):
            got.append((blk.rows.copy(), blk.x.copy()))
            sweeps.append(blk.sweep)
    np.testing.assert_array_equal(np.concatenate([r for r, _ in got]), np.arange(3000))
    np.testing.assert_array_equal(np.vstack([b for _, b in got]), x)
    if not mode:
        assert all(s is None for s in sweeps)
    else:  # each block's sweep belongs to that block, not to the buffer's next occupant
        for (_, xb), sw in zip(got, sweeps):
            np.testing.assert_allclose(sw.col_sum, xb.astype(np.float64).sum(0), rtol=1e-5)
            np.testing.assert_allclose(sw.sq_norms, (xb.astype(np.float64) ** 2).sum(1),
                                       rtol=1e-5)


@pytest.mark.parametrize("with_moments", [False, True])
def test_nonfinite_rows_found_by_the_sweep(path_kind, with_moments, tmp_path, rng):
    x = rng.standard_normal((1200, 10)).astype("f4")
    x[[5, 777]] = np.nan
    x[900, 2] = np.inf
    x[1000, 0] = 1e20  # finite, but its square overflows float32: kept, summed in float64
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        with pytest.raises(InputError, match="3 of 1200 rows contain NaN or Inf"):
            for _ in src.blocks(block_rows=256, reuse=True, sweep=True):
                pass
    with open_source(str(p), drop_nonfinite=True) as src:
        stats = RowStatAccumulator()
        run_pass(src, stats, *([MomentAccumulator()] if with_moments else []))
        res = stats.result()
    keep = np.setdiff1d(np.arange(1200), [5, 777, 900])
    np.testing.assert_array_equal(res.rows, keep)
    xk = x[keep].astype(np.float64)
    np.testing.assert_allclose(res.sum, xk.sum(0), rtol=1e-6)
    np.testing.assert_allclose(res.norms, np.linalg.norm(xk, axis=1), rtol=1e-6)


def test_isotropy_pass_is_the_same_with_and_without_the_kernel(tmp_path, rng, monkeypatch):
    _need_kernel()
    from geomkit.analysis.isotropy import compute_isotropy
    p, _ = _dump(tmp_path, rng, n=5000, d=40, dtype="f8")
    with open_source(str(p)) as src:
        a = compute_isotropy(src).to_dict()
    monkeypatch.setattr(kernels, "_kernel", False)
    with open_source(str(p)) as src:
        b = compute_isotropy(src).to_dict()
    for key in ("isoscore", "avg_cosine", "partition_isotropy", "effective_rank",
                "mean_norm_ratio", "uniformity"):
        assert a[key] == pytest.approx(b[key], rel=1e-9), key


def test_a_stale_kernel_falls_back_to_numpy_with_one_note(tmp_path, monkeypatch, capsys):
    """A library built from an older _sweep.c (a symbol missing) must not crash every command."""
    import importlib.machinery
    import shutil
    import subprocess

    from geomkit.engine import kernels

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:  # no compiler: the stale library cannot be made here (nothing to load either)
        return
    src = tmp_path / "stale.c"
    src.write_text("int geomkit_row_sweep(void) { return 0; }\n")  # no geomkit_centre
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (tmp_path / "engine").mkdir()
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "engine" / f"_sweep{suffix}"),
                    str(src)], check=True)
    monkeypatch.setattr(kernels, "__file__", str(tmp_path / "engine" / "kernels.py"))
    monkeypatch.setattr(kernels, "_kernel", None)
    monkeypatch.delenv("GEOMKIT_NO_KERNEL", raising=False)
    assert kernels._load_kernel() is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be used" in err and "geomkit_centre" in err
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(kernels.row_sweep(x).sq_norms, (x * x).sum(1))
