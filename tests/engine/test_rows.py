"""The row sums (squared norms, Σx, Σx̂ of a block in one pass) and centring against float64
numpy, and the streaming passes that use them: the same blocks and statistics with and without
the row sums handed on."""

import numpy as np
import pytest

from conftest import write_h5
from geomkit import open_source
from geomkit.engine import MomentAccumulator, RowStatAccumulator, run_pass
from geomkit.engine import rows as engine_rows
from geomkit.errors import InputError


@pytest.fixture
def path_kind():
    return "numpy"  # one code path (a C kernel was measured and removed: docs/performance.md)


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
def test_row_sums_equal_float64_reference(path_kind, dtype, rtol, n, rng):
    d = 37
    x = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
    if n > 8:
        x[2] = 0.0  # a zero row: in the sums, nothing in the unit sum
        x[4, 3] = np.nan
        x[7, 1] = -np.inf
    sq_ref, fin, col_ref, unit_ref = _reference(x)
    sw = engine_rows.row_sums(x)
    assert sw.sq_norms.shape == (n,)
    np.testing.assert_array_equal(np.isfinite(sw.sq_norms), fin)
    np.testing.assert_allclose(sw.sq_norms[fin], sq_ref[fin], rtol=rtol * 10)
    scale = np.abs(x[fin]).astype(np.float64).sum(0) + 1
    assert np.all(np.abs(sw.col_sum - col_ref) <= rtol * 10 * scale)
    assert np.all(np.abs(sw.unit_sum - unit_ref) <= rtol * 10 * (fin.sum() + 1))
    assert sw.col_sum.dtype == np.float64 and sw.unit_sum.dtype == np.float64


def test_row_sums_of_a_view_that_is_not_contiguous(rng):
    x = rng.standard_normal((50, 20))
    sw = engine_rows.row_sums(x[:, ::2])  # strided: the numpy path
    np.testing.assert_allclose(sw.col_sum, x[:, ::2].sum(0))


def test_float32_sums_stay_accurate_over_many_rows(path_kind, rng):
    # 200k rows of offset 100: float32 running sums would drift by ~1e-3 relative; the column
    # sums go to float64 every 4096 rows
    x = (rng.standard_normal((200_000, 8)) + 100).astype("f4")
    sw = engine_rows.row_sums(x)
    np.testing.assert_allclose(sw.col_sum, x.astype(np.float64).sum(0), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_centre(path_kind, dtype, rng):
    x = rng.standard_normal((300, 33)).astype(dtype)
    mean = x.mean(0).astype(dtype)
    out = np.empty_like(x)
    engine_rows.centre(x, mean, out)
    np.testing.assert_array_equal(out, x - mean)


def _dump(tmp_path, rng, n=3000, d=24, dtype="f4", chunks=(500, 24)):
    x = (rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 2).astype(dtype)
    import h5py
    p = tmp_path / "a.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("embeddings", data=x, chunks=chunks)
    return p, x


@pytest.mark.parametrize("mode", [False, True])
def test_blocks_are_the_same_with_and_without_the_row_sums(path_kind, mode, tmp_path, rng):
    p, x = _dump(tmp_path, rng)
    with open_source(str(p)) as src:
        got, sweeps = [], []
        for blk in src.blocks(block_rows=500, reuse=True, sums=mode):
            got.append((blk.rows.copy(), blk.x.copy()))
            sweeps.append(blk.sums)
    np.testing.assert_array_equal(np.concatenate([r for r, _ in got]), np.arange(3000))
    np.testing.assert_array_equal(np.vstack([b for _, b in got]), x)
    if not mode:
        assert all(s is None for s in sweeps)
    else:  # each block's sums belong to that block, not to the buffer's next occupant
        for (_, xb), sw in zip(got, sweeps):
            np.testing.assert_allclose(sw.col_sum, xb.astype(np.float64).sum(0), rtol=1e-5)
            np.testing.assert_allclose(sw.sq_norms, (xb.astype(np.float64) ** 2).sum(1),
                                       rtol=1e-5)


@pytest.mark.parametrize("with_moments", [False, True])
def test_nonfinite_rows_found_by_the_row_sums(path_kind, with_moments, tmp_path, rng):
    x = rng.standard_normal((1200, 10)).astype("f4")
    x[[5, 777]] = np.nan
    x[900, 2] = np.inf
    x[1000, 0] = 1e20  # finite, but its square overflows float32: kept, summed in float64
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        with pytest.raises(InputError, match="3 of 1200 rows contain NaN or Inf"):
            for _ in src.blocks(block_rows=256, reuse=True, sums=True):
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
