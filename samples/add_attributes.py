"""Add two real numeric attributes of the verses to samples/minilm_kjv.h5 (for `geomkit axes`).

Derived deterministically from the datasets already in the file (no model is run):

- ``n_words``: the verse's length in words (whitespace-separated tokens of ``texts``);
- ``book_order``: the canonical position of the verse's book in the King James Bible, 1 (Genesis)
  to 66 (Revelation), from the book name in ``ids`` ("Luke 1:63" -> 42).

    python samples/add_attributes.py [samples/minilm_kjv.h5]

Idempotent: existing datasets of these names are replaced.
"""

import sys

import h5py
import numpy as np

BOOKS = """Genesis Exodus Leviticus Numbers Deuteronomy Joshua Judges Ruth 1_Samuel 2_Samuel
1_Kings 2_Kings 1_Chronicles 2_Chronicles Ezra Nehemiah Esther Job Psalms Proverbs Ecclesiastes
Song_of_Solomon Isaiah Jeremiah Lamentations Ezekiel Daniel Hosea Joel Amos Obadiah Jonah Micah
Nahum Habakkuk Zephaniah Haggai Zechariah Malachi Matthew Mark Luke John Acts Romans
1_Corinthians 2_Corinthians Galatians Ephesians Philippians Colossians 1_Thessalonians
2_Thessalonians 1_Timothy 2_Timothy Titus Philemon Hebrews James 1_Peter 2_Peter 1_John 2_John
3_John Jude Revelation""".split()
ORDER = {name.replace("_", " "): i + 1 for i, name in enumerate(BOOKS)}


def book_of(verse_id: str) -> str:
    return verse_id.rsplit(" ", 1)[0]


def main(path: str = "samples/minilm_kjv.h5") -> None:
    with h5py.File(path, "r+") as f:
        ids = [v.decode() if isinstance(v, bytes) else str(v) for v in f["ids"][:]]
        texts = [v.decode() if isinstance(v, bytes) else str(v) for v in f["texts"][:]]
        unknown = sorted({book_of(i) for i in ids} - set(ORDER))
        if unknown:
            raise SystemExit(f"books not in the canon list: {unknown}")
        attrs = {"n_words": np.array([len(t.split()) for t in texts], dtype=np.int32),
                 "book_order": np.array([ORDER[book_of(i)] for i in ids], dtype=np.int32)}
        for name, values in attrs.items():
            if name in f:
                del f[name]
            f.create_dataset(name, data=values)
        f.attrs["attributes_added_by"] = "samples/add_attributes.py"
    print(f"{path}: added n_words and book_order")


if __name__ == "__main__":
    main(*sys.argv[1:])
