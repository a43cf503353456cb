"""Variable-length reads (strings) run in a child process that is killed when the HDF5 library
hangs on a damaged heap; healthy reads return the same values as a direct read."""

import os
import time

import h5py
import numpy as np
import pytest

from conftest import DATA, run_cli, write_h5
from geomkit.errors import InputError
from geomkit.io.guarded import is_variable_length, read_values, run_guarded


def test_damaged_heap_is_an_input_error_not_a_hang():
    start = time.monotonic()
    proc = run_cli("info", DATA / "damaged_heap.h5", env={"GEOMKIT_READ_TIMEOUT": "3"})
    assert time.monotonic() - start < 30
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "damaged_heap.h5" in proc.stderr
    assert "did not finish" in proc.stderr and "Traceback" not in proc.stderr


def test_guarded_read_equals_direct_read(tmp_path):
    texts = ["plain", "ünïcödé ✓", "", "a\nb", "x" * 5000]
    ids = np.arange(5) * 7
    p = write_h5(tmp_path / "m.h5", np.ones((5, 2)), texts=texts, ids=ids)
    with h5py.File(p) as f:
        assert is_variable_length(f["texts"].dtype) and not is_variable_length(f["ids"].dtype)
        got = read_values(f["texts"], "m.h5:/texts")
        assert got.dtype == object and list(got) == texts
        np.testing.assert_array_equal(read_values(f["ids"], "m.h5:/ids"), ids)


def test_guarded_child_errors_and_timeouts_become_input_errors():
    def fails():
        raise OSError("boom")

    with pytest.raises(InputError, match="where.h5: cannot be read .*boom"):
        run_guarded(fails, "where.h5")
    with pytest.raises(InputError, match="where.h5: reading it did not finish in 1 s"):
        run_guarded(lambda: time.sleep(30), "where.h5", seconds=1)

    def dies():
        os._exit(7)

    with pytest.raises(InputError, match="where.h5: cannot be read"):
        run_guarded(dies, "where.h5")


def test_metadata_strings_are_read_in_one_child_per_file(tmp_path, monkeypatch):
    """ids, texts and labels (all strings) of a dump: one forked child for all three (a fork
    costs ~20 ms; every command opens a file), the same values as direct reads, and a dataset
    that fails inside the child is named in the error."""
    from geomkit import open_source
    from geomkit.io import guarded

    texts = ["plain", "ünïcödé ✓", "", "a\nb", "x" * 5000]
    ids = [f"id{i}" for i in range(5)]
    labels = ["a", "b", "a", "b", "c"]
    p = write_h5(tmp_path / "m.h5", np.ones((5, 2)), texts=texts, ids=ids, labels=labels)
    calls = []
    real = guarded.run_guarded

    def counting(read, where, **kw):
        calls.append(where)
        return real(read, where, **kw)

    monkeypatch.setattr(guarded, "run_guarded", counting)
    meta = open_source(str(p)).metadata
    assert len(calls) == 1 and all(n in calls[0] for n in ("/ids", "/texts", "/labels"))
    assert list(meta.texts) == texts and list(meta.ids) == ids and list(meta.labels) == labels

    class Broken:  # a string dataset whose read fails (as a damaged heap can)
        dtype, shape = np.dtype(object), (5,)

        def __getitem__(self, key):
            raise OSError("bad heap")

    with h5py.File(p) as f:
        items = [(f["ids"], "m.h5:/ids"), (Broken(), "m.h5:/texts")]
        with pytest.raises(InputError, match=r"m.h5:/texts: cannot be read \(OSError: bad heap\)"):
            guarded.read_many(items, "m.h5")
