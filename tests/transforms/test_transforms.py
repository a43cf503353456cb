"""Transforms against their definitions: whitened output has identity covariance, etc."""

import h5py
import numpy as np
import pytest

from conftest import write_h5
from geomkit import open_source
from geomkit.errors import InputError, UsageError
from geomkit.transforms import Pipeline, Step, parse_steps


def _aniso(rng, n=2000, d=10):
    return rng.standard_normal((n, d)) @ np.diag(np.linspace(0.1, 10, d)) @ np.linalg.qr(
        rng.standard_normal((d, d)))[0] + 7.0


def _fit_apply(path, pipeline):
    with open_source(str(path)) as src:
        pipeline.fit(src)
        return np.concatenate([pipeline.apply(b.x) for b in src.blocks(block_rows=333)])


def test_whiten_gives_identity_covariance(tmp_path, rng):
    x = _aniso(rng)
    p = write_h5(tmp_path / "a.h5", x)
    y = _fit_apply(p, parse_steps([("whiten", True)], None))
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(10), atol=1e-9)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-9)


def test_whiten_matches_bert_whitening_formula(tmp_path, rng):
    x = _aniso(rng)
    p = write_h5(tmp_path / "a.h5", x)
    y = _fit_apply(p, parse_steps([("whiten", True)], 4))
    mu = x.mean(0)
    lam, u = np.linalg.eigh(np.cov(x, rowvar=False))
    order = np.argsort(lam)[::-1][:4]
    expect = (x - mu) @ u[:, order] / np.sqrt(lam[order])
    # eigenvector signs are arbitrary: compare column by column up to sign
    for j in range(4):
        s = np.sign(expect[:, j] @ y[:, j])
        np.testing.assert_allclose(y[:, j], s * expect[:, j], atol=1e-9)


def test_center_normalize_abtt(tmp_path, rng):
    x = _aniso(rng)
    p = write_h5(tmp_path / "a.h5", x)
    np.testing.assert_allclose(_fit_apply(p, parse_steps([("center", True)], None)), x - x.mean(0),
                               atol=1e-10)
    y = _fit_apply(p, parse_steps([("normalize", True), ("center", True)], None))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(y, u - u.mean(0), atol=1e-12)  # order matters: fitted after normalize
    y = _fit_apply(p, parse_steps([("abtt", 2)], None))
    c = x - x.mean(0)
    lam, vec = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vec[:, np.argsort(lam)[::-1][:2]]
    np.testing.assert_allclose(y, c - c @ top @ top.T, atol=1e-9)
    assert np.abs(y @ top).max() < 1e-9  # nothing left along the removed directions


def test_whiten_rank_deficient_drops_null_directions(tmp_path, rng):
    x = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 6))  # rank 3 in 6 dims
    p = write_h5(tmp_path / "a.h5", x)
    y = _fit_apply(p, parse_steps([("whiten", True)], None))
    assert y.shape[1] == 3
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(3), atol=1e-8)
    with open_source(str(p)) as src, pytest.raises(UsageError, match="only 3 directions"):
        parse_steps([("whiten", True)], 5).fit(src)


@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_whiten_keeps_at_most_rank_directions_and_never_scales_noise(tmp_path, rng, dtype):
    """10 × 64 has rank 9 once centred: the other 55 eigenvalues are round-off (~1e-8 of the top
    in float32) and must not be whitened (they used to be kept: std ≈ 2000 on new data)."""
    x = rng.standard_normal((10, 64)).astype(dtype)
    p = write_h5(tmp_path / "small.h5", x)
    pipe = parse_steps([("whiten", True)], None)
    with open_source(str(p)) as src:
        pipe.fit(src)
    described = pipe.describe()[0]
    assert described["components"] == 9 and described["dropped_directions"] == 55
    new = rng.standard_normal((2000, 64)).astype(dtype)
    y = pipe.apply(new)
    assert y.shape == (2000, 9)
    # the kept directions carry real variance: new data from the same law stays O(1)
    assert np.abs(y).max() < 50 and y.std(axis=0).max() < 5


def test_whiten_floor_is_relative_to_the_dtype():
    from geomkit.transforms import whiten_floor
    lam = np.array([4.0, 1.0, 1e-9])
    assert whiten_floor(lam, np.float32) == pytest.approx(4.0 * 3 * np.finfo(np.float32).eps)
    assert whiten_floor(lam, np.float64) == pytest.approx(4.0 * 3 * np.finfo(np.float64).eps)
    assert 1e-9 < whiten_floor(lam, np.float32) and 1e-9 > whiten_floor(lam, np.float64)


def test_whiten_constant_data_is_an_input_error(tmp_path):
    p = write_h5(tmp_path / "const.h5", np.ones((20, 5)))
    with open_source(str(p)) as src, pytest.raises(InputError, match="const.h5.*no direction"):
        parse_steps([("whiten", True)], None).fit(src)


def test_pipeline_save_load_roundtrip(tmp_path, rng):
    x = _aniso(rng)
    p = write_h5(tmp_path / "a.h5", x)
    pipe = parse_steps([("center", True), ("whiten", True), ("normalize", True)], 5)
    y = _fit_apply(p, pipe)
    with h5py.File(tmp_path / "params.h5", "w") as f:
        pipe.save(f.create_group("t"))
    with h5py.File(tmp_path / "params.h5", "r") as f:
        loaded = Pipeline.load(f["t"], "params")
    np.testing.assert_allclose(loaded.apply(x), y, atol=1e-12)
    assert [s.name for s in loaded.steps] == ["center", "whiten", "normalize"]
    assert isinstance(loaded.steps[1], Step) and loaded.steps[1].params["matrix"].shape == (10, 5)


def test_whiten_identical_rows_is_an_input_error(tmp_path, rng):
    """Identical rows leave only rounding in the covariance (~1e-13 here, from float32 sums):
    relative to the values' scale that is noise, not a direction to whiten."""
    row = rng.standard_normal(8).astype("f4")
    p = write_h5(tmp_path / "same.h5", np.tile(row, (64, 1)))
    with open_source(str(p)) as src, pytest.raises(InputError, match="same.h5.*no direction"):
        parse_steps([("whiten", True)], None).fit(src)
