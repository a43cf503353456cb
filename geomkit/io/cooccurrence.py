"""Word co-occurrence counts: read the CSR HDF5 format, or count a tokenised corpus, streaming.

HDF5 format (docs/format.md): datasets ``data``, ``indices``, ``indptr`` (scipy CSR of the V×V
counts n_{w,w'}), ``shape`` (2,), ``vocab`` (V UTF-8 strings), ``counts`` (V unigram counts n_w);
attribute ``window`` (h) when known.

Corpus format: UTF-8 text, one document per line (a line ends at \\n, \\r or \\r\\n), tokens
separated by whitespace (what ``str.split()`` splits on). Co-occurrences are counted within ±h
positions inside a document (windows never cross lines), in both directions. Tokens below
``min_count`` are left out of the vocabulary but keep their positions (they still separate the
words around them). Counting (:func:`count_corpus`) reads the file twice — once as text to
tokenise it, once as the int32 ids it wrote to a temporary file — in one process per part of the
file, and holds the pair counts as sorted runs within ``memory``, spilling them to disk beyond it,
so memory is bounded by the vocabulary and the number of distinct pairs, not by the corpus length.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from operator import itemgetter

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


# --- counting a corpus -------------------------------------------------------------------------
# Two passes over the corpus, in ``workers`` processes that each take one contiguous byte range
# (cut after a newline):
#   1. tokenise: bytes.split() on blocks of the file; token → local id through a dict; the ids go
#      to a temporary int32 file, with -1 where a line ends; unigram counts per local id.
#   2. count: the local ids are mapped to the final (sorted, min_count-filtered) vocabulary; for
#      each offset d = 1..h, the pair (ids[i], ids[i+d]) inside one line is coded as
#      lo·V + hi (lo ≤ hi: each unordered pair once), the codes of a block are sorted and
#      run-length counted into a run (an upper-triangular CSR of int64 counts); runs are added in
#      memory while they fit the budget, and spilled to the temporary directory when they would not.
# The runs are then merged row block by row block into the CSR of the upper triangle U, and the
# symmetric counts are U + Uᵀ (a pair of one word with itself, at distance d, counts 2 as before).

_ASCII_SPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
# what str.split() also takes for whitespace (outside ASCII), as UTF-8 byte sequences
_UNICODE_SPACES = "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
    "\u200a\u2028\u2029\u202f\u205f\u3000"
_UNICODE_SPACE = re.compile(b"|".join(re.escape(c.encode("utf-8")) for c in _UNICODE_SPACES))
# after this, bytes.split() splits where str.split() does, and every line end is one b"\n"
_NORMALISE = bytes.maketrans(b"\r\x1c\x1d\x1e\x1f", b"\n    ")
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[list(b" \t\n\x0b\x0c")] = True
_READ_BYTES = 4 << 20       # most bytes read per tokenising block
_SPLIT_BYTES = 16 << 20     # a file smaller than this is tokenised by one process


def _byte_ranges(path: str, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous byte ranges of the file, each after the first starting right after a
    b"\\n" (a line end in every newline convention), so no line is split between two ranges."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            pos = max(size * k // parts, cuts[-1])
            fh.seek(pos)
            while True:
                block = fh.read(1 << 16)
                if not block:
                    pos = size
                    break
                nl = block.find(b"\n")
                if nl >= 0:
                    pos += nl + 1
                    break
                pos += len(block)
            cuts.append(pos)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _blocks(path: str, start: int, end: int, size: int = _READ_BYTES):
    """(file offset, bytes) blocks of ``path[start:end]``, each cut after its last ASCII space
    byte, so tokens and UTF-8 sequences are never split between blocks."""
    carry, offset = b"", start
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0:
                data = fh.read(min(size, left))
                if not data:
                    break
                left -= len(data)
                block = carry + data
                cut = len(block)
                if left > 0:
                    cut = max(block.rfind(bytes([c])) for c in _ASCII_SPACE) + 1
                if cut <= 0:           # no space yet: one long token, read on
                    carry = block
                    continue
                yield offset, block[:cut]
                offset += cut
                carry = block[cut:]
            if carry:
                yield offset, carry
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}).") from None


def _tokenise(path: str, start: int, end: int, id_path: str, read_bytes: int = _READ_BYTES):
    """Pass 1 over ``path[start:end]``: local ids to ``id_path`` (int32, -1 at each line end);
    returns (words as UTF-8 bytes in local-id order, their counts, tokens)."""
    index = defaultdict()
    index.default_factory = index.__len__    # a new word gets the next local id
    counts = np.zeros(0, dtype=np.int64)
    n_tokens = 0
    with open(id_path, "wb") as out:
        for offset, block in _blocks(path, start, end, read_bytes):
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: is not UTF-8 text ({exc.reason} at byte "
                                 f"{offset + exc.start}).") from None
            if not block.isascii():
                block = _UNICODE_SPACE.sub(b" ", block)
            block = block.translate(_NORMALISE)
            tokens = block.split()
            if not tokens:
                ids = np.zeros(0, dtype=np.int32)
            elif len(tokens) == 1:
                ids = np.array([index[tokens[0]]], dtype=np.int32)
            else:
                ids = np.array(itemgetter(*tokens)(index), dtype=np.int32)
            arr = np.frombuffer(block, dtype=np.uint8)
            space = _IS_SPACE[arr]
            starts = np.flatnonzero(~space[1:] & space[:-1]) + 1
            if arr.size and not space[0]:
                starts = np.r_[0, starts]
            newline = arr == 10
            n_lines = int(np.count_nonzero(newline))
            assert starts.size == ids.size, "tokeniser disagreement"
            stream = np.full(ids.size + n_lines, -1, dtype=np.int32)
            # token i goes after the line ends before it
            at = np.arange(ids.size)
            if n_lines:
                at += np.cumsum(newline, dtype=np.int32)[starts]
            stream[at] = ids
            stream.tofile(out)
            if len(index) > counts.size:
                counts = np.concatenate([counts, np.zeros(len(index) - counts.size, np.int64)])
            counts += np.bincount(ids, minlength=counts.size)
            n_tokens += ids.size
    return list(index), counts, n_tokens


def _code_dtype(v: int):
    return np.uint32 if v * v < 2**32 else np.uint64


def _run(codes: np.ndarray, v: int) -> sp.csr_matrix:
    """Sorted pair codes lo·V + hi → the upper-triangular CSR of their counts (int64)."""
    first = np.empty(codes.size, dtype=bool)
    first[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, codes.size))
    codes = codes[starts]
    rows = codes // codes.dtype.type(v)
    cols = (codes - rows * codes.dtype.type(v)).astype(np.int32)
    rows = rows.astype(np.int64)
    indptr = np.zeros(v + 1, dtype=np.int32 if codes.size < 2**31 else np.int64)
    np.cumsum(np.bincount(rows, minlength=v), out=indptr[1:])
    return _csr(counts.astype(np.int64), cols, indptr, v)


def _csr(data, indices, indptr, v) -> sp.csr_matrix:
    m = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, v))
    m.has_canonical_format = True   # built sorted and without duplicates: no check needed
    return m


def _merge(runs: list):
    """The sum of several runs (scipy adds canonical CSR matrices by a linear merge of rows);
    the smallest two first, so each entry is copied O(log runs) times."""
    runs = list(runs)
    while len(runs) > 1:
        runs.sort(key=lambda r: r.nnz)
        runs = [(runs[0] + runs[1]).tocsr()] + runs[2:]
    return runs[0] if runs else None


class _Runs:
    """Runs of pair counts (CSR) held in memory up to ``budget`` bytes, then spilled to files."""

    def __init__(self, budget: int, folder: str, tag: str):
        self.budget, self.folder, self.tag = budget, folder, tag
        self.held, self.files = [], []

    def add(self, run):
        self.held.append(run)
        # merge like a binary counter: a run is merged once it is as large as the one before
        while len(self.held) > 1 and self.held[-1].nnz * 2 >= self.held[-2].nnz:
            self.held[-2:] = [_merge(self.held[-2:])]
        if sum(_nbytes(r) for r in self.held) > self.budget:
            self.spill()

    def spill(self):
        run = _merge(self.held)
        self.held = []
        if run is not None:
            name = os.path.join(self.folder, f"{self.tag}-{len(self.files)}")
            for part in ("data", "indices", "indptr"):
                np.save(f"{name}.{part}.npy", getattr(run, part))
            self.files.append(name)

    def result(self, to_files: bool = False):
        """The runs: an in-memory one when nothing was spilled (and not ``to_files``), else the
        spilled file names."""
        if not self.files and not to_files:
            run = _merge(self.held)
            return [run] if run is not None else []
        self.spill()
        return self.files


def _nbytes(m) -> int:
    return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes


def _count_pairs(id_path: str, remap: np.ndarray, v: int, window: int, budget: int,
                 folder: str, tag: str, block_tokens: int, to_files: bool = False):
    """Pass 2: the co-occurrence runs of one id file (see :class:`_Runs`)."""
    dtype = _code_dtype(v)
    small = dtype == np.uint32
    lookup = np.append(remap, -1).astype(np.int32)      # index -1 (line end) → -1
    runs = _Runs(budget, folder, tag)
    total = os.path.getsize(id_path) // 4
    tail_ids = np.zeros(0, dtype=np.int32)
    tail_key = np.zeros(0, dtype=np.int64)
    lines = 0
    for pos in range(0, total, block_tokens):
        raw = np.fromfile(id_path, dtype=np.int32, count=min(block_tokens, total - pos),
                          offset=4 * pos)
        ids = lookup[raw]
        # the key of a pair's two tokens is equal iff both are vocabulary words of one line:
        # the line's number for vocabulary words, a unique negative number for the rest
        line = np.cumsum(raw == -1, dtype=np.int64)
        line += lines
        lines = int(line[-1])
        key = np.where(ids >= 0, line, -1 - (pos + np.arange(raw.size, dtype=np.int64)))
        del raw, line
        ids = np.concatenate([tail_ids, ids])
        key = np.concatenate([tail_key, key])
        t, n = tail_ids.size, ids.size          # pairs whose right token is in this block only
        codes = np.empty(n * window, dtype=dtype)
        k = 0
        for d in range(1, window + 1):
            i0 = max(t - d, 0)
            if n - d <= i0:
                break
            keep = np.equal(key[i0:n - d], key[i0 + d:])
            left, right = ids[i0:n - d][keep], ids[i0 + d:][keep]
            out = codes[k:k + left.size]
            k += left.size
            if small:       # V² < 2³²: lo·V + hi in uint32 (ids ≥ 0 here, so the views are exact)
                np.minimum(left, right, out=out.view(np.int32))
                out *= np.uint32(v)
                out += np.maximum(left, right).view(np.uint32)
            else:
                out[:] = np.minimum(left, right)
                out *= np.uint64(v)
                out += np.maximum(left, right).astype(np.uint64)
            del keep, left, right, out
        if k:
            codes = codes[:k]
            codes.sort()
            runs.add(_run(codes, v))
        del codes
        tail_ids, tail_key = ids[-window:], key[-window:]
    return runs.result(to_files)


def _count_worker(args):
    kind = args[0]
    if kind == "tokenise":
        return _tokenise(*args[1:])
    return _count_pairs(*args[1:])


def _load_run(run):
    if isinstance(run, str):
        return tuple(np.load(f"{run}.{part}.npy", mmap_mode="r")
                     for part in ("data", "indices", "indptr"))
    return run.data, run.indices, run.indptr


def _upper_csr(runs: list, v: int, block_bytes: int) -> sp.csr_matrix:
    """The sum of the runs (in memory or spilled files, read through memory maps a block of
    rows at a time, each block about ``block_bytes`` of the runs): the upper triangle's CSR."""
    if not runs:
        return _csr(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(v + 1, np.int32), v)
    if len(runs) == 1 and not isinstance(runs[0], str):
        return runs[0]
    runs = [_load_run(r) for r in runs]
    total = sum(_nbytes_of(r) for r in runs)
    # (a block costs a merge of one slice of every run: with very many runs, fewer blocks)
    n_blocks = max(1, min(-(-total // max(block_bytes, 1)), 1 << 16 // len(runs)))
    cuts = np.unique(np.linspace(0, v, n_blocks + 1).astype(np.int64))
    data, indices, row_nnz = [], [], []
    for r0, r1 in zip(cuts[:-1], cuts[1:]):
        pieces = []
        for d, i, p in runs:
            a, b = int(p[r0]), int(p[r1])
            pieces.append(_csr(np.asarray(d[a:b]), np.asarray(i[a:b]),
                               np.asarray(p[r0:r1 + 1]) - a, v))
        block = _merge(pieces)
        data.append(block.data)
        indices.append(block.indices)
        row_nnz.append(np.diff(block.indptr))
    indptr = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(np.concatenate(row_nnz), out=indptr[1:])
    return _csr(np.concatenate(data), np.concatenate(indices), indptr, v)


def _nbytes_of(run) -> int:
    return sum(part.nbytes for part in run)


def _default_workers(path: str) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, os.path.getsize(path) // _SPLIT_BYTES + 1))


def count_corpus(path: str, *, window: int = 10, min_count: int = 1, memory: int = 256 << 20,
                 workers: int | None = None, documents=None) -> Cooccurrence:
    """Unigram and ±``window`` co-occurrence counts of a corpus file (or of ``documents``, lists of
    tokens, one per document). ``memory``: bytes of pair runs held in memory before they are
    spilled to sorted files in a temporary directory (the returned matrix comes on top: 24 bytes
    per distinct unordered pair). ``workers``: processes, each counting one part of the file
    (default: up to the CPUs, one per 16 MB)."""
    folder = tempfile.mkdtemp(prefix="geomkit-cooc-")
    try:
        if documents is not None:
            text = os.path.join(folder, "documents.txt")
            with open(text, "w", encoding="utf-8") as fh:
                for tokens in documents:
                    fh.write(" ".join(tokens) + "\n")
            return _count(text, path, window, min_count, memory, workers, folder)
        return _count(path, path, window, min_count, memory, workers, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _count(text: str, label: str, window: int, min_count: int, memory: int, workers, folder):
    if not os.path.exists(text):
        raise InputError(f"{label}: no such file.")
    workers = _default_workers(text) if workers is None else max(1, int(workers))
    ranges = _byte_ranges(text, workers) or [(0, 0)]
    id_paths = [os.path.join(folder, f"ids-{k}.i32") for k in range(len(ranges))]
    share = max(memory // len(ranges), 1)
    read_bytes = int(min(max(share // 64, 1 << 12), _READ_BYTES))  # a block takes ~40× its bytes
    pool = None
    if len(ranges) > 1:
        import multiprocessing
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(len(ranges))
    try:
        run_all = pool.map if pool is not None else (lambda f, jobs: [f(j) for j in jobs])
        try:
            parts = run_all(_count_worker, [("tokenise", text, a, b, p, read_bytes)
                                            for (a, b), p in zip(ranges, id_paths)])
        except InputError as exc:
            raise InputError(str(exc).replace(text, label, 1)) from None
        total: dict = {}
        for words, counts, _ in parts:
            for w, c in zip(words, counts.tolist()):
                total[w] = total.get(w, 0) + c
        n_tokens = sum(n for _, _, n in parts)
        kept = sorted(w for w, c in total.items() if c >= min_count)  # UTF-8 byte order = str order
        if not kept:
            raise InputError(f"{label}: no word occurs at least {min_count} times.")
        v = len(kept)
        final = {w: i for i, w in enumerate(kept)}
        vocab = np.array([w.decode("utf-8") for w in kept], dtype=object)
        counts = np.array([total[w] for w in kept], dtype=np.float64)
        del total
        # each process: pair runs held ≤ share/3 (merging two takes as much again), a block of
        # tokens ≈ share/4 (its codes and the temporaries of one offset)
        itemsize = np.dtype(_code_dtype(v)).itemsize
        block_tokens = int(min(max(share // (4 * (window * itemsize + 40)), 64), 1 << 21))
        jobs = []
        for k, (words, _, _) in enumerate(parts):
            remap = np.array([final.get(w, -2) for w in words], dtype=np.int64)
            jobs.append(("count", id_paths[k], remap, v, window, share // 3, folder, f"run{k}",
                         block_tokens, pool is not None))   # a process's runs come back as files
        del parts, final
        runs = [r for result in run_all(_count_worker, jobs) for r in result]
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    upper = _upper_csr(runs, v, block_bytes=memory // 2)
    del runs
    upper = upper.astype(np.float64)
    matrix = (upper + upper.T.tocsr()).tocsr()
    del upper
    matrix.sort_indices()
    return Cooccurrence(matrix, vocab, counts, window, n_tokens)


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
