"""The Dask pass merges partial accumulators to exactly what one local pass gives."""

import numpy as np

from conftest import write_h5
from geomkit import open_source
from geomkit.engine import MomentAccumulator, RowStatAccumulator
from geomkit.engine.dask_backend import dask_pass


def test_dask_pass_equals_local(tmp_path, rng):
    x = rng.standard_normal((1000, 6)) * np.arange(1, 7) + 3
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p), memory=2**20) as src:
        moments, stats = dask_pass(src, MomentAccumulator, RowStatAccumulator, partitions=7,
                                   scheduler="threads")
    m = moments.result()
    assert m.n == 1000
    np.testing.assert_allclose(m.mean, x.mean(0), atol=1e-12)
    np.testing.assert_allclose(m.cov(), np.cov(x, rowvar=False), rtol=1e-11)
    s = stats.result()
    from geomkit.engine.moments import row_numbers
    np.testing.assert_allclose(np.sort(row_numbers(s.rows, 1000)), np.arange(1000))
    np.testing.assert_allclose(s.unit_sum, (x / np.linalg.norm(x, axis=1, keepdims=True)).sum(0))


def test_dask_pass_with_sample_and_processes(tmp_path, rng):
    x = rng.standard_normal((600, 4))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p), sample=200, seed=1) as src:
        rows = src.rows
        (moments,) = dask_pass(src, MomentAccumulator, partitions=3, scheduler="processes")
    np.testing.assert_allclose(moments.result().mean, x[rows].mean(0), atol=1e-12)
