"""Exact k nearest neighbours streamed from the source: dumps larger than memory, and Dask.

:func:`geomkit.engine.knn.exact_knn` holds the N×d matrix in memory. :class:`StreamKnnAccumulator`
is a pass accumulator (``consume`` / ``fresh`` / ``merge`` / ``result``, so the
:class:`~geomkit.engine.executor.DaskExecutor` runs it as one task per contiguous part of the query
rows): it gathers the query rows of a pass into batches within the memory budget and compares each
batch with every row of the source, read again block by block (like
:class:`geomkit.analysis.depth.PairwiseDepthAccumulator`), keeping a running top-(k+1) per query
row. Memory: one query batch, one reference block and their score block (``space.memory``), plus
what the neighbours are folded into.

The lists are those of :func:`~geomkit.engine.knn.exact_knn`, rule for rule:

- scores in the data's dtype (float32 for float16/32 dumps: one BLAS product per query batch ×
  reference block): cosine x̂·ŷ, dot x·y, euclidean 2x·y − ‖y‖² (‖y‖² in float32, as there);
- exact copies (:func:`geomkit.engine.duplicates.stream_duplicates`: a streaming pass of row
  hashes, repeated hashes verified by reading those rows; no per-row array) are capped at the
  score of distance 0, and every score is capped there, so nothing ranks before a copy; ``dot``
  is left as computed;
- self is excluded by position; equal scores go to the lower row (the running list is kept in
  (score, row) order, and reference blocks arrive in row order);
- where the (k+1)-th score ties the k-th, the row is selected again over all rows with float64
  scores (2x·y − ‖y‖² in float64 under euclidean), as exact_knn does: one more read of the
  reference for the batch's tied rows, only when there are some. Its products come from torch,
  as the first selection's: exact_knn takes them from numpy, whose BLAS rounds a column's last
  bit by its place in the matrix, so that identical rows need not tie there.

Products are torch's float32 BLAS, as exact_knn's (numpy's rounds differently, which reorders
near-ties). A product's last bit can still depend on the block shape: lists are identical
wherever scores are exact or ties are structural (copies, scaled rows), and elsewhere can differ
only between candidates whose scores are within float32 rounding of each other (measured: no
row of 20 000 × 768, benchmarks/out_of_core.py).

The symmetric trick of exact_knn (XXᵀ: half the products) is not available when the query rows
stream past the reference: twice its flops.

What the neighbours are needed for is folded per batch: k-occurrence counts (N integers), k-NN
errors against label codes, or (``keep=True``, tests and small dumps) the lists themselves.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import numpy as np

from geomkit.engine.knn import KnnResult, prepare

_NONE = np.iinfo(np.int64).max  # index of an empty slot of a running list


def in_memory_limit(cap: int = 8 * 2**30) -> int:
    """Bytes an N×d matrix may take for the in-memory kNN path: ``cap``, at most a quarter of the
    memory available (MemAvailable) and a quarter of the address space this process may still
    map (RLIMIT_AS): exact_knn holds the matrix, its prepared copy and working blocks."""
    limit = cap
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limit = min(limit, int(line.split()[1]) * 1024 // 4)
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = 0
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
        except OSError:
            pass
        limit = min(limit, max(0, soft - used) // 4)
    return int(limit)


def matrix_bytes(space) -> int:
    """Bytes of the space's N×d matrix in the compute dtype."""
    return int(space.n_selected) * int(space.d) * np.dtype(space.compute_dtype).itemsize


@dataclass
class StreamKnn:
    """What a streamed kNN pass folded: ``kocc`` (k-occurrence of every position), ``errors``
    (leave-one-out k-NN errors, with label codes), ``n`` query rows; ``knn`` the lists
    (``keep=True`` only)."""

    kocc: np.ndarray
    errors: int
    n: int
    knn: KnnResult | None = None


def _batch_rows(memory: int, d: int, itemsize: int) -> int:
    """Query rows per batch: the batch and its prepared (unit) copy within 2/3 of the budget:
    the reference is read once per batch, so the batch is as large as the budget allows."""
    return int(max(1, memory // (3 * d * itemsize)))


def _ref_rows(memory: int, d: int, itemsize: int, batch: int) -> int:
    """Reference rows per block: the block (read, transformed, prepared) and the batch × block
    scores (float32 and float64 copies, a mask) within the last third."""
    return int(max(1, (memory // 3) // (3 * d * itemsize + 24 * batch)))


def _update(top_v: np.ndarray, top_i: np.ndarray, s: np.ndarray, col0: int) -> None:
    """Merge the scores ``s`` (b × m, columns col0.. — all after every column already listed)
    into the running lists (b × kk, in place), kept in (score desc, column asc) order."""
    b, m = s.shape
    kk = top_v.shape[1]
    thr = top_v[:, -1]
    # a candidate must beat the kk-th strictly: an equal score has a higher column
    active = np.flatnonzero((s > thr[:, None]).any(axis=1))
    if not active.size:
        return
    sub = s[active]
    if m > kk:
        part = np.argpartition(sub, m - kk, axis=1)[:, m - kk:]
        part_v = np.take_along_axis(sub, part, axis=1)
        kth = part_v.min(axis=1)
        tied = np.flatnonzero((sub >= kth[:, None]).sum(axis=1) > kk)
        if tied.size:  # more than kk at or above the kk-th value: the lowest columns of the tie
            cols = np.broadcast_to(np.arange(m), (tied.size, m))
            part[tied] = np.lexsort((cols, -sub[tied]), axis=1)[:, :kk]
            part_v[tied] = np.take_along_axis(sub[tied], part[tied], axis=1)
    else:
        part = np.broadcast_to(np.arange(m), sub.shape)
        part_v = sub
    cat_v = np.concatenate([top_v[active], part_v], axis=1)
    cat_i = np.concatenate([top_i[active], part + col0], axis=1)
    order = np.lexsort((cat_i, -cat_v), axis=1)[:, :kk]
    top_v[active] = np.take_along_axis(cat_v, order, axis=1)
    top_i[active] = np.take_along_axis(cat_i, order, axis=1)


class StreamKnnAccumulator:
    """Exact k-NN of the rows of a pass among all rows of ``ref`` (a source), folded per query
    batch (module docstring).

    ``n``: the analysed rows; ``positions``: their original rows, sorted (None: row = position);
    ``duplicates``: :class:`~geomkit.engine.duplicates.SparseDuplicates` (None: no copies);
    ``codes``: label code per position (k-NN errors); ``keep``: keep the lists;
    ``batch_rows`` / ``ref_rows``: block sizes (default: from ``memory``)."""

    def __init__(self, ref, n: int, k: int, metric: str, *, transform=None, nonzero: bool = False,
                 memory: int = 256 * 2**20, positions: np.ndarray | None = None, duplicates=None,
                 codes: np.ndarray | None = None, keep: bool = False, device: str | None = None,
                 batch_rows: int | None = None, ref_rows: int | None = None):
        if not 1 <= k < n:
            raise ValueError(f"k must be between 1 and N - 1 = {n - 1}")
        self.ref, self.n, self.k, self.metric = ref, int(n), int(k), metric
        self.transform, self.nonzero, self.memory = transform, nonzero, int(memory)
        self.positions, self.duplicates, self.codes = positions, duplicates, codes
        self.keep, self.device = keep, device
        self.batch_rows, self.ref_rows = batch_rows, ref_rows
        self.kocc = np.zeros(self.n, dtype=np.int64)
        self.errors = 0
        self.done = 0
        self.kept: list = []
        self._buf = self._buf_rows = None  # the query batch being gathered
        self._count = 0

    def fresh(self) -> "StreamKnnAccumulator":
        return StreamKnnAccumulator(
            self.ref, self.n, self.k, self.metric, transform=self.transform,
            nonzero=self.nonzero, memory=self.memory, positions=self.positions,
            duplicates=self.duplicates, codes=self.codes, keep=self.keep, device=self.device,
            batch_rows=self.batch_rows, ref_rows=self.ref_rows)

    # ------------------------------------------------------------------ the pass
    def _batch(self, d: int, itemsize: int) -> int:
        return self.batch_rows or _batch_rows(self.memory, d, itemsize)

    def consume(self, rows, x):
        size = self._batch(x.shape[1], x.dtype.itemsize)
        if self._buf is not None and (self._buf.dtype != x.dtype or self._buf.shape[0] != size):
            self._flush()
            self._buf = None
        if self._buf is None:  # one batch buffer, reused (x itself is the executor's buffer)
            self._buf = np.empty((size, x.shape[1]), dtype=x.dtype)
            self._buf_rows = np.empty(size, dtype=np.int64)
        a = 0
        while a < rows.size:
            take = min(size - self._count, rows.size - a)
            self._buf[self._count:self._count + take] = x[a:a + take]
            self._buf_rows[self._count:self._count + take] = rows[a:a + take]
            self._count += take
            a += take
            if self._count == size:
                self._flush()

    def _flush(self) -> None:
        """Search the buffered query rows (called when the batch is full, and before the state
        is merged, read or shipped: :meth:`merge`, :meth:`result`, pickling)."""
        if self._count:
            count, self._count = self._count, 0
            self._search(self._buf_rows[:count], self._buf[:count])

    def _positions(self, rows: np.ndarray) -> np.ndarray:
        if self.positions is None:
            return rows
        return np.searchsorted(self.positions, rows)

    def _gram(self, q, r):
        """q·rᵀ in the data's dtype with torch's BLAS, as exact_knn (numpy's BLAS rounds the
        last bit differently, which reorders near-ties); ``q`` is already a tensor."""
        import torch

        rt = torch.from_numpy(np.ascontiguousarray(r))
        if self.device:
            rt = rt.to(self.device)
        with torch.inference_mode():
            return (q @ rt.T).cpu().numpy()

    def _search(self, rows: np.ndarray, x: np.ndarray) -> None:
        k, metric, n = self.k, self.metric, self.n
        euclid = metric in ("euclidean", "sqeuclidean")
        qpos = np.array(self._positions(rows))  # rows is the reused batch buffer
        qp, q_sq = prepare(x, metric)
        b = qpos.size
        kk = min(k + 1, n - 1)
        dups = self.duplicates if self.duplicates else None
        force = dups is not None and metric != "dot"
        q_rep = dups.representatives(qpos) if force else None
        top_v = np.full((b, kk), -np.inf, dtype=qp.dtype)
        top_i = np.full((b, kk), _NONE, dtype=np.int64)
        import torch

        q_dev = torch.from_numpy(np.ascontiguousarray(qp))
        if self.device:
            q_dev = q_dev.to(self.device)
        for col0, rp, r_sq in self._reference(x.shape[1], x.dtype.itemsize, b):
            gram = self._gram(q_dev, rp)
            s = 2.0 * gram - r_sq.astype(gram.dtype)[None, :] if euclid else gram
            self._force_and_exclude(s, qpos, q_sq, q_rep, col0, force)
            _update(top_v, top_i, s, col0)
        indices = top_i[:, :k].copy()
        scores = top_v[:, :k].astype(np.float64)
        if kk > k:  # the (k+1)-th ties the k-th: those rows again, as exact_knn selects them
            tie = np.flatnonzero(top_v[:, k] == top_v[:, k - 1])
            if tie.size:
                indices[tie], scores[tie] = self._again(
                    qp[tie], qpos[tie], None if q_sq is None else q_sq[tie],
                    None if q_rep is None else q_rep[tie], force, x.shape[1], x.dtype.itemsize)
        self._fold(qpos, indices, scores, q_sq, q_rep if force else None)

    def _reference(self, d: int, itemsize: int, b: int):
        """``(first position, prepared rows, squared norms)`` of the reference, block by block."""
        ref_rows = self.ref_rows or _ref_rows(self.memory, d, itemsize, b)
        col0 = 0
        for blk in self.ref.blocks(nonzero=self.nonzero, block_rows=ref_rows, reuse=True):
            r = self.transform(blk.x) if self.transform is not None else blk.x
            rp, r_sq = prepare(r, self.metric)
            yield col0, rp, r_sq
            col0 += rp.shape[0]

    def _force_and_exclude(self, s, qpos, cap, q_rep, col0: int, force: bool) -> None:
        """Copies at the score of distance 0 and nothing above it (``cap``: the rows' squared
        norms under euclidean, else 1); self at −∞. In place."""
        m = s.shape[1]
        if force:
            cap = (np.ones(s.shape[0], dtype=s.dtype) if cap is None
                   else cap.astype(s.dtype))
            np.minimum(s, cap[:, None], out=s)
            qi, ci = self._copy_pairs(q_rep, self.duplicates, np.arange(col0, col0 + m))
            s[qi, ci] = cap[qi]
        mine = np.flatnonzero((qpos >= col0) & (qpos < col0 + m))
        s[mine, qpos[mine] - col0] = -np.inf

    def _again(self, qp, qpos, q_sq, q_rep, force, d, itemsize):
        """Top k of some rows over all rows with exact_knn's second selection: the float32
        product in float64, 2x·y − ‖y‖² in float64 under euclidean, lowest row among ties.
        (exact_knn takes that product from numpy, whose BLAS rounds a column's last bit by its
        place in the matrix, so identical rows need not tie there; torch's product, as in the
        first selection, gives identical rows identical scores, and the lower row wins.)"""
        import torch

        k = self.k
        q_dev = torch.from_numpy(np.ascontiguousarray(qp))
        if self.device:
            q_dev = q_dev.to(self.device)
        euclid = self.metric in ("euclidean", "sqeuclidean")
        top_v = np.full((qpos.size, k), -np.inf)
        top_i = np.full((qpos.size, k), _NONE, dtype=np.int64)
        for col0, rp, r_sq in self._reference(d, itemsize, qpos.size):
            row = self._gram(q_dev, rp).astype(np.float64)
            if euclid:
                row = 2.0 * row - r_sq[None, :]
            self._force_and_exclude(row, qpos, q_sq, q_rep, col0, force)
            _update(top_v, top_i, row, col0)
        return top_i, top_v

    @staticmethod
    def _copy_pairs(q_rep, dups, cols):
        """(query, column) pairs of the block that are exact copies of each other."""
        qs = np.flatnonzero(q_rep >= 0)
        if not qs.size:
            return qs, qs
        c_rep = dups.representatives(cols)
        cs = np.flatnonzero(c_rep >= 0)
        if not cs.size:
            return cs, cs
        qi, ci = np.nonzero(q_rep[qs][:, None] == c_rep[cs][None, :])
        return qs[qi], cs[ci]

    def _fold(self, qpos, indices, scores, q_sq, q_rep) -> None:
        self.kocc += np.bincount(indices.ravel(), minlength=self.n)
        self.done += qpos.size
        if self.codes is not None:
            from geomkit.analysis.hubness import knn_error_count

            self.errors += knn_error_count(self.codes[indices], self.codes[qpos])
        if self.keep:
            if self.metric == "cosine":
                dist = np.maximum(1.0 - scores, 0.0)
            elif self.metric == "dot":
                dist = -scores
            else:
                dist = np.clip(q_sq[:, None] - scores, 0.0, None)
                if self.metric == "euclidean":
                    dist = np.sqrt(dist)
            if q_rep is not None:
                same = (q_rep[:, None] >= 0) & (
                    self.duplicates.representatives(indices) == q_rep[:, None])
                dist[same] = 0.0
            self.kept.append((qpos, indices, dist))

    # ------------------------------------------------------------------ merging, results
    def merge(self, other: "StreamKnnAccumulator") -> "StreamKnnAccumulator":
        self._flush()
        other._flush()
        self.kocc += other.kocc
        self.errors += other.errors
        self.done += other.done
        self.kept += other.kept
        return self

    def __getstate__(self):
        self._flush()  # a Dask part ships its folded state, not its pending rows
        state = dict(self.__dict__)
        state["_buf"] = state["_buf_rows"] = None
        return state

    def result(self) -> StreamKnn:
        self._flush()
        knn = None
        if self.keep:
            pos = np.concatenate([p for p, _, _ in self.kept])
            order = np.argsort(pos, kind="stable")
            idx = np.concatenate([i for _, i, _ in self.kept])[order]
            dist = np.concatenate([d for _, _, d in self.kept])[order]
            knn = KnnResult(idx, dist, self.metric)
        return StreamKnn(self.kocc, self.errors, self.done, knn)


def stream_knn(space, k: int, metric: str = "cosine", *, duplicates=None,
               codes: np.ndarray | None = None, keep: bool = False, device: str | None = None,
               batch_rows: int | None = None, ref_rows: int | None = None,
               progress: str | None = None) -> StreamKnn:
    """Exact k-NN of every row of ``space`` (a :class:`geomkit.Space`), streamed: one pass of the
    space's executor over the query rows, each batch against the rows read again from the source.
    ``duplicates``: from :func:`~geomkit.engine.duplicates.stream_duplicates` (found here when
    None). Cosine refuses (or, with drop_zero, drops) zero rows, as the in-memory path."""
    from geomkit.engine.duplicates import _original_rows, stream_duplicates

    nonzero = metric == "cosine"
    if duplicates is None:
        duplicates = stream_duplicates(space, nonzero=nonzero)
    n = space.n
    positions = None
    if space.source._rows is not None or space.n_dropped:
        positions = _original_rows(space)(np.arange(n))
    acc = StreamKnnAccumulator(space.source, n, k, metric, transform=space.transform,
                               nonzero=nonzero or space.nonzero, memory=space.memory,
                               positions=positions, duplicates=duplicates, codes=codes, keep=keep,
                               device=device, batch_rows=batch_rows, ref_rows=ref_rows)
    space.run(acc, nonzero=nonzero, progress=progress)
    return acc.result()
