"""Selection, default dataset rule, metadata, blocks, sampling, layers and prefixes."""

import h5py
import numpy as np
import pytest

from conftest import write_h5
from geomkit import open_source
from geomkit.errors import InputError, UsageError
from geomkit.io.selection import parse_selection


def test_selection_splits_path_and_dataset(tmp_path):
    p = write_h5(tmp_path / "a.h5", np.ones((3, 2)))
    assert parse_selection(str(p)).dataset is None
    sel = parse_selection(f"{p}:/g/x")
    assert (sel.path, sel.dataset) == (str(p), "/g/x")
    assert parse_selection(f"{p}:g/x").dataset == "/g/x"
    with pytest.raises(InputError, match="no such file"):
        parse_selection(str(tmp_path / "missing.h5") + ":/x")


def test_path_containing_colon(tmp_path):
    p = write_h5(tmp_path / "a:b.h5", np.ones((3, 2)))
    assert parse_selection(str(p)).path == str(p)
    assert parse_selection(f"{p}:/embeddings").dataset == "/embeddings"


def test_default_dataset_rule(tmp_path, rng):
    x = rng.standard_normal((5, 3))
    p = write_h5(tmp_path / "a.h5", x, dataset="g/vectors", ids=np.arange(5))
    with open_source(str(p)) as src:  # the only 2-D float dataset
        assert src.dataset == "/g/vectors"
    p2 = tmp_path / "b.h5"
    with h5py.File(p2, "w") as f:
        f["a"] = x
        f["b"] = x
    with pytest.raises(InputError, match="several candidate datasets.*/a.*/b"):
        open_source(str(p2))
    with h5py.File(p2, "a") as f:
        f["embeddings"] = x
    with open_source(str(p2)) as src:
        assert src.dataset == "/embeddings"


def test_metadata_aligned_and_decoded(tmp_path, rng):
    x = rng.standard_normal((4, 3)).astype("f4")
    p = write_h5(tmp_path / "a.h5", x, ids=["a", "b", "c", "d"], texts=["é", "<b>", "x", "y"],
                 labels=["p", "q", "p", "q"], counts=[1, 5, 2, 9], other=[0.1, 0.2, 0.3, 0.4])
    with open_source(str(p)) as src:
        m = src.metadata
        assert list(m.ids) == ["a", "b", "c", "d"]
        assert m.texts[0] == "é"
        assert list(m.counts) == [1, 5, 2, 9]
        assert list(m.take(np.array([1, 3])).labels) == ["q", "q"]
    with open_source(str(p), metadata_names={"counts": "other"}) as src:
        np.testing.assert_allclose(src.metadata.counts, [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(InputError, match="no labels dataset 'nope'"):
        open_source(str(p), metadata_names={"labels": "nope"})


def test_blocks_cover_all_rows_in_order(tmp_path, rng):
    x = rng.standard_normal((1000, 8))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p), memory=2**20) as src:
        blocks = list(src.blocks(block_rows=97))
        assert len(blocks) == 11
        np.testing.assert_array_equal(np.concatenate([b.rows for b in blocks]), np.arange(1000))
        np.testing.assert_array_equal(np.concatenate([b.x for b in blocks]), x)
        unit = np.concatenate([b.x for b in src.blocks(unit=True, block_rows=300)])
        np.testing.assert_allclose(unit, x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-12)
        assert src.block_rows(copies=4) == 2**20 // (8 * 8 * 4)


def test_float16_and_float32_compute_dtypes(tmp_path, rng):
    x = rng.standard_normal((10, 4))
    for dt, expect in (("f2", np.float32), ("f4", np.float32), ("f8", np.float64)):
        p = write_h5(tmp_path / f"{dt}.h5", x.astype(dt))
        with open_source(str(p)) as src:
            blk = next(src.blocks())
            assert blk.x.dtype == expect
            np.testing.assert_array_equal(blk.x, x.astype(dt).astype(expect))
            assert next(src.blocks(dtype=np.float64)).x.dtype == np.float64


def test_sample_is_seeded_subset(tmp_path, rng):
    x = rng.standard_normal((500, 4))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p), sample=50, seed=3) as a, open_source(str(p), sample=50, seed=3) as b:
        ra = np.concatenate([blk.rows for blk in a.blocks(block_rows=7)])
        rb = b.rows
        np.testing.assert_array_equal(ra, rb)
        assert len(set(ra)) == 50 and np.all(np.diff(ra) > 0)
        np.testing.assert_array_equal(np.concatenate([blk.x for blk in a.blocks(block_rows=7)]), x[ra])
    with open_source(str(p), sample=50, seed=4) as c:
        assert not np.array_equal(c.rows, ra)


def test_layers_and_prefix_dims(tmp_path, rng):
    x = rng.standard_normal((20, 3, 8)).astype("f4")
    p = write_h5(tmp_path / "a.h5", x, dataset="hidden_states")
    with pytest.raises(UsageError, match="layer stack.*layer=INT"):
        open_source(str(p))
    with open_source(str(p), layer=-1, dims=5) as src:
        assert (src.layer, src.d, src.n) == (2, 5, 20)
        np.testing.assert_array_equal(next(src.blocks()).x, x[:, 2, :5])
        views = src.sweep("all", None)
        assert [v for _, v, _ in views] == [0, 1, 2]
        np.testing.assert_array_equal(next(views[0][2].blocks()).x, x[:, 0, :5])
    with pytest.raises(UsageError, match="out of range"):
        open_source(str(p), layer=3)
    # streaming reads into the reused buffer (hyperslab of one layer and a prefix), block by block
    for layer, dims in [(1, 5), (2, None), (0, 8)]:
        with open_source(str(p), layer=layer, dims=dims) as src:
            got = [b.x.copy() for b in src.blocks(block_rows=7, reuse=True)]
        np.testing.assert_array_equal(np.vstack(got), x[:, layer, :dims])
    with open_source(str(p), layer=0) as src:
        dims = src.sweep(None, [2, 4])
        assert [(k, v, view.d) for k, v, view in dims] == [("dims", 2, 2), ("dims", 4, 4)]


def test_drop_nonfinite_reports_count(tmp_path, rng):
    x = rng.standard_normal((30, 4))
    x[[3, 17], 1] = np.nan
    x[25, 0] = np.inf
    p = write_h5(tmp_path / "a.h5", x, ids=[f"r{i}" for i in range(30)])
    with open_source(str(p), drop_nonfinite=True) as src:
        rows = np.concatenate([b.rows for b in src.blocks(block_rows=8)])
        assert src.n_dropped == 3 and src.n == 27
        assert not np.isin([3, 17, 25], rows).any()
    with open_source(str(p)) as src:
        with pytest.raises(InputError, match=r"3 of 30 rows contain NaN or Inf \(rows 3, 17, 25\)"):
            list(src.blocks())


def test_zero_rows_refused_for_unit_vectors(tmp_path, rng):
    x = rng.standard_normal((10, 4))
    x[6] = 0
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        assert sum(b.x.shape[0] for b in src.blocks()) == 10  # fine without cosine
        with pytest.raises(InputError, match=r"1 of 10 rows are all zero \(rows 6\)"):
            list(src.blocks(unit=True))


def test_read_rows_sparse_and_dense(tmp_path, rng):
    x = rng.standard_normal((5000, 3))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        for idx in (np.arange(10, 20), np.array([1, 3, 5, 7]), np.array([0, 999, 4999])):
            np.testing.assert_array_equal(src.read_rows(idx), x[idx])


def test_read_rows_windows_dense_as_ranges_sparse_as_points(tmp_path, rng, monkeypatch):
    """Dense windows are read as one range (a point selection costs ~70 range rows on chunked
    dumps), sparse ones by points; the rows equal the array's either way (3-D layers too)."""
    import geomkit.io.source as source

    monkeypatch.setattr(source, "READ_WINDOW_BYTES", 1024 * 3 * 8)  # windows of <= 1 024 rows
    x = rng.standard_normal((20000, 3))
    p = write_h5(tmp_path / "w.h5", x)
    dense = np.arange(100, 1100, 2)            # 500 rows over 1 000: one range read
    sparse = np.arange(5000, 20000, 997)       # one row in ~1 000: point reads
    idx = np.concatenate([dense, sparse])
    ranges = []
    with open_source(str(p)) as src:
        real = src._read_range
        monkeypatch.setattr(src, "_read_range", lambda a, b, out=None: (ranges.append((a, b)),
                                                                         real(a, b, out))[1])
        np.testing.assert_array_equal(src.read_rows(idx), x[idx])
    assert ranges == [(100, 1099)]
    layers = rng.standard_normal((3000, 2, 4))
    q = write_h5(tmp_path / "l.h5", layers)
    with open_source(f"{q}:/embeddings", layer=1) as src:
        sel = np.array([0, 2, 4, 6, 2500, 2999])
        np.testing.assert_array_equal(src.read_rows(sel), layers[sel, 1])


def test_huge_finite_rows_are_not_mistaken_for_nonfinite(tmp_path, rng):
    x = rng.standard_normal((6, 4)).astype("f4")
    x[2] = 3e38  # the row sum overflows float32, the row is still finite
    x[4, 1] = np.nan
    p = write_h5(tmp_path / "big.h5", x)
    with open_source(str(p), drop_nonfinite=True) as src:
        rows = np.concatenate([b.rows for b in src.blocks()])
    assert rows.tolist() == [0, 1, 2, 3, 5] and src.n_dropped == 1


def test_streaming_reads_of_a_chunked_prefix(tmp_path, rng):
    import h5py
    x = rng.standard_normal((1000, 12))
    p = tmp_path / "c.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("embeddings", data=x, chunks=(64, 12))
    with open_source(str(p), dims=5) as src:
        got = [b.x.copy() for b in src.blocks(block_rows=100, reuse=True)]
    np.testing.assert_array_equal(np.vstack(got), x[:, :5])


def test_finiteness_checked_until_a_complete_pass_found_none(tmp_path, rng, monkeypatch):
    x = rng.standard_normal((300, 6))
    p = write_h5(tmp_path / "a.h5", x)
    with open_source(str(p)) as src:
        next(src.blocks(block_rows=50))  # an unfinished pass proves nothing
        calls = []
        real = src.validate
        monkeypatch.setattr(src, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
        assert sum(b.rows.size for b in src.blocks(block_rows=50)) == 300
        assert len(calls) == 6
        np.testing.assert_array_equal(np.vstack([b.x for b in src.blocks(block_rows=50)]), x)
        assert len(calls) == 6  # the second complete pass skipped the check
        list(src.blocks(block_rows=50, dtype=np.float32))
        assert len(calls) == 12  # another dtype (a narrower one may overflow): checked again
    bad = x.copy()
    bad[[7, 250]] = np.nan
    q = write_h5(tmp_path / "b.h5", bad)
    with open_source(str(q)) as src:
        for _ in range(2):  # every pass refuses the file
            with pytest.raises(InputError, match="2 of 300 rows contain NaN"):
                list(src.blocks(block_rows=50))
    with open_source(str(q), drop_nonfinite=True) as src:
        for _ in range(2):  # every pass drops the same rows
            rows = np.concatenate([b.rows for b in src.blocks(block_rows=50)])
            np.testing.assert_array_equal(rows, np.setdiff1d(np.arange(300), [7, 250]))


def test_bad_row_messages_do_not_scan_a_huge_view(tmp_path, monkeypatch):
    """Counting every bad row of a 10⁹-row view would take hours: past SCAN_FOR_MESSAGE values
    the message names the rows found so far and says the rest were not all checked."""
    import geomkit.io.source as source_module

    x = np.ones((400, 4))
    x[[7, 300]] = 0
    p = write_h5(tmp_path / "z.h5", x)
    monkeypatch.setattr(source_module, "SCAN_FOR_MESSAGE", 100)
    with open_source(str(p)) as src:
        calls = []
        monkeypatch.setattr(src, "scan", lambda: calls.append(1))
        with pytest.raises(InputError, match=r"rows 7, 300 are all zero \(the first found; the other "
                                             r"of the 400 rows were not all checked\)"):
            src.to_array(nonzero=True)
        assert not calls
