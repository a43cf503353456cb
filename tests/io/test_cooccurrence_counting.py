"""count_corpus against an independent brute force: a plain double loop over each token's ±h
window inside its line, on random corpora (every whitespace and newline convention str.split and
text-mode reading know), on the shipped real sample's King James verses, with several processes
and with a budget so small that every run is spilled to disk and merged back."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

import geomkit.io.cooccurrence as cooc
from geomkit.errors import InputError
from geomkit.io.cooccurrence import count_corpus

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "minilm_kjv.h5"


def brute_force(text: str, window: int, min_count: int = 1):
    """(vocab, unigram counts, n_tokens, {(w, w'): n}) by the documented conventions: a line ends
    at \\n, \\r or \\r\\n; tokens are str.split(); words below min_count are out of the
    vocabulary but keep their positions; both directions are counted."""
    docs = [line.split() for line in re.split(r"\r\n|\r|\n", text)]
    unigrams = Counter(t for d in docs for t in d)
    vocab = sorted(w for w, c in unigrams.items() if c >= min_count)
    pairs = Counter()
    for d in docs:
        for i, w in enumerate(d):
            for j in range(max(0, i - window), min(len(d), i + window + 1)):
                if j != i and unigrams[w] >= min_count and unigrams[d[j]] >= min_count:
                    pairs[w, d[j]] += 1
    return vocab, [unigrams[w] for w in vocab], sum(map(len, docs)), pairs


def assert_same(co, text, window, min_count=1):
    vocab, counts, n_tokens, pairs = brute_force(text, window, min_count)
    assert list(co.vocab) == vocab
    assert co.counts.tolist() == counts and co.n_tokens == n_tokens
    m = co.matrix.tocoo()
    got = {(vocab[r], vocab[c]): x for r, c, x in zip(m.row, m.col, m.data)}
    assert got == dict(pairs)
    assert co.matrix.has_sorted_indices and co.matrix.dtype == np.float64


def write(tmp_path, text: str, name="c.txt") -> str:
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return str(p)


SEPARATORS = [" ", " ", " ", "  ", "\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85",
              "\xa0", "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
NEWLINES = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"]
WORDS = ["a", "b", "c", "ç", "日本", "x\x00y", "\ufeffz", "e\u0301", "ab", "b2", "Z", "ß", "😀"] \
    + [f"w{i}" for i in range(25)]


def random_text(rng, lines=60, longest=30) -> str:
    out = []
    for _ in range(rng.integers(1, lines)):
        tokens = rng.choice(WORDS, size=rng.integers(0, longest))
        out.append(rng.choice(SEPARATORS[:4]) * int(rng.integers(0, 2))
                   + "".join(t + rng.choice(SEPARATORS) for t in tokens)
                   + rng.choice(NEWLINES))
    text = "".join(out)
    return text.rstrip("\r\n") if rng.random() < 0.3 else text


def test_unicode_whitespace_list_is_str_split():
    assert set(cooc._UNICODE_SPACES) == {chr(c) for c in range(128, 0x110000) if chr(c).isspace()}


@pytest.mark.parametrize("seed", range(12))
def test_random_corpora_equal_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    text = random_text(rng)
    path = write(tmp_path, text)
    window = int(rng.choice([1, 2, 3, 10]))
    min_count = int(rng.choice([1, 1, 2, 4]))
    try:
        brute_force_vocab = brute_force(text, window, min_count)[0]
    except Exception:  # pragma: no cover
        raise
    if not brute_force_vocab:
        with pytest.raises(InputError, match="no word occurs"):
            count_corpus(path, window=window, min_count=min_count)
        return
    for options in ({}, {"workers": 2}, {"workers": 3, "memory": 1}, {"workers": 1, "memory": 1}):
        co = count_corpus(path, window=window, min_count=min_count, **options)
        assert_same(co, text, window, min_count)
        assert co.window == window


def kjv_text() -> str:
    with h5py.File(SAMPLE, "r") as f:
        verses = [t.decode("utf-8") if isinstance(t, bytes) else t for t in f["texts"][:]]
    return "\n".join(verses) + "\n"


@pytest.mark.parametrize("window,min_count", [(10, 1), (2, 3)])
def test_real_sample_verses_equal_brute_force(tmp_path, window, min_count):
    text = kjv_text()  # the 3 000 King James verses of samples/minilm_kjv.h5, one per line
    path = write(tmp_path, text)
    assert_same(count_corpus(path, window=window, min_count=min_count), text, window, min_count)
    assert_same(count_corpus(path, window=window, min_count=min_count, workers=2, memory=1 << 16),
                text, window, min_count)


def test_tiny_budget_spills_and_merges_to_the_same_counts(tmp_path, monkeypatch):
    text = kjv_text()
    path = write(tmp_path, text)
    spills = []
    save = cooc._Runs.spill

    def counted(self):
        spills.append(len(self.held))
        save(self)
    monkeypatch.setattr(cooc._Runs, "spill", counted)
    in_memory = count_corpus(path, window=5, memory=1 << 30, workers=1)
    assert not spills
    spilled = count_corpus(path, window=5, memory=1 << 18, workers=1)
    assert len(spills) > 5  # several sorted runs went to disk and were merged back
    assert (spilled.matrix != in_memory.matrix).nnz == 0
    assert_same(spilled, text, 5)


def test_one_long_line_over_many_blocks(tmp_path):
    # like text8: the whole corpus on one line, read and counted in many small blocks whose
    # windows must join across the block edges
    rng = np.random.default_rng(3)
    text = " ".join(rng.choice(WORDS, size=6000)) + "\n" + " ".join(rng.choice(WORDS, size=50))
    path = write(tmp_path, text)
    for workers in (1, 2):
        assert_same(count_corpus(path, window=7, memory=1, workers=workers), text, 7)


def test_documents_are_counted_like_the_file(tmp_path):
    rng = np.random.default_rng(5)
    docs = [list(rng.choice(WORDS, size=rng.integers(0, 20))) for _ in range(40)]
    co = count_corpus(str(tmp_path / "unused.txt"), window=3, documents=docs)
    assert_same(co, "\n".join(" ".join(d) for d in docs), 3)


def test_not_utf8_names_the_file_offset(tmp_path):
    data = ("a b c\n" * 3000).encode() + b"d \xff e\n"
    p = tmp_path / "bad.txt"
    p.write_bytes(data)
    at = data.index(b"\xff")
    for options in ({}, {"memory": 1, "workers": 2}):
        with pytest.raises(InputError, match=rf"bad.txt: is not UTF-8 text \(invalid start byte "
                                             rf"at byte {at}\)"):
            count_corpus(str(p), **options)


def test_temporary_files_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    path = write(tmp_path, kjv_text())
    count_corpus(path, window=3, memory=1 << 18, workers=2)
    assert list((tmp_path / "tmp").iterdir()) == []
