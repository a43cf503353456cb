"""Streaming moments equal numpy on the whole array, whatever the block size or offset."""

import numpy as np
import pytest

from conftest import write_h5
from geomkit import open_source
from geomkit.engine import MomentAccumulator, streaming_moments, streaming_row_stats


@pytest.mark.parametrize("block_rows", [1, 7, 64, 10_000])
def test_streaming_mean_cov_equal_numpy(tmp_path, rng, block_rows):
    x = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) + 5.0
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        acc = MomentAccumulator()
        for blk in src.blocks(block_rows=block_rows):
            acc.update(blk.x)
        m = acc.result()
    assert m.n == 300
    np.testing.assert_allclose(m.mean, x.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.cov(), np.cov(x, rowvar=False), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(m.second_moment(), x.T @ x / 300, rtol=1e-11)


def test_large_offset_does_not_cancel(rng):
    # E[xx^T] - mu mu^T would lose every digit here; the pairwise update must not.
    x = rng.standard_normal((2000, 4)) * 1e-3 + 1e6
    acc = MomentAccumulator()
    for part in np.array_split(x, 13):
        acc.update(part)
    np.testing.assert_allclose(acc.result().cov(), np.cov(x, rowvar=False), rtol=1e-6)


def test_merge_equals_single_pass(rng):
    x = rng.standard_normal((500, 6))
    a, b, whole = MomentAccumulator(), MomentAccumulator(), MomentAccumulator()
    a.update(x[:123])
    b.update(x[123:])
    whole.update(x)
    merged = a.merge(b).result()
    np.testing.assert_allclose(merged.scatter, whole.result().scatter, rtol=1e-12)
    np.testing.assert_allclose(merged.mean, x.mean(0), atol=1e-14)


def test_float32_dump_accumulates_in_float64(tmp_path, rng):
    x = (rng.standard_normal((4000, 16)) + 3).astype("f4")
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        m = streaming_moments(src)
    ref = np.cov(x.astype(np.float64), rowvar=False)
    assert m.scatter.dtype == np.float64
    np.testing.assert_allclose(m.cov(), ref, rtol=1e-5, atol=1e-6)


def test_row_stats(tmp_path, rng):
    x = rng.standard_normal((50, 5))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        s = streaming_row_stats(src)
    norms = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(s.norms, norms)
    np.testing.assert_allclose(s.unit_sum, (x / norms[:, None]).sum(0))
    assert s.norm_sum == pytest.approx(norms.sum())
    assert s.rows is None  # rows 0..49 of a full view: no index array kept


@pytest.mark.parametrize("gather_rows", [None, 150, 10])
@pytest.mark.parametrize("dtype,rtol", [("f8", 1e-9), ("f4", 1e-4)])
def test_sorted_blocks_with_far_apart_means(rng, dtype, rtol, gather_rows):
    """Rows sorted so that blocks sit far apart (first block unrepresentative), several fold
    groups, and the syrk run on gathers of several blocks, of one block, or once per group:
    the scatter about the global mean is still exact to the dtype's precision."""
    x = np.vstack([rng.standard_normal((700, 5)) * 1e-2 + off for off in (0.0, 300.0, -50.0)])
    acc = MomentAccumulator()
    acc.flush_rows = 256  # fold every few blocks (of 56-57 rows)
    if gather_rows:
        acc.gather_bytes = gather_rows * 5 * np.dtype(dtype).itemsize
    for part in np.array_split(x.astype(dtype), 37):
        acc.update(part)
    m = acc.result()
    assert m.n == 2100
    xf = x.astype(dtype).astype("f8")
    np.testing.assert_allclose(m.mean, xf.mean(0), rtol=1e-12 if dtype == "f8" else 1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(m.cov(), np.cov(xf, rowvar=False), rtol=rtol, atol=1e-12)


def test_blocks_of_mixed_dtypes_and_widths_of_gather(rng):
    """A float32 block after float64 ones flushes the gathered rows before the buffer changes."""
    x = rng.standard_normal((400, 6)) + 2.0
    acc = MomentAccumulator()
    acc.update(x[:150])
    acc.update(x[150:300].astype("f4"))
    acc.update(x[300:])
    m = acc.result()
    xf = np.vstack([x[:150], x[150:300].astype("f4").astype("f8"), x[300:]])
    np.testing.assert_allclose(m.cov(), np.cov(xf, rowvar=False), rtol=1e-6, atol=1e-6)


def test_row_log_keeps_ranges_not_arrays():
    """A pass over 10⁹ rows must not keep an 8-byte index per row: contiguous blocks fold into
    one range, and the identity 0..n−1 is None."""
    from geomkit.engine.moments import RowLog, row_numbers, take

    log = RowLog()
    for a in range(0, 10**6, 4096):  # the blocks of a full view
        log.add(np.arange(a, min(a + 4096, 10**6)))
    assert log.parts == [(0, 10**6)] and log.result() is None and log.n == 10**6
    gaps = RowLog()
    gaps.add(np.array([0, 1, 2]))
    gaps.add(np.array([4, 7]))  # a dropped row and a gap
    gaps.add(np.array([8, 9]))
    np.testing.assert_array_equal(gaps.result(), [0, 1, 2, 4, 7, 8, 9])
    assert gaps.parts[0] == (0, 3) and gaps.parts[-1] == (8, 10)
    merged = RowLog()
    merged.add(np.array([0, 1]))
    other = RowLog()
    other.add(np.array([2, 3]))
    assert merged.merge(other).result() is None
    np.testing.assert_array_equal(row_numbers(None, 3), [0, 1, 2])
    np.testing.assert_array_equal(take(np.array([5, 6, 7]), np.array([2, 0])), [7, 5])
    assert take(np.array([5, 6]), None).tolist() == [5, 6]

