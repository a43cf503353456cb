"""Atomic writes: an existing output survives a failure; per-item files; JSON has no NaN."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from geomkit.errors import UsageError
from geomkit.io.writers import EmbeddingWriter, atomic_path, dumps_json, write_json, write_per_item


def test_existing_output_kept_on_failure(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(out)) as tmp:
            with open(tmp, "w") as fh:
                fh.write("half")
            raise RuntimeError("boom")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left
    write_json(str(out), {"a": 1})
    assert json.loads(out.read_text()) == {"a": 1}


def test_missing_folder_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        write_json(str(tmp_path / "nope" / "r.json"), {})


def test_json_has_no_nan_literals():
    text = dumps_json({"a": float("nan"), "b": np.float32(1.5), "c": [np.inf, np.int64(3)]})
    assert json.loads(text) == {"a": None, "b": 1.5, "c": [None, 3]}
    assert "NaN" not in text and "Infinity" not in text


def test_per_item_csv_and_h5(tmp_path):
    frame = pd.DataFrame({"row": [0, 1], "id": ["a", "b"], "value": [0.5, 1.5]})
    write_per_item(str(tmp_path / "p.csv"), frame)
    assert pd.read_csv(tmp_path / "p.csv").to_dict("list") == frame.to_dict("list")
    write_per_item(str(tmp_path / "p.h5"), frame)
    with h5py.File(tmp_path / "p.h5") as f:
        assert list(f["id"].asstr()[0:2]) == ["a", "b"]
        np.testing.assert_array_equal(f["value"][0:2], [0.5, 1.5])
    with pytest.raises(UsageError, match=".csv or .h5"):
        write_per_item(str(tmp_path / "p.txt"), frame)


def test_embedding_writer_incomplete_write_leaves_nothing(tmp_path):
    out = tmp_path / "e.h5"
    with pytest.raises(RuntimeError, match="wrote 2 of 5 rows"):
        with EmbeddingWriter(str(out), 5, 3) as w:
            w.write(np.ones((2, 3)))
    assert not out.exists() and list(tmp_path.iterdir()) == []
