"""Exact euclidean k nearest neighbours: a bfloat16 candidate search, certified in float64.

The cost of an exact neighbour search is the O(N²·d) product of :func:`geomkit.engine.knn.
exact_knn`. On CPUs with bfloat16 dot-product instructions (AVX512-BF16, AMX) a bfloat16 product
runs 2-3× faster than the float32 one, and its rounding is bounded, so it can choose candidate
lists that provably contain every row's k nearest neighbours:

1. The rows are centred (float64 mean; distances do not change) and rounded to bfloat16:
   h = bf16(s·(x − μ)) (s a power of two bringing the largest value near 1: exact), with
   e = ‖s·(x − μ) − h‖ computed exactly for every row. One product per tile
   of two row blocks gives T = −‖h_q − h_c‖²/2: the squared norms enter through six extra
   columns (each ‖h‖²/2 split in three bfloat16 pieces), the sum is accumulated in float32 and
   rounded to bfloat16. Only the tiles on and above the diagonal are multiplied; each serves its
   rows and, transposed, its columns.
2. Every row keeps the K = k + ``slack`` largest T. A tile is read through the maxima of 64-value
   chunks against each row's current K-th value, so that only the chunks that can enter a list
   are gathered (the diagonal tiles go first and give every row a threshold).
3. The K candidates get float64 distances ‖x_q − x_c‖ (differences of the stored values),
   ordered by (distance, row); the first k are the answer when they are certified: every row
   left out has T(q, c) ≤ U_q, the K-th kept value, hence a true distance of at least
   LB_q = √(2·(−U_q/(1 + u) − δ_q)) − e_q − max e, with u = 2⁻⁷ (twice bfloat16's rounding
   unit) and δ_q = 4·(K' + 1)·2⁻²⁴·(‖h_q‖² + max ‖h‖²) (float32 accumulation over the K'
   columns, and the norm split). A row whose k-th distance is below LB_q is exact: nothing left
   out can tie or beat it.
4. Rows that fail (dense regions, near-copies: ~1-2 % of rows on real data) are searched again
   over all rows with 4K candidates, and the few still failing by float64 products (every row
   within rounding of the k-th squared distance is recomputed, so ties all come in).

The answer is the exact kNN under float64 distances (ties: the lower row wins), which the
float32 Gram product of :func:`~geomkit.engine.knn.exact_knn` only approximates when a
neighbour's distance is small against the norms. Exact copies are not treated specially
(intdim searches the distinct rows); use :func:`~geomkit.engine.knn.exact_knn` for spaces with
copies, other metrics, float64 data or a GPU.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from geomkit.engine.knn import KnnResult

SLACK = 8  # candidates kept beyond k
CHUNK = 64  # values per chunk maximum
FLUSH = 2**18  # candidate values gathered between two merges
ROUND = 2.0 ** -7  # twice bfloat16's unit roundoff (round to nearest: 2⁻⁸)


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def fast_bf16() -> bool:
    """Whether bfloat16 products are fast here (AVX512-BF16 or AMX on Linux; environment
    ``GEOMKIT_KNN_BF16=0|1`` decides otherwise)."""
    env = os.environ.get("GEOMKIT_KNN_BF16")
    if env in ("0", "1"):
        return env == "1"
    return _cpu_has_bf16()


def usable(x: np.ndarray, device: str | None = None) -> bool:
    """The certified search applies: float16/32 rows on the CPU, bfloat16 fast here."""
    return (x.dtype in (np.float16, np.float32) and device in (None, "cpu") and x.shape[0] > 2
            and fast_bf16())


class _Lists:
    """The running K best (largest T) of every row: values (float32: a tile is widened once,
    torch reduces float32 5-20x faster than bfloat16), columns, thresholds."""

    def __init__(self, n: int, kk: int):
        import torch

        self.kk = kk
        self.v = torch.full((n, kk), -torch.inf)
        self.i = torch.full((n, kk), -1, dtype=torch.int64)
        self.thr = torch.full((n,), -torch.inf)
        self.pending: list = []  # (row, value, column) offered since the last merge
        self.n_pending = 0

    def merge(self, rows, v, i) -> None:
        import torch

        v = torch.cat([self.v[rows], v], 1)
        i = torch.cat([self.i[rows], i], 1)
        top, pos = torch.topk(v, self.kk, dim=1)
        self.v[rows], self.i[rows] = top, torch.gather(i, 1, pos)
        self.thr[rows] = top[:, -1]

    def dense(self, t, r0: int, c0: int, both: bool) -> None:
        """All of tile ``t`` (rows r0.., columns c0..) offered to its rows (and columns)."""
        import torch

        self.flush()
        nr, nc = t.shape
        v, i = torch.topk(t, min(self.kk, nc), dim=1)
        self.merge(slice(r0, r0 + nr), v, i + c0)
        if both:
            v, i = torch.topk(t, min(self.kk, nr), dim=0)
            self.merge(slice(c0, c0 + nc), v.T, i.T + r0)

    def sparse(self, t, r0: int, c0: int) -> None:
        """Tile ``t`` offered to its rows and its columns through chunk maxima: only chunks
        whose maximum beats a row's threshold are gathered, and their values above it are kept
        for the next merge (every ``FLUSH`` values: the thresholds lag a few tiles, which lets
        a few more values through but merges far less often)."""
        import torch

        nr, nc = t.shape
        if nr % CHUNK or nc % CHUNK:
            self.dense(t, r0, c0, True)
            return
        ar = torch.arange(CHUNK)
        # rows: chunk s of row r = columns s, s + nc/64, s + 2nc/64, … (a middle-axis reduction)
        tr = t.view(nr, CHUNK, nc // CHUNK)
        rr, ss = (tr.amax(1) > self.thr[r0:r0 + nr, None]).nonzero(as_tuple=True)
        # columns: chunk g of column c = rows 64g … 64g + 63
        tc = t.view(nr // CHUNK, CHUNK, nc)
        gg, cc = (tc.amax(1) > self.thr[c0:c0 + nc][None, :]).nonzero(as_tuple=True)
        if rr.numel() + gg.numel() == 0:
            return
        vals = torch.cat([tr[rr, :, ss], tc[gg, :, cc]])
        target = torch.cat([rr + r0, cc + c0])
        cols = torch.cat([ss[:, None] + (nc // CHUNK) * ar[None, :] + c0,
                          gg[:, None] * CHUNK + ar[None, :] + r0])
        p, j = (vals > self.thr[target][:, None]).nonzero(as_tuple=True)
        if p.numel():
            self.pending.append((target[p], vals[p, j], cols[p, j]))
            self.n_pending += p.numel()
            if self.n_pending >= FLUSH:
                self.flush()

    def flush(self) -> None:
        """Merge the offered candidates into the lists: one padded top-K per touched row."""
        import torch

        if not self.pending:
            return
        tgt, val, col = (torch.cat(part) for part in zip(*self.pending))
        self.pending, self.n_pending = [], 0
        order = torch.argsort(tgt, stable=True)
        tgt, val, col = tgt[order], val[order], col[order]
        rows, counts = torch.unique_consecutive(tgt, return_counts=True)
        where = torch.repeat_interleave(torch.arange(rows.numel()), counts)
        rank = torch.arange(tgt.numel()) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        m = int(counts.max())
        pv = torch.full((rows.numel(), m), -torch.inf)
        pi = torch.full((rows.numel(), m), -1, dtype=torch.int64)
        pv[where, rank], pi[where, rank] = val, col
        self.merge(rows, pv, pi)


def _prepare(x: np.ndarray, block: int):
    """R = [h, 1, 1, 1, p1, p2, p3, 0…] (bfloat16, columns padded to 16), e = ‖s(x − μ) − h‖,
    h2 = ‖h‖² (float64) and s, with h = bf16(s·(x − μ)), p1 + p2 + p3 = ‖h‖²/2 and s the power
    of two that brings max |x| near 1."""
    import torch

    n, d = x.shape
    mu = np.zeros(d)
    top = 0.0
    for a in range(0, n, block):
        mu += x[a:a + block].sum(axis=0, dtype=np.float64)
        top = max(top, float(np.abs(x[a:a + block]).max()))
    mu_t = torch.from_numpy(mu / n)
    # a power of two brings the largest value near 1 (exact: distances scale by it), so that
    # tiny or huge values stay in bfloat16's normal range
    scale = 2.0 ** -np.ceil(np.log2(top)) if top > 0 else 1.0
    kp = -(-(d + 6) // 16) * 16
    r = torch.zeros((n, kp), dtype=torch.bfloat16)
    e = torch.empty(n, dtype=torch.float64)
    h2 = torch.empty(n, dtype=torch.float64)
    for a in range(0, n, block):
        b = min(n, a + block)
        xc = (torch.from_numpy(x[a:b]).double() - mu_t) * scale
        h = xc.to(torch.bfloat16)
        hd = h.double()
        e[a:b] = torch.linalg.vector_norm(xc - hd, dim=1)
        h2[a:b] = (hd * hd).sum(1)
        half = h2[a:b] / 2
        pieces = []
        for _ in range(3):
            pieces.append(half.to(torch.bfloat16))
            half = half - pieces[-1].double()
        r[a:b, :d] = h
        r[a:b, d:d + 3] = 1
        r[a:b, d + 3:d + 6] = torch.stack(pieces, 1)
    return r, e, h2, scale


def _left(r, rows, d: int):
    """The query side of the tile product: [h, −p1, −p2, −p3, −1, −1, −1, 0…]."""
    q = r[rows].clone()
    q[:, d:d + 3] = -r[rows, d + 3:d + 6]
    q[:, d + 3:d + 6] = -1
    return q


def _rerank(xt, rows, cand, k: int, group: int = 32):
    """float64 ‖x_q − x_c‖ of every candidate (−1: none), each row ordered by (distance,
    column): the first k columns and distances, and the k-th distance."""
    import torch

    nq, kk = cand.shape
    d = xt.shape[1]
    out_i = torch.empty((nq, k), dtype=torch.int64)
    out_d = torch.empty((nq, k), dtype=torch.float64)
    for a in range(0, nq, group):
        b = min(nq, a + group)
        c = cand[a:b]
        diff = torch.index_select(xt, 0, c.clamp(min=0).reshape(-1)).view(b - a, kk, d).double()
        diff -= xt[rows[a:b]].double()[:, None, :]
        dist = torch.linalg.vector_norm(diff, dim=2)
        dist[c < 0] = torch.inf
        o = torch.argsort(c, dim=1)  # columns ascending, then a stable sort by distance
        c, dist = torch.gather(c, 1, o), torch.gather(dist, 1, o)
        o = torch.argsort(dist, dim=1, stable=True)[:, :k]
        out_i[a:b], out_d[a:b] = torch.gather(c, 1, o), torch.gather(dist, 1, o)
    return out_i, out_d


def _lower_bound(u_val, e_rows, h2_rows, e_max: float, h2_max: float, kp: int):
    """The smallest true distance any row left out of a list can have (see the module doc)."""
    import torch

    u = u_val.double()
    t_exact = torch.where(u <= 0, u / (1 + ROUND), u / (1 - ROUND))
    delta = 4 * (kp + 1) * 2.0 ** -24 * 1.02 * (h2_rows + h2_max)
    half = torch.clamp(-t_exact - delta, min=0)
    lb = torch.sqrt(2 * half) - e_rows - e_max
    return torch.where(torch.isneginf(u), torch.full_like(lb, torch.inf), lb)


def certified_knn(x: np.ndarray, k: int, *, memory: int = 256 * 2**20, slack: int = SLACK,
                  block_rows: int | None = None, progress: str | None = "exact kNN",
                  stats: dict | None = None) -> KnnResult:
    """Exact euclidean k-NN of every row of ``x`` (float16/32, N×d in memory; self excluded),
    by the certified bfloat16 search of this module. ``distances`` are float64 ‖x_i − x_j‖, each
    row ordered by (distance, row). ``stats`` (a dict, optional) receives the number of rows
    searched again (``rows_second``), searched by float64 products (``rows_float64``), the
    list length (``candidates``) and the seconds of each step (``seconds``)."""
    import time

    import torch

    from geomkit.report.progress import progress_bar

    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return round(clock[-1] - clock[-2], 3)

    n, d = x.shape
    if k < 1 or k >= n:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    xt = torch.from_numpy(x)
    b = block_rows or int(max(256, min(2048, np.sqrt(memory / 8))))
    b = max(CHUNK, b // CHUNK * CHUNK)
    kk = min(k + slack, n - 1)
    with torch.inference_mode():
        r, e, h2, scale = _prepare(x, b)
        seconds = {"prepare": lap()}
        kp = r.shape[1]
        lists = _Lists(n, kk)
        starts = list(range(0, n, b))
        with progress_bar(len(starts) * (len(starts) + 1) // 2, progress, engine=True,
                          unit="blocks") as bar:
            wide = torch.empty(b * b)

            def tile(left, rows):
                t = left @ r[rows].T
                return wide[:t.numel()].view(t.shape).copy_(t)

            for a in starts:  # the diagonal tiles first: every row gets a threshold
                ra = slice(a, min(n, a + b))
                t = tile(_left(r, ra, d), ra)
                t.fill_diagonal_(-torch.inf)
                lists.dense(t, a, a, False)
                bar.update(1)
            for a in starts:
                ra = slice(a, min(n, a + b))
                left = _left(r, ra, d)
                for c in starts:
                    if c <= a:
                        continue
                    lists.sparse(tile(left, slice(c, min(n, c + b))), a, c)
                    bar.update(1)
            lists.flush()
        seconds["scan"] = lap()
        e_max, h2_max = float(e.max()), float(h2.max())
        all_rows = torch.arange(n)
        indices, distances = _rerank(xt, all_rows, lists.i, k)
        lb = _lower_bound(lists.v[:, -1], e, h2, e_max, h2_max, kp) / scale
        if kk == n - 1:  # every other row is a candidate
            lb[:] = torch.inf
        failed = torch.nonzero(distances[:, -1] >= lb).flatten()
        seconds["rerank"] = lap()
        del lists
        n_second = failed.numel()
        if n_second:  # again over all rows, 4K candidates
            kk2 = min(4 * kk, n - 1)
            again = _Lists(n_second, kk2)
            for a in range(0, n_second, b):
                rows = failed[a:a + b]
                left = _left(r, rows, d)
                local = slice(a, a + rows.numel())
                for c in starts:
                    t = (left @ r[c:min(n, c + b)].T).float()
                    own = torch.nonzero((rows >= c) & (rows < c + t.shape[1])).flatten()
                    t[own, rows[own] - c] = -torch.inf
                    v, i = torch.topk(t, min(kk2, t.shape[1]), dim=1)
                    again.merge(local, v, i + c)
            idx2, dist2 = _rerank(xt, failed, again.i, k)
            lb2 = _lower_bound(again.v[:, -1], e[failed], h2[failed], e_max, h2_max, kp) / scale
            if kk2 == n - 1:
                lb2[:] = torch.inf
            ok = dist2[:, -1] < lb2
            indices[failed[ok]], distances[failed[ok]] = idx2[ok], dist2[ok]
            failed = failed[~ok]
        seconds["second"] = lap()
        n_f64 = failed.numel()
        if n_f64:  # float64 products over all rows; every row within rounding of the k-th
            sq = (xt.double() ** 2).sum(1)  # is recomputed (ties at the k-th all come in)
            tol = 1e-10 * float(sq.max())
            group = max(1, min(256, 2**24 // n))  # ≤ 128 MiB of float64 distances
            for a in range(0, n_f64, group):
                rows = failed[a:a + group]
                q = xt[rows].double()
                d2 = torch.empty((rows.numel(), n), dtype=torch.float64)
                for c in range(0, n, 16384):
                    d2[:, c:c + 16384] = (sq[rows][:, None] + sq[None, c:c + 16384]
                                          - 2 * q @ xt[c:c + 16384].double().T)
                d2[torch.arange(rows.numel()), rows] = torch.inf
                kth = torch.kthvalue(d2, k, dim=1).values
                for j, row in enumerate(rows.tolist()):
                    cand = torch.nonzero(d2[j] <= kth[j] + tol).flatten()
                    indices[row], distances[row] = (part[0] for part in _rerank(
                        xt, torch.tensor([row]), cand[None, :], k))
        seconds["float64"] = lap()
    if stats is not None:
        stats.update(rows_second=int(n_second), rows_float64=int(n_f64), candidates=kk,
                     seconds=seconds)
    return KnnResult(indices.numpy(), distances.numpy(), "euclidean")


def float64_lists(x: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """‖x_i − x_j‖ in float64 for every listed neighbour j of row i, each row re-sorted by
    (distance, index): ``(indices, distances)`` (the re-ranking of the certified search)."""
    import torch

    with torch.inference_mode():
        idx, dist = _rerank(torch.from_numpy(np.ascontiguousarray(x)), torch.arange(x.shape[0]),
                            torch.from_numpy(np.ascontiguousarray(indices, dtype=np.int64)),
                            indices.shape[1])
    return idx.numpy(), dist.numpy()


def _centred(x: np.ndarray, block: int = 65536) -> np.ndarray:
    """x − mean(x) (float64 mean) in x's float type (float16 widened to float32), by blocks."""
    mu = np.zeros(x.shape[1])
    for a in range(0, x.shape[0], block):
        mu += x[a:a + block].sum(axis=0, dtype=np.float64)
    mu /= max(1, x.shape[0])
    out = np.empty(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32)
    for a in range(0, x.shape[0], block):
        out[a:a + block] = x[a:a + block] - mu
    return out


def float64_knn(x: np.ndarray, k: int, *, memory: int = 256 * 2**20, device: str | None = None,
                duplicates: np.ndarray | None = None, progress: str | None = "exact kNN"
                ) -> KnnResult:
    """Euclidean k-NN lists with float64 distances ‖x_i − x_j‖, each row ordered by
    (distance, row): the certified bfloat16 search where it applies (:func:`usable`), else the
    float32 engine's lists (:func:`geomkit.engine.knn.exact_knn`) with their distances
    recomputed in float64 and re-sorted. ``search`` in the result names the way taken."""
    from geomkit.engine.knn import exact_knn

    if usable(x, device):
        stats: dict = {}
        res = certified_knn(x, k, memory=memory, progress=progress, stats=stats)
        res.search = {"products": "bfloat16, certified in float64",
                      **{key: v for key, v in stats.items() if key != "seconds"}}
        return res
    # centred first (float64 mean): a Gram product far from the origin ranks by digits it no
    # longer has (‖x‖² ≫ r²); the distances are then recomputed from the rows as stored
    graph = exact_knn(_centred(x), k, metric="euclidean", memory=memory, device=device,
                      duplicates=duplicates, progress=progress)
    idx, dist = float64_lists(x, graph.indices)
    return KnnResult(idx, dist, "euclidean", search={"products": str(x.dtype if x.dtype ==
                                                                     np.float64 else "float32")})
