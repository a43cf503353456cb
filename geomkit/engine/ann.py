"""Approximate k nearest neighbours within the memory budget (faiss IVF), streamed from the source.

The whole matrix is never in memory. One search runs:

1. **plan** (:func:`plan_index`): the index must fit the budget (``memory``, the same ``--memory``
   every pass uses): ``3/4`` of it for the index, the rest for one query block and its result
   buffers. The least compressed storage that fits is chosen: IVF-Flat (4·d bytes a row), IVF-SQ8
   (d bytes a row, 8-bit scalar quantiser) or IVF-PQ (m bytes a row); every kind also stores an
   8-byte id per row and nlist centroids. None fits: a usage error naming the ``--memory`` needed.
   The number of lists is ~2·√N (at most N/32, at most what the training sample can train).
2. **train** on a seeded sample of rows (at most ``memory / 2`` of vectors), read with
   ``read`` in sorted groups.
3. **add** the rows block by block from the source (one streaming pass); the same pass computes
   the exact neighbours of ``recall_sample`` seeded query rows (a running top-k against every
   block), the reference for the measured recall.
4. **search** the rows as queries, block by block (a second streaming pass): faiss returns k + 1
   candidates (self removed; for compressed storage ``refine``·k + 1 candidates, whose exact
   distances are computed from the vectors read back from the source in sorted groups, and the k
   nearest kept). Each query block's neighbours go to ``on_block(start, indices, distances)``
   (hubness folds them into k-occurrence counts); with ``keep=True`` they are also kept (N×k int32
   and float32: stated by the caller).

Distances are those of :mod:`geomkit.engine.knn`: ``cosine`` = 1 − cos (inner product of unit
rows), ``dot`` = −x·y, ``euclidean``, ``sqeuclidean``; computed in float32 (IVF-Flat: faiss' own
float32 products; compressed: exact float32 products of the re-ranked candidates).

``recall`` = mean over the sampled queries of |approximate ∩ exact| / k (self excluded in both).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from geomkit.engine.rows import unit_rows
from geomkit.errors import UsageError

INDEX_SHARE = 0.75  # of the budget: the index; the rest: one query block and its buffers
TRAIN_SHARE = 0.5   # of the budget: the training sample (before the index is filled)
REFINE = {"flat": 1, "sq8": 2, "pq": 4}  # candidates re-ranked exactly per neighbour kept
DEFAULT_NPROBE = 16  # the first tuning step's ceiling in the docs; an explicit --nprobe wins
APPROXIMATE_FROM = 1_000_000  # rows from which hubness and intdim search approximately by default
TARGET_RECALL = 0.95  # nprobe tuned (when not given) to this recall@k on the tuning sample
TUNE_SAMPLE = 500     # seeded tuning queries, disjoint from the recall sample
NLIST_PER_SQRT_N = 2  # lists: ~2·√N (the coarse search and the list scans then cost alike)
TRAIN_PER_LIST = 32   # training rows per list (k-means of the coarse quantizer, 10 iterations)
READ_GROUPS = 4       # rows read back (training sample, re-ranking) in groups of query_rows / 4


@dataclass(frozen=True)
class IndexPlan:
    kind: str          # "flat", "sq8" or "pq"
    nlist: int
    nprobe: int        # 0: tuned to a recall target after the add pass
    pq_m: int          # bytes per row of the PQ code (0 unless pq)
    index_bytes: int   # planned size of the filled index
    train_rows: int
    query_rows: int
    refine: int
    sq8_memory: int = 0  # pq only: the --memory at which IVF-SQ8 would fit

    def info(self) -> dict:
        return {"index": {"flat": "IVF-Flat", "sq8": "IVF-SQ8", "pq": f"IVF-PQ{self.pq_m}"}[self.kind],
                "nlist": self.nlist, "nprobe": self.nprobe, "index_bytes": int(self.index_bytes),
                "rerank": self.refine if self.kind != "flat" else 0,
                "train_rows": self.train_rows, "query_rows": self.query_rows,
                **({"sq8_memory": self.sq8_memory} if self.sq8_memory else {})}


def _index_bytes(kind: str, n: int, d: int, nlist: int, m: int = 0) -> int:
    code = {"flat": 4 * d, "sq8": d, "pq": m}[kind]
    extra = 2 * 4 * d if kind == "sq8" else (256 * d * 4 if kind == "pq" else 0)
    return n * (code + 8) + nlist * d * 4 + extra


def _pq_sizes(d: int) -> list[int]:
    """Candidate PQ code sizes (bytes a row), largest first: divisors m of d with at least 4
    dimensions per sub-quantizer (fewer, smaller k-means to train; re-ranking restores the
    order), at most four sizes; ``[1]`` when d < 4."""
    sizes = [m for m in range(d // 4, 0, -1) if d % m == 0 and m in
             (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96, 128, 192, 256, 384)][:4]
    return sizes or [1]


def plan_index(n: int, d: int, k: int, memory: int | None, *, nprobe: int | None = None,
               nlist: int | None = None, kind: str | None = None) -> IndexPlan:
    """The index that fits ``memory`` (None: IVF-Flat, no limit). Refuses, in one sentence naming
    the budget needed, when even the most compressed index does not fit."""
    itemsize = 4
    if memory is None:
        train = n
    else:
        train = max(1, int(memory * TRAIN_SHARE // (d * itemsize)))
    nlist = nlist or int(max(1, min(NLIST_PER_SQRT_N * np.sqrt(n), n // 32,
                                    max(1, min(n, train) // 32))))
    nlist = max(1, min(nlist, n))
    train = int(min(n, train, max(TRAIN_PER_LIST * nlist, 10_000)))
    if nprobe is not None and nprobe > nlist:
        raise UsageError(f"{{nprobe}} {nprobe} exceeds the {nlist} lists of the index of {n} "
                         f"rows; at most {nlist}.")
    nprobe = int(min(nprobe, nlist)) if nprobe else 0  # 0: tuned after the add pass
    kinds = [kind] if kind else ["flat", "sq8", "pq"]
    choice = None
    if memory is None:
        choice = (kinds[0], 0 if kinds[0] != "pq" else _pq_sizes(d)[0])
    else:
        for kd in kinds:
            for m in (_pq_sizes(d) if kd == "pq" else [0]):
                if _index_bytes(kd, n, d, nlist, m) <= memory * INDEX_SHARE:
                    choice = (kd, m)
                    break
            if choice:
                break
    if choice is None:
        smallest = min(_index_bytes(kd, n, d, nlist, m) for kd in kinds
                       for m in (_pq_sizes(d)[-1:] if kd == "pq" else [0]))
        need = int(np.ceil(smallest / INDEX_SHARE / 2**20))
        raise UsageError(f"the approximate kNN index of {n} x {d} rows needs at least "
                         f"{smallest / 2**20:.0f} MiB, more than the memory budget allows; pass "
                         f"{{memory}}{need}MB or more.")
    kd, m = choice
    refine = REFINE[kd]
    # a query: its row (float32, ~3 copies), candidates and scores; plus, with re-ranking, a
    # share of the candidate rows read back in groups of a quarter block (source dtype up to
    # 8 bytes, float32, prepared float32: ~16 bytes a value)
    per_query = (d * itemsize * 3 + (refine * k + 1) * (8 + 4 + 8) * 2
                 + (d * 16 // READ_GROUPS if kd != "flat" else 0))
    rest = (memory * (1 - INDEX_SHARE)) if memory is not None else 256 * 2**20
    query_rows = int(max(256, min(n, rest // per_query, 65536)))
    # PQ re-ranking reads each query block's candidates back from the source: about one read
    # of the dump per block. Say which budget holds the 8-bit codes instead (fewer, larger blocks).
    # (with the most lists any budget plans: a larger budget trains more of them)
    most = int(max(1, min(NLIST_PER_SQRT_N * np.sqrt(n), n // 32)))
    sq8 = (int(np.ceil(_index_bytes("sq8", n, d, max(nlist, most)) / INDEX_SHARE))
           if kd == "pq" and memory is not None else 0)
    return IndexPlan(kd, nlist, nprobe, m, _index_bytes(kd, n, d, nlist, m), train, query_rows,
                     refine, sq8)


# ----------------------------------------------------------------------------- feeds
class Feed:
    """The rows an approximate search runs over, as positions 0..n-1: ``blocks(progress)`` yields
    ``(start, x)`` for consecutive positions (float32, unit rows for cosine), ``read(pos)`` the
    vectors of sorted unique positions (the same preparation)."""

    n: int
    d: int
    metric: str

    def _prep(self, x):
        """Rows as the index takes them: float32, contiguous, unit rows for cosine."""
        x = np.asarray(x, dtype=np.float32)
        return np.ascontiguousarray(unit_rows(x) if self.metric == "cosine" else x, dtype=np.float32)

    def blocks(self, progress=None):
        raise NotImplementedError

    def read(self, pos: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ArrayFeed(Feed):
    def __init__(self, x: np.ndarray, metric: str, block_rows: int = 16384):
        self.x = x
        self.metric = metric
        self.n, self.d = x.shape
        self.block_rows = block_rows

    def blocks(self, progress=None):
        from geomkit.report.progress import progress_bar

        with progress_bar(self.n, progress) as bar:
            for a in range(0, self.n, self.block_rows):
                yield a, self._prep(self.x[a:a + self.block_rows])
                bar.update(min(self.block_rows, self.n - a))

    def read(self, pos):
        return self._prep(self.x[pos])


class SpaceFeed(Feed):
    """The analysed rows of a :class:`geomkit.Space` (after sampling and dropping), streamed;
    ``read`` goes back to the source (``space.read_rows``) for the original rows of positions."""

    def __init__(self, space, metric: str, block_rows: int | None = None, hashes: bool = False):
        self.space = space
        self.metric = metric
        self.nonzero = metric == "cosine"
        self.n, self.d = space.n, space.d
        self.block_rows = block_rows
        self._rows = None
        self.hashes = [] if hashes else None  # row hashes (duplicates) from the first pass

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = self.space.rows
        return self._rows

    def blocks(self, progress=None):
        from geomkit.engine.duplicates import row_hashes

        pos = 0
        collect = self.hashes is not None and not self.hashes
        for blk in self.space.blocks(nonzero=self.nonzero, progress=progress,
                                     block_rows=self.block_rows):
            if collect:  # in parts: row_hashes takes ~3 uint64 copies of its rows
                step = max(1, self.space.memory // (4 * 24 * self.d))
                self.hashes.extend(row_hashes(blk.x[a:a + step])
                                   for a in range(0, blk.x.shape[0], step))
            yield pos, self._prep(blk.x)
            pos += blk.rows.size

    def read(self, pos):
        return self._prep(self.space.read_rows(self.rows[pos]))


class PairFeed(Feed):
    """One side of paired items (compare): position i is the original row ``rows[i]`` of
    ``space`` (validated as :func:`geomkit.engine.pairs.read_paired`, zero rows refused)."""

    def __init__(self, space, rows: np.ndarray, metric: str = "cosine", block_rows: int = 8192):
        self.space, self.rows, self.metric = space, np.asarray(rows, dtype=np.int64), metric
        self.n, self.d = self.rows.size, space.d
        self.block_rows = block_rows

    def blocks(self, progress=None):
        from geomkit.engine.pairs import read_paired
        from geomkit.report.progress import progress_bar

        with progress_bar(self.n, progress) as bar:
            for a in range(0, self.n, self.block_rows):
                part = self.rows[a:a + self.block_rows]
                yield a, self._prep(read_paired(self.space, part, nonzero=True))
                bar.update(part.size)

    def read(self, pos):
        from geomkit.engine.pairs import read_paired

        return self._prep(read_paired(self.space, self.rows[pos], nonzero=True))


def read_groups(feed: Feed, pos: np.ndarray, group: int):
    """``(pos_part, x_part)`` for sorted unique positions, ``group`` positions at a time."""
    for s in range(0, pos.size, group):
        part = pos[s:s + group]
        yield part, feed.read(part)


# ----------------------------------------------------------------------------- search
@dataclass
class AnnResult:
    info: dict
    recall: float
    indices: np.ndarray | None = None    # (n, k) int32 positions, with keep=True
    distances: np.ndarray | None = None  # (n, k) float32


def _scores_to_distances(scores: np.ndarray, metric: str) -> np.ndarray:
    """faiss' scores (inner products, or squared L2) as geomkit distances (float32)."""
    if metric == "cosine":
        return np.maximum(1.0 - scores, 0.0)
    if metric == "dot":
        return -scores
    sq = np.maximum(scores, 0.0)
    return sq if metric == "sqeuclidean" else np.sqrt(sq)


def _pair_scores(xq, xc, metric):
    """Row-wise scores (inner product, or squared L2) of pairs of prepared rows (float32)."""
    if metric in ("cosine", "dot"):
        return np.einsum("ij,ij->i", xq, xc)
    diff = xq - xc
    return np.einsum("ij,ij->i", diff, diff)


def _drop_self(found: np.ndarray, pos: np.ndarray, scores: np.ndarray | None = None):
    """Each row's candidates without the query itself (at ``pos``; or without the last when
    absent), and the matching scores when given."""
    b, c = found.shape
    is_self = found == pos[:, None]
    mask = ~is_self
    mask[~is_self.any(axis=1), -1] = False
    kept = found[mask].reshape(b, c - 1)
    return kept, (None if scores is None else scores[mask].reshape(b, c - 1))


def _new_index(plan: IndexPlan, d: int, inner: bool):
    import faiss

    metric = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
    quantizer = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
    if plan.kind == "flat":
        index = faiss.IndexIVFFlat(quantizer, d, plan.nlist, metric)
    elif plan.kind == "sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, plan.nlist,
                                              faiss.ScalarQuantizer.QT_8bit, metric)
    else:
        index = faiss.IndexIVFPQ(quantizer, d, plan.nlist, plan.pq_m, 8, metric)
    index.own_fields = True
    quantizer.this.disown()
    # sample sizes are chosen from the budget: no faiss warning about them on stderr
    index.cp.min_points_per_centroid = 1
    if plan.kind == "pq":
        index.pq.cp.min_points_per_centroid = 1
        index.pq.cp.niter = 10
    return index


def approximate_search(feed: Feed, k: int, *, metric: str = "cosine", memory: int | None = None,
                       nprobe: int | None = None, nlist: int | None = None,
                       kind: str | None = None, recall_sample: int = 1000, seed: int = 0,
                       target_recall: float | None = None, tune_sample: int = TUNE_SAMPLE,
                       on_block=None, keep: bool = False, label: str = "") -> AnnResult:
    """k approximate nearest neighbours of every position of ``feed`` (self excluded) within
    ``memory`` (see the module docstring). ``on_block(start, indices, distances)`` receives each
    query block's neighbours (int64 positions, float32 distances). ``nprobe`` None: the smallest
    nprobe whose recall@k on ``tune_sample`` seeded queries reaches ``target_recall`` (default
    :data:`TARGET_RECALL`), see :func:`_tune_nprobe`."""
    n, d = feed.n, feed.d
    if not 1 <= k < n:
        raise UsageError(f"k = {k} must be between 1 and N - 1 = {n - 1}.")
    if nprobe is not None and target_recall is not None:
        raise UsageError("{nprobe} fixes the lists searched and {target_recall} tunes them: "
                         "give one of the two.")
    if target_recall is not None and not 0 < target_recall <= 1:
        raise UsageError(f"{{target_recall}} {target_recall} must be in (0, 1].")
    plan = plan_index(n, d, k, memory, nprobe=nprobe, nlist=nlist, kind=kind)
    inner = metric in ("cosine", "dot")
    rng = np.random.default_rng(seed)
    group = max(1024, plan.query_rows // READ_GROUPS)
    timings = {}

    # 1. train on a seeded sample; the recall queries are read with it
    t0 = time.perf_counter()
    train_pos = np.sort(rng.choice(n, size=plan.train_rows, replace=False))
    index = _new_index(plan, d, inner)
    xt = np.empty((train_pos.size, d), dtype=np.float32)
    for i, (part, x) in enumerate(read_groups(feed, train_pos, group)):
        xt[i * group:i * group + part.size] = x
    index.cp.seed = seed
    index.train(xt)
    del xt
    sample = np.sort(rng.choice(n, size=min(recall_sample, n), replace=False))
    tune = _tune_positions(n, sample, tune_sample if not plan.nprobe else 0, seed)
    if target_recall is not None and (not tune.size or plan.nlist == 1):
        raise UsageError(f"{{target_recall}} cannot act on {n} rows: "
                         + ("the index has one list" if plan.nlist == 1 else
                            f"no rows are left for tuning beyond the {sample.size} recall "
                            f"queries") + ", so every list is searched.")
    both = np.concatenate([sample, tune])  # exact neighbours of both in the add pass
    xs = np.concatenate([x for _, x in read_groups(feed, sample, group)] +
                        [x for _, x in read_groups(feed, tune, group)] +
                        [np.zeros((0, d), np.float32)])
    timings["train_s"] = time.perf_counter() - t0

    # 2. add every row, block by block; the exact neighbours of the samples in the same pass
    t0 = time.perf_counter()
    s_best_d = np.full((both.size, k), np.inf, dtype=np.float32)
    s_best_i = np.full((both.size, k), -1, dtype=np.int64)
    work = (memory * (1 - INDEX_SHARE)) if memory is not None else 256 * 2**20
    cols = int(max(64, work // (32 * max(1, both.size))))  # ~32 bytes per product entry
    for start, x in feed.blocks(progress=f"approximate kNN: indexing {label}".strip()):
        b = x.shape[0]
        ids = np.arange(start, start + b, dtype=np.int64)
        index.add_with_ids(x, ids)
        for c in range(0, b, cols):  # columns in chunks: samples × cols products in budget
            s_best_d, s_best_i = _exact_update(xs, both, x[c:c + cols], start + c, metric,
                                               inner, k, s_best_d, s_best_i)
    timings["add_s"] = time.perf_counter() - t0
    cand = plan.refine * k + 1 if plan.kind != "flat" else k + 1
    cand = min(cand, n)
    tuning = None
    if plan.nprobe:
        index.nprobe = plan.nprobe
    else:  # 3a. the smallest nprobe reaching the target on the tuning queries
        t0 = time.perf_counter()
        target = TARGET_RECALL if target_recall is None else float(target_recall)
        index.nprobe, tuning = _tune_nprobe(index, feed, xs[sample.size:], tune,
                                            s_best_i[sample.size:], k, cand, plan, metric,
                                            group, target)
        timings["tune_s"] = time.perf_counter() - t0
        plan = replace(plan, nprobe=int(index.nprobe))
    s_best_i = s_best_i[:sample.size]

    # 3. search every row as a query, block by block
    t0 = time.perf_counter()
    out_i = np.empty((n, k), dtype=np.int32) if keep else None
    out_d = np.empty((n, k), dtype=np.float32) if keep else None
    s_found = np.full((sample.size, k), -1, dtype=np.int64)
    search_s = 0.0
    qblocks = _requeue(feed.blocks(progress=f"approximate kNN: searching {label}".strip()),
                       plan.query_rows)
    for start, xq in qblocks:
        b = xq.shape[0]
        ts = time.perf_counter()
        pos = np.arange(start, start + b)
        scores, found = _search(index, xq, cand, pos, k)
        search_s += time.perf_counter() - ts
        idx, dist = _finish(feed, xq, found, scores, pos, k, metric, plan, group)
        if on_block is not None:
            on_block(start, idx, dist)
        if keep:
            out_i[start:start + b], out_d[start:start + b] = idx, dist
        own = (sample >= start) & (sample < start + b)
        s_found[own] = idx[sample[own] - start]
    timings["search_s"] = time.perf_counter() - t0
    timings["faiss_search_s"] = search_s
    recall = _recall(s_found, s_best_i)
    info = {"exact": False, "recall": recall, "recall_sample": int(sample.size),
            **plan.info(), **({"nprobe_tuning": tuning} if tuning else {}), "index_bytes_measured": _measured_bytes(index, plan), **{
                key: round(v, 3) for key, v in timings.items()}}
    del index
    return AnnResult(info, recall, out_i, out_d)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of |found ∩ exact| / k (-1 entries ignored); NaN without rows."""
    if not found.shape[0]:
        return float("nan")
    hits = sum(len(set(a[a >= 0]) & set(e[e >= 0])) for a, e in zip(found, exact))
    return hits / found.size


def _tune_positions(n: int, sample: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` seeded positions not in the recall ``sample`` (sorted; fewer when N is small)."""
    size = int(min(size, n - sample.size))
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    draw = rng.choice(n, size=min(n, size + sample.size), replace=False)
    return np.sort(draw[~np.isin(draw, sample)][:size]).astype(np.int64)


def _nprobe_steps(nlist: int):
    """1, 2, 3, 4, 6, 8, 12, 16, … (×√2 roughly), then nlist."""
    p = 1
    while p < nlist:
        yield p
        p = p + 1 if p < 4 else (p * 3 // 2 if (p & (p - 1)) == 0 else p * 4 // 3)
    yield nlist


def _tune_nprobe(index, feed, xq, pos, exact, k, cand, plan, metric, group, target):
    """The smallest nprobe whose recall@k on the tuning queries (``xq`` at positions ``pos``,
    exact neighbours ``exact``) reaches ``target``; when none does (compressed codes, few rows),
    the smallest with the best recall found. No tuning queries (N too small): all lists (an
    exhaustive search through the index)."""
    if not pos.size:
        return plan.nlist, {"target": target, "sample": 0, "recall": {}}
    tried = {}
    for p in _nprobe_steps(plan.nlist):
        index.nprobe = p
        scores, found = _search(index, xq, cand, pos, k)
        idx, _ = _finish(feed, xq, found, scores, pos, k, metric, plan, group)
        tried[p] = _recall(idx, exact)
        if tried[p] >= target:
            break
    best = max(tried.values())
    chosen = min(p for p, r in tried.items() if r == best) if best < target else p
    return chosen, {"target": target, "sample": int(pos.size),
                    "recall": {str(p): round(r, 4) for p, r in tried.items()}}


def _finish(feed, xq, found, scores, pos, k, metric, plan, group):
    """A query block's k neighbours and distances from faiss' candidates: self dropped, then the
    first k (IVF-Flat) or the k nearest by exact re-ranking (compressed codes)."""
    found, scores = _drop_self(found, pos, scores)
    if plan.kind == "flat":
        return found[:, :k], _scores_to_distances(scores[:, :k], metric)
    return _rerank(feed, xq, found, k, metric, group)


def _search(index, xq: np.ndarray, cand: int, pos: np.ndarray, k: int):
    """faiss' search; a query whose probed lists hold fewer than k other rows is searched again
    with twice the lists (up to all of them), so that every query gets k neighbours."""
    scores, found = index.search(xq, cand)
    planned = nprobe = index.nprobe
    while nprobe < index.nlist:
        own = found == pos[:, None]
        short = np.flatnonzero(((found >= 0) & ~own).sum(1) < k)
        if not short.size:
            break
        nprobe = min(index.nlist, 2 * nprobe)
        index.nprobe = nprobe
        scores[short], found[short] = index.search(np.ascontiguousarray(xq[short]), cand)
    index.nprobe = planned
    return scores, found


def _exact_update(xs, sample, x, start, metric, inner, k, best_d, best_i):
    """The running exact top-k of the sample queries ``xs`` updated with rows start.. (``x``)."""
    if not sample.size:
        return best_d, best_i
    b = x.shape[0]
    if inner:
        sc = xs @ x.T
    else:
        sc = (xs * xs).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * (xs @ x.T)
    dist = _scores_to_distances(sc, metric)
    own = (sample >= start) & (sample < start + b)
    dist[np.flatnonzero(own), sample[own] - start] = np.inf
    if b > k:  # the block's own k nearest first: the merge then handles 2k columns
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        dist, cols = np.take_along_axis(dist, part, axis=1), part + start
    else:
        cols = np.broadcast_to(np.arange(start, start + b), dist.shape)
    cand_d = np.concatenate([best_d, dist], axis=1)
    cand_i = np.concatenate([best_i, cols], axis=1)
    top = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
    return np.take_along_axis(cand_d, top, axis=1), np.take_along_axis(cand_i, top, axis=1)


def _measured_bytes(index, plan: IndexPlan) -> int:
    """The filled index's inverted lists (codes + ids) and centroids, as faiss holds them."""
    import faiss

    invlists = faiss.extract_index_ivf(index).invlists
    total = 0
    for i in range(index.nlist):
        total += invlists.list_size(i) * (invlists.code_size + 8)
    return int(total + index.nlist * index.d * 4)


def _requeue(blocks, rows: int):
    """Source blocks regrouped into query blocks of ``rows`` rows (consecutive positions)."""
    buf, buf_start, have = [], None, 0
    for start, x in blocks:
        if buf_start is None:
            buf_start = start
        buf.append(x)
        have += x.shape[0]
        while have >= rows:
            allx = np.concatenate(buf) if len(buf) > 1 else buf[0]
            yield buf_start, allx[:rows]
            rest = allx[rows:]
            buf, buf_start, have = ([rest] if rest.shape[0] else []), buf_start + rows, rest.shape[0]
    if have:
        yield buf_start, np.concatenate(buf) if len(buf) > 1 else buf[0]


def _rerank(feed: Feed, xq: np.ndarray, found: np.ndarray, k: int, metric: str, group: int):
    """Exact distances of each query's candidates (vectors read back in sorted groups), the k
    nearest kept (ties: the lower position)."""
    b, c = found.shape
    flat = found.ravel()
    valid = flat >= 0
    order = np.argsort(flat, kind="stable")
    order = order[valid[order]]
    sorted_c = flat[order]
    scores = np.full(b * c, np.nan, dtype=np.float32)
    uniq = np.unique(sorted_c)
    for part, xc in read_groups(feed, uniq, group):
        lo, hi = np.searchsorted(sorted_c, [part[0], part[-1] + 1])
        sel = order[lo:hi]
        local = np.searchsorted(part, flat[sel])
        step = max(256, (1 << 23) // (8 * xq.shape[1]))  # two gathered row sets of ~4 MiB
        for s in range(0, sel.size, step):
            ss = sel[s:s + step]
            scores[ss] = _pair_scores(xq[ss // c], xc[local[s:s + step]], metric)
    dist = _scores_to_distances(scores, metric).reshape(b, c).astype(np.float32)
    dist[~valid.reshape(b, c)] = np.inf
    order = np.lexsort((found, dist), axis=1)[:, :k]
    return np.take_along_axis(found, order, axis=1), np.take_along_axis(dist, order, axis=1)
