"""Word co-occurrence counts: read the CSR HDF5 format, or count a tokenised corpus, streaming.

HDF5 format (docs/format.md): datasets ``data``, ``indices``, ``indptr`` (scipy CSR of the V×V
counts n_{w,w'}), ``shape`` (2,), ``vocab`` (V UTF-8 strings), ``counts`` (V unigram counts n_w);
attribute ``window`` (h) when known.

Corpus format: UTF-8 text, one document per line, tokens separated by whitespace. Co-occurrences
are counted within ±h positions inside a document (windows never cross lines), in both directions.
Tokens below ``min_count`` are left out of the vocabulary but keep their positions (they still
separate the words around them). Counting streams the file twice (unigrams, then pairs) and
flushes pair buffers into a scipy.sparse matrix every ~``flush_pairs`` pairs, so memory is bounded by
the vocabulary and the number of distinct pairs, not by the corpus length.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import h5py
import numpy as np
import scipy.sparse as sp

from geomkit.errors import InputError
from geomkit.io.guarded import read_values
from geomkit.io.writers import atomic_path


@dataclass
class Cooccurrence:
    matrix: sp.csr_matrix  # V×V co-occurrence counts
    vocab: np.ndarray      # V words
    counts: np.ndarray     # V unigram counts
    window: int | None
    n_tokens: int          # corpus tokens (all, including out-of-vocabulary ones)


def read_cooccurrence(path: str) -> Cooccurrence:
    from geomkit.io.source import _decode, damaged, open_h5
    with open_h5(path) as f, damaged(lambda: path):
        missing = [k for k in ("data", "indices", "indptr", "shape", "vocab", "counts") if k not in f]
        if missing:
            raise InputError(f"{path}: not a co-occurrence file, missing {', '.join(missing)} "
                             f"(see docs/format.md).")
        shape = tuple(int(v) for v in f["shape"][0:2])
        try:
            matrix = sp.csr_matrix((f["data"][0:f["data"].shape[0]],
                                    f["indices"][0:f["indices"].shape[0]],
                                    f["indptr"][0:f["indptr"].shape[0]]), shape=shape)
            matrix.check_format(full_check=True)  # indptr monotone, indices in range
        except (ValueError, IndexError, TypeError) as exc:
            raise InputError(f"{path}: inconsistent CSR datasets ({exc}).") from None
        if matrix.data.size and not (np.isfinite(matrix.data).all() and matrix.data.min() >= 0):
            raise InputError(f"{path}:/data: co-occurrence counts must be finite and "
                             f"non-negative.")
        vocab = _decode(read_values(f["vocab"], f"{path}:/vocab"))
        counts = np.asarray(f["counts"][0:f["counts"].shape[0]], dtype=np.float64)
        # numeric attributes: fixed-size, not read through the heap
        window = int(f.attrs["window"]) if "window" in f.attrs else None
        n_tokens = int(f.attrs["n_tokens"]) if "n_tokens" in f.attrs else int(counts.sum())
    if counts.size and not (np.isfinite(counts).all() and counts.min() >= 0):
        raise InputError(f"{path}:/counts: unigram counts must be finite and non-negative.")
    if shape[0] != shape[1] or vocab.size != shape[0] or counts.size != shape[0]:
        raise InputError(f"{path}: shape {shape}, {vocab.size} vocab and {counts.size} counts do not "
                         f"agree.")
    return Cooccurrence(matrix, vocab, counts, window, n_tokens)


def write_cooccurrence(path: str, co: Cooccurrence) -> None:
    m = co.matrix.tocsr()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f["data"], f["indices"], f["indptr"] = m.data, m.indices, m.indptr
            f["shape"] = np.array(m.shape)
            f.create_dataset("vocab", data=np.array([str(w) for w in co.vocab], dtype=object),
                             dtype=h5py.string_dtype("utf-8"))
            f["counts"] = co.counts
            if co.window is not None:
                f.attrs["window"] = co.window
            f.attrs["n_tokens"] = co.n_tokens


def _documents(path: str):
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            for line in fh:
                yield line.split()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}).") from None


def word_counts(path: str, vocab) -> np.ndarray:
    """How often each word of ``vocab`` occurs in the text file ``path`` (float64)."""
    from collections import Counter

    found = Counter(t for tokens in _documents(path) for t in tokens)
    return np.array([found.get(str(w), 0) for w in vocab], dtype=np.float64)


def count_corpus(path: str, *, window: int = 10, min_count: int = 1,
                 flush_pairs: int = 5_000_000, documents=None) -> Cooccurrence:
    """Unigram and ±``window`` co-occurrence counts of a corpus file (or of ``documents``)."""
    docs = (lambda: iter(documents)) if documents is not None else (lambda: _documents(path))
    unigrams: Counter = Counter()
    n_tokens = 0
    for tokens in docs():
        unigrams.update(tokens)
        n_tokens += len(tokens)
    vocab = np.array(sorted(w for w, c in unigrams.items() if c >= min_count), dtype=object)
    if vocab.size == 0:
        raise InputError(f"{path}: no word occurs at least {min_count} times.")
    index = {w: i for i, w in enumerate(vocab)}
    counts = np.array([unigrams[w] for w in vocab], dtype=np.float64)
    v = vocab.size
    total = sp.csr_matrix((v, v), dtype=np.float64)
    rows_buf, cols_buf, pending = [], [], 0

    def flush():
        nonlocal total, rows_buf, cols_buf, pending
        if pending:
            r, c = np.concatenate(rows_buf), np.concatenate(cols_buf)
            total = total + sp.csr_matrix((np.ones(r.size), (r, c)), shape=(v, v))
        rows_buf, cols_buf, pending = [], [], 0

    for tokens in docs():
        ids = np.fromiter((index.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
        for offset in range(1, min(window, ids.size - 1) + 1):
            a, b = ids[:-offset], ids[offset:]
            keep = (a >= 0) & (b >= 0)
            a, b = a[keep], b[keep]
            rows_buf += [a, b]
            cols_buf += [b, a]
            pending += 2 * a.size
        if pending >= flush_pairs:
            flush()
    flush()
    total.sum_duplicates()
    return Cooccurrence(total.tocsr(), vocab, counts, window, n_tokens)


def shuffled_documents(path: str, seed: int, documents=None):
    """The corpus with all its tokens randomly permuted, split into documents of the same lengths."""
    docs = list(documents) if documents is not None else list(_documents(path))
    lengths = [len(d) for d in docs]
    tokens = np.array([t for d in docs for t in d], dtype=object)
    np.random.default_rng(seed).shuffle(tokens)
    out, pos = [], 0
    for n in lengths:
        out.append(list(tokens[pos:pos + n]))
        pos += n
    return out
