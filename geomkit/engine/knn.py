"""Exact and approximate k nearest neighbours, blockwise (shared by hubness, depth, axes, compare).

Exact search: the N×d matrix is held once in memory; queries are processed in row blocks, each block
against all rows with one BLAS product (float32 for float16/32 dumps, float64 for float64 dumps), so
memory is O(block·N + N·d). Metrics: ``cosine`` (distance 1 − cos), ``euclidean``, ``sqeuclidean``
and ``dot`` (distance −x·y, larger dot product = nearer). Self is excluded by index, not by distance.

Ties are exact and deterministic: all candidates whose distance equals the k-th smallest are
gathered and ordered by (distance, row index), so among equal distances the lower row index wins.
:func:`topk_rows` takes a second key for ties (hubness reductions: the raw distance) and a column
per row to exclude (self), which stays out even when +∞ values tie at rank k; NaN is refused.

Exact duplicate rows: given ``duplicates`` (the lowest equal row of each row,
:mod:`geomkit.engine.duplicates`), :func:`exact_knn` and :func:`iter_distance_blocks` put exact
copies at distance exactly 0 (float Gram products do not), and nothing ranks before them.

Approximate search (:func:`approximate_knn` for an array; :mod:`geomkit.engine.ann` streams a
Space within its memory budget, for N in the millions) uses faiss' inverted-file index (IVF-Flat,
or IVF-SQ8 / IVF-PQ with exact re-ranking when the flat index does not fit; inner product on unit
vectors for cosine). Its recall@k is measured against exact search on a seeded sample of queries
and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geomkit.engine.rows import unit_rows

METRICS = ("cosine", "euclidean", "sqeuclidean", "dot")


@dataclass
class KnnResult:
    """``indices[i]`` = positions (0..N-1, in the analysed row order) of row i's k nearest
    neighbours, nearest first; ``distances[i]`` their distances. ``recall`` is None for exact search."""

    indices: np.ndarray
    distances: np.ndarray
    metric: str
    exact: bool = True
    recall: float | None = None
    search: dict | None = None  # how the lists were searched (engine/knn_certified.py)

    @property
    def k(self) -> int:
        return self.indices.shape[1]


def available_devices() -> list[str]:
    """Torch devices that can run the kNN products here: cpu, plus cuda / mps when present."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device(device: str) -> None:
    """Refuse a torch device this machine does not have, in one sentence (a usage error): only
    cpu, cuda[:i] and mps compute here (meta, xpu, ... hold no data or are not built in)."""
    from geomkit.errors import UsageError

    have = available_devices()
    if device not in have:
        raise UsageError(f"device '{device}' is not available here; available: "
                         f"{', '.join(have)}.")


def prepare(x: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows ready for products (unit rows for cosine) and squared norms (euclidean)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if metric == "cosine":
        return unit_rows(x), None
    if metric in ("euclidean", "sqeuclidean"):
        return x, np.einsum("ij,ij->i", x, x, dtype=np.float64)
    return x, None


def distance_block(q: np.ndarray, x: np.ndarray, metric: str, q_sq=None, x_sq=None) -> np.ndarray:
    """Distances (float64) from the rows of ``q`` to all rows of ``x`` (both already prepared)."""
    gram = (q @ x.T).astype(np.float64)
    if metric == "cosine":  # ≥ 0: identical unit vectors may round to a cosine above 1
        return np.maximum(1.0 - gram, 0.0)
    if metric == "dot":
        return -gram
    sq = np.clip(q_sq[:, None] + x_sq[None, :] - 2.0 * gram, 0.0, None)
    return sq if metric == "sqeuclidean" else np.sqrt(sq)


def iter_distance_blocks(x: np.ndarray, metric: str, *, block_rows: int | None = None,
                         memory: int = 256 * 2**20, duplicates: np.ndarray | None = None):
    """Yield ``(start, D)`` with D = distances of rows start..start+b to all N rows (self included).

    ``duplicates``: the lowest equal row of every row (:func:`geomkit.engine.duplicates.
    duplicate_representatives`); exact copies then get distance exactly 0 (not the rounding of a
    Gram product), except under ``dot``, which is no distance."""
    xp, x_sq = prepare(x, metric)
    n = x.shape[0]
    block_rows = block_rows or max(1, min(n, memory // (8 * 3 * max(n, 1))))
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        q_sq = None if x_sq is None else x_sq[start:stop]
        dist = distance_block(xp[start:stop], xp, metric, q_sq, x_sq)
        if duplicates is not None:
            same_columns_for_copies(dist, duplicates)
        if duplicates is not None and metric != "dot":
            zero_duplicate_pairs(dist, np.arange(start, stop), duplicates)
        yield start, dist


def same_columns_for_copies(dist: np.ndarray, duplicates: np.ndarray) -> np.ndarray:
    """Every column that copies an earlier row takes that row's column (in place): a BLAS
    product may round the same value differently by the column's place in its kernel, and exact
    copies must tie (then the lower index wins), whatever the BLAS and the CPU."""
    cols = np.flatnonzero(duplicates != np.arange(duplicates.size))
    if cols.size:
        dist[:, cols] = dist[:, duplicates[cols]]
    return dist


def zero_duplicate_pairs(dist: np.ndarray, rows: np.ndarray, duplicates: np.ndarray,
                         value: float = 0.0) -> np.ndarray:
    """Set ``dist[i, j] = value`` (in place) where row ``rows[i]`` and column j are exact copies
    of each other (same representative in ``duplicates``; the self pair included)."""
    copied = np.bincount(duplicates, minlength=duplicates.size)[duplicates] > 1
    sel = np.flatnonzero(copied[rows])
    if sel.size:
        same = duplicates[rows[sel]][:, None] == duplicates[None, :]
        dist[sel] = np.where(same, value, dist[sel])
    return dist


def topk_rows(dist: np.ndarray, k: int, *, tiebreak: np.ndarray | None = None,
              exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k smallest of every row, nearest first; equal values ordered by ``tiebreak`` (e.g. the
    raw distance under a reduction) and then by column index.

    ``exclude``: one column per row that is never chosen (self); it is set to +inf in ``dist``
    (in place) and stays out even when +inf values tie at rank k. Without it, self must
    already be +inf and no other value may be +inf. NaN has no order and is refused."""
    b, n = dist.shape
    if k >= n:
        raise ValueError(f"k = {k} needs more than {n} candidates")
    if np.isnan(dist).any():
        raise ValueError("NaN distances cannot be ranked")
    if exclude is not None:
        dist[np.arange(b), exclude] = np.inf
    part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    part_d = np.take_along_axis(dist, part, axis=1)
    kth = part_d.max(axis=1)
    keys = (part, part_d) if tiebreak is None else (
        part, np.take_along_axis(tiebreak, part, axis=1), part_d)
    idx = np.take_along_axis(part, np.lexsort(keys, axis=1), axis=1)
    # more than k candidates at or below the k-th value (rare on continuous data): the whole
    # row ordered by (value, tiebreak, index), the excluded column last; chunks of ~2²⁰ values
    ties = np.flatnonzero((dist <= kth[:, None]).sum(axis=1) > k)
    step = max(1, 2**20 // n)
    for a in range(0, ties.size, step):
        t = ties[a:a + step]
        d = dist[t]
        out = d > kth[t, None]
        if exclude is not None:
            out[np.arange(t.size), exclude[t]] = True
        cols = np.broadcast_to(np.arange(n), d.shape)
        keys = (cols, d, out) if tiebreak is None else (cols, tiebreak[t], d, out)
        idx[t] = np.lexsort(keys, axis=1)[:, :k]
    return idx, np.take_along_axis(dist, idx, axis=1)


def exact_knn(x: np.ndarray, k: int, *, metric: str = "cosine", block_rows: int | None = None,
              memory: int = 256 * 2**20, exclude_self: bool = True, device: str | None = None,
              duplicates: np.ndarray | None = None,
              progress: str | None = "exact kNN") -> KnnResult:
    """Exact k-NN of every row of ``x`` among the rows of ``x`` (self excluded).

    X·Xᵀ is symmetric, so only the blocks on and above the diagonal are multiplied (half the
    flops); each product updates the running top-(k+1) of its rows and, transposed, of its columns.
    Products and selection run in torch (multithreaded ``topk``; ``device`` e.g. "cuda" when one is
    available) in the data's dtype. Rows whose (k+1)-th candidate ties the k-th are re-selected
    exactly over all rows (the lower index wins).

    ``duplicates`` (the lowest equal row of every row, :func:`geomkit.engine.duplicates.
    duplicate_representatives`): exact copies get distance exactly 0 and no other row ranks
    before them (cosine and euclidean scores are capped at the self score, so a near-parallel
    row whose cosine rounds above 1 ties at 0 instead); ``dot`` is left as computed.
    """
    import torch

    n = x.shape[0]
    if k < 1 or k >= n:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1}")
    xp, x_sq = prepare(np.ascontiguousarray(x), metric)
    xt = torch.from_numpy(np.ascontiguousarray(xp))
    if device:
        xt = xt.to(device)
    euclid = metric in ("euclidean", "sqeuclidean")
    sq_t = torch.from_numpy(x_sq.astype(xp.dtype)).to(xt.device) if euclid else None
    # three b×b score matrices within the memory budget
    b = block_rows or int(max(256, min(n, 2048, np.sqrt(memory / (3 * xp.itemsize)))))
    kk = min(k + 1, n - 1) if exclude_self else min(k + 1, n)
    best_v = torch.full((n, kk), -torch.inf, dtype=xt.dtype, device=xt.device)
    best_i = torch.zeros((n, kk), dtype=torch.int64, device=xt.device)
    force = duplicates is not None and metric != "dot"
    if force:  # the score of distance 0 per row: 1 (unit rows) or |x|² (2 q·x − |x|² at x = q)
        cap = sq_t if euclid else torch.ones(n, dtype=xt.dtype, device=xt.device)
        rep_t = torch.from_numpy(np.asarray(duplicates, dtype=np.int64)).to(xt.device)
        copied = np.bincount(duplicates, minlength=n)[duplicates] > 1
        copied_t = torch.from_numpy(copied).to(xt.device)

    def forced(s, r: slice, c: slice):
        """Scores of rows r against columns c with copies at the cap and nothing above it."""
        s = torch.minimum(s, cap[r][:, None])
        if copied_t[r].any() and copied_t[c].any():
            same = rep_t[r][:, None] == rep_t[c][None, :]
            s = torch.where(same, cap[r][:, None], s)
        return s

    def merge(rows: slice, scores, col0: int):
        v, i = torch.topk(scores, min(kk, scores.shape[1]), dim=1)
        v = torch.cat([best_v[rows], v], dim=1)
        i = torch.cat([best_i[rows], i + col0], dim=1)
        top_v, pos = torch.topk(v, kk, dim=1)
        best_v[rows], best_i[rows] = top_v, torch.gather(i, 1, pos)

    from geomkit.report.progress import progress_bar

    starts = list(range(0, n, b))
    with torch.inference_mode(), progress_bar(len(starts) * (len(starts) + 1) // 2,
                                              progress, engine=True, unit="blocks") as bar:
        for a in starts:
            ra = slice(a, min(n, a + b))
            for c in starts:
                if c < a:
                    continue
                bar.update(1)
                rc = slice(c, min(n, c + b))
                gram = xt[ra] @ xt[rc].T
                if euclid:  # -(|x|^2 - 2 q.x) up to the per-row constant |q|^2
                    s_rows = 2.0 * gram - sq_t[rc][None, :]
                    s_cols = 2.0 * gram.T - sq_t[ra][None, :]
                else:
                    s_rows, s_cols = gram, gram.T
                if force:
                    s_rows, s_cols = forced(s_rows, ra, rc), forced(s_cols, rc, ra)
                if c == a:
                    if exclude_self:
                        s_rows = s_rows.clone()
                        s_rows.fill_diagonal_(-torch.inf)
                    merge(ra, s_rows, c)
                else:
                    merge(ra, s_rows, c)
                    merge(rc, s_cols.contiguous(), a)
    vals, idx = best_v.cpu().numpy(), best_i.cpu().numpy()
    order = np.lexsort((idx[:, :k], -vals[:, :k]), axis=1)
    indices = np.take_along_axis(idx[:, :k], order, axis=1)
    scores = np.take_along_axis(vals[:, :k], order, axis=1).astype(np.float64)
    if kk > k:  # the (k+1)-th ties the k-th: those rows again, over all columns, in chunks
        ties = np.flatnonzero(vals[:, k] == vals[:, k - 1])
        step = max(1, 2**20 // n)
        for a in range(0, ties.size, step):
            t = ties[a:a + step]
            # the same torch product as the blocks (numpy's BLAS may round the last bit by a
            # column's place, and exact copies would no longer tie)
            with torch.inference_mode():
                row = (xt[torch.from_numpy(t).to(xt.device)] @ xt.T).cpu().numpy().astype(np.float64)
            if euclid:
                row = 2.0 * row - x_sq[None, :]
            if force:
                row_cap = x_sq[t] if euclid else np.ones(t.size)
                np.minimum(row, row_cap[:, None], out=row)
                same = duplicates[t][:, None] == duplicates[None, :]
                row = np.where(same, row_cap[:, None], row)
            if exclude_self:
                row[np.arange(t.size), t] = -np.inf
            sel = topk_rows(-row, k, exclude=t if exclude_self else None)[0]
            indices[t], scores[t] = sel, np.take_along_axis(row, sel, axis=1)
    if metric == "cosine":
        distances = np.maximum(1.0 - scores, 0.0)
    elif metric == "dot":
        distances = -scores
    else:  # score = 2 q.x - |x|^2, so |q - x|^2 = |q|^2 - score
        distances = np.clip(x_sq[:, None] - scores, 0.0, None)
        if metric == "euclidean":
            distances = np.sqrt(distances)
    if force:
        distances[duplicates[indices] == duplicates[:, None]] = 0.0
    return KnnResult(indices, distances, metric)


def approximate_knn(x: np.ndarray, k: int, *, metric: str = "cosine", nlist: int | None = None,
                    nprobe: int | None = None, recall_sample: int = 1000, seed: int = 0,
                    memory: int | None = None) -> KnnResult:
    """Approximate k-NN of the rows of an in-memory ``x`` (faiss IVF; IVF-Flat unless ``memory``
    asks for a compressed index): :func:`geomkit.engine.ann.approximate_search` with every
    neighbour kept; recall@k measured on ``recall_sample`` seeded queries against exact search.
    Spaces on files use the streamed path directly (``hubness --approximate``, ``compare``)."""
    from geomkit.engine.ann import ArrayFeed, approximate_search

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    res = approximate_search(ArrayFeed(x, metric), k, metric=metric, memory=memory,
                             nprobe=nprobe, nlist=nlist, recall_sample=recall_sample, seed=seed,
                             keep=True)
    return KnnResult(res.indices.astype(np.int64), res.distances.astype(np.float64), metric,
                     exact=False, recall=res.recall)
