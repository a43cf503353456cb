"""Hubness-reduced neighbourhoods (METHODS.md §3), computed blockwise over the distance matrix.

Each method fits per-item statistics in a first blockwise pass, then rescales every distance block
and takes the k nearest under the reduced distance (self excluded) in a second pass:

- ``mp``    mutual proximity, Gaussian: 1 − SF(d; μ_x, σ_x)·SF(d; μ_y, σ_y), μ/σ (ddof = 0) of each
            item's distances to all other items (``candidates=None``) or to its ``candidates``
            nearest non-self neighbours (then only those candidates are re-ranked).
- ``mp_empiric`` mutual proximity, empiric, over candidate lists (default 100) exactly as
            scikit-hubness 0.30 computes it: for y at position p in x's sorted list L_x,
            MP = 1 − |A ∩ B| / N with A = L_x after p ∪ (L_y ∖ L_x) (taken as farther from x than
            y) and B = {j ∈ L_y: d_yj > d_xy} ∪ (L_x ∖ L_y), and MP = 1 where d_xy ≥ max d_y.
            d_yx is taken equal to d_xy (the method assumes symmetric distances; float products
            need not be). Ties are frequent (counts): the nearer raw candidate wins.
- ``ls``    local scaling: 1 − exp(−d²/(σ_x σ_y)), σ = distance to the k_ls-th non-self neighbour.
- ``nicdm`` d/√(r_x r_y), r = mean distance to the k_ls nearest non-self neighbours.
- ``dsl``   DisSimLocal (squared euclidean): ‖x−y‖² − ‖x − c(x)‖² − ‖y − c(y)‖², c = centroid of the
            k_ls nearest items counting the item itself (as scikit-hubness computes it).
- ``csls``  2cos(x, y) − r(x) − r(y), r = mean cosine to the 10 nearest non-self neighbours (as a
            distance: its negative).
- ``dis``   QB-Norm dynamic inverted softmax, querybank = the dump itself (or ``querybank``):
            A = items that are the top-1 of some querybank item; a query whose raw top-1 is in A
            is re-scored by β·s(q,g) − logsumexp_b β·s(b,g) (β = 20, self excluded), others keep s.

Ties: equal reduced values go to the nearer raw distance, then the lower index (mp_empiric and
mp over candidates: the candidate order, which is the same); self is never a neighbour, also
when reduced values are +∞ (:func:`geomkit.engine.knn.topk_rows`).

Degenerate data (exact duplicates, identical rows, tiny N) — the definitions' limits, no 0/0:

- Exact copies (found by :func:`geomkit.engine.duplicates.duplicate_representatives`) are at
  distance exactly 0 under cosine, euclidean and sqeuclidean (Gram products would leave them
  anywhere from 0 to ~1e-3·‖x‖ apart in float32). ``dot`` is no distance and is left as is.
- ``ls`` with σ_x σ_y = 0 (an item with ≥ k_ls copies): 0 for d = 0, 1 for d > 0. LS is ranked
  by its exponent z = d²/(σ_x σ_y) (z = +∞ in the limit), which orders pairs as LS does without
  LS's rounding to exactly 1 for z ≳ 37; the reported value is 1 − exp(−z).
- ``nicdm`` with r_x r_y = 0: 0 for d = 0, +∞ for d > 0.
- Gaussian ``mp`` with σ = 0 (all of an item's distances equal: identical rows, N = 2, or c
  candidates that are all copies): the survival function of the point mass at μ, 1 for d < μ
  and 0 for d ≥ μ (P(X > d) with X = μ); the pruning bound is skipped for such items.
- ``dsl``, ``csls``, ``dis``, ``mp_empiric`` divide by no local scale: copies simply tie at the
  nearest value.
- ls and nicdm need non-negative distances: the ``dot`` metric is refused for them.
- Too few items: ``ls``/``nicdm`` need N ≥ k_ls + 1 = 6, ``dsl`` N ≥ k_ls = 5, ``csls``
  N ≥ 11 (a :class:`~geomkit.errors.UsageError` naming the minimum: their neighbourhood size is
  part of the method, not shrunk silently). Candidate lists of ``mp``/``mp_empiric`` longer
  than the N − 1 other items are clamped to all of them (:func:`candidates_used`; the all-items
  method, nothing approximated), which ``hubness`` reports in its JSON and notes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, ndtr

from geomkit.engine.duplicates import duplicate_representatives
from geomkit.engine.knn import (KnnResult, distance_block, exact_knn, iter_distance_blocks,
                                prepare, topk_rows, zero_duplicate_pairs)

REDUCTIONS = ("none", "mp", "mp_empiric", "ls", "nicdm", "dsl", "csls", "dis")
K_CSLS = 10  # CSLS's neighbourhood (Conneau et al. 2018)
MP_EMPIRIC_CANDIDATES = 100  # default candidate list of mp_empiric (scikit-hubness 0.30's n_neighbors)


def _neighbours(x, kk, metric, memory, duplicates, knn=None):
    """The kk nearest non-self neighbours: from ``knn(kk, metric)`` (a shared graph, e.g.
    :meth:`geomkit.Space.knn`) when given, else an exact search here."""
    if knn is not None:
        return knn(kk, metric)
    return exact_knn(x, kk, metric=metric, memory=memory, duplicates=duplicates)


def knn_requests(method: str, k: int, n: int, metric: str, *, candidates: int | None = None,
                 k_ls: int = 5) -> list[tuple[int, str]]:
    """The exact kNN graphs (size, metric) a reduction reads: prefetch the largest per metric
    and every method slices it (one search for ``--reduce none,ls,nicdm,csls``)."""
    used = candidates_used(method, k, n, candidates)
    return {"none": [(k, metric)], "mp": [(used, metric)] if used is not None else [],
            "mp_empiric": [(used, metric)], "ls": [(k_ls, metric)], "nicdm": [(k_ls, metric)],
            "dsl": [(k_ls - 1, "sqeuclidean")] if k_ls > 1 else [],
            "csls": [(K_CSLS, "cosine")]}.get(method, [])


def _sf(d, mu, sigma):
    """Gaussian survival function P(X > d); for σ = 0 that of the point mass at μ (1 for d < μ,
    0 for d ≥ μ: identical items, or N = 2, give every distance the same value)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sf = ndtr((mu - d) / sigma)
    return np.where(np.isnan(sf), 0.0, sf)


def _reduced_topk(x, k, metric, rescale, memory, duplicates=None, to_score=None):
    """k nearest of every row under ``rescale(raw distance block, rows)`` (self excluded);
    equal reduced values go to the nearer raw distance, then the lower index. ``to_score``
    maps the ranking key to the reported value (LS ranks by its exponent)."""
    from geomkit.report.progress import progress_bar

    n = x.shape[0]
    indices = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k))
    with progress_bar(n, "hubness reduction", engine=True) as bar:
        for start, dist in iter_distance_blocks(x, metric, memory=memory, duplicates=duplicates):
            rows = np.arange(start, start + dist.shape[0])
            bar.update(rows.size)
            red = rescale(dist, rows)
            indices[start:start + rows.size], scores[start:start + rows.size] = topk_rows(
                red, k, tiebreak=dist, exclude=rows)
    return indices, (scores if to_score is None else to_score(scores))


def mutual_proximity(x, k, *, metric="euclidean", candidates=None, memory=256 * 2**20,
                     duplicates=None, knn=None):
    if candidates is None:
        return _mp_full(x, k, metric, memory, duplicates)
    base = _neighbours(x, candidates, metric, memory, duplicates, knn)
    mu = base.distances.mean(1)
    sigma = base.distances.std(1)
    red = 1.0 - _sf(base.distances, mu[:, None], sigma[:, None]) * _sf(
        base.distances, mu[base.indices], sigma[base.indices])
    # candidates come sorted by (raw distance, index): a stable sort keeps that order for ties
    order = np.argsort(red, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(base.indices, order, 1), np.take_along_axis(red, order, 1)


def mutual_proximity_empiric(x, k, *, metric="euclidean", candidates=MP_EMPIRIC_CANDIDATES,
                             memory=256 * 2**20, duplicates=None, knn=None):
    """Empiric MP over each item's ``candidates`` nearest non-self neighbours; O(N·c²)."""
    ind, red = mp_empiric_scores(x, max(candidates, k + 1), metric=metric, memory=memory,
                                 duplicates=duplicates, knn=knn)
    order = np.argsort(red, axis=1, kind="stable")[:, :k]  # ties: the nearer raw candidate
    return np.take_along_axis(ind, order, 1), np.take_along_axis(red, order, 1)


def mp_empiric_scores(x, candidates, *, metric="euclidean", memory=256 * 2**20, duplicates=None,
                      knn=None):
    """(candidate indices sorted by raw distance, their empiric MP distances), both (N, c)."""
    n = x.shape[0]
    c = min(candidates, n - 1)
    base = _neighbours(x, c, metric, memory, duplicates, knn)
    ind, dist = base.indices, base.distances.astype(np.float64)
    counts = np.empty((n, c))
    later = np.triu(np.ones((c, c), dtype=bool), 1)  # later[p, q]: position q comes after p in L_x
    # per block: a (B, N) position table plus a few (B, c, c) arrays
    block = int(max(1, min(n, memory // (4 * n + 6 * 8 * c * c))))
    pos = np.full((block, n), -1, dtype=np.int32)
    for a in range(0, n, block):
        lx, dx = ind[a:a + block], dist[a:a + block]
        b = lx.shape[0]
        rb = np.arange(b)[:, None]
        pos[rb, lx] = np.arange(c, dtype=np.int32)
        ly = ind[lx]                                  # (b, c: y = L_x[p], c: j in L_y)
        dy = dist[lx]
        d = dx[:, :, None]
        dy = np.where(ly == np.arange(a, a + b)[:, None, None], d, dy)  # d_yx := d_xy
        where = pos[rb[:, :, None], ly]               # position of L_y[q] in L_x, -1 if absent
        # g[x, p, q] = d(L_x[p], L_x[q]) where L_x[q] ∈ L_y (y = L_x[p]), else NaN
        g = np.full((b, c, c), np.nan)
        bb, pp, qq = np.nonzero(where >= 0)
        g[bb, pp, where[bb, pp, qq]] = dy[bb, pp, qq]
        pos[rb, lx] = -1
        with np.errstate(invalid="ignore"):
            # |A ∩ B| = #{q > p: L_x[q] ∉ L_y} − #{q ≤ p: L_x[q] ∈ L_y, d_y,q > d_xy}
            #           + #{j ∈ L_y: d_yj > d_xy}
            cnt = ((np.isnan(g) & later).sum(-1) - ((g > d) & ~later).sum(-1)
                   + c - (dy <= d).sum(-1))
        cnt[dx >= dy[:, :, -1]] = 0
        counts[a:a + b] = cnt
    return ind, 1.0 - counts / n


def _mp_full(x, k, metric, memory, duplicates=None):
    """Gaussian MP over all other items, two blockwise passes in torch (distances in the data's
    dtype — float32 or float64 —, moments and MP values in float64).

    Pass 1: μ, σ of every row and its raw nearest candidates. Their exact MP gives each row an
    upper bound r_x on its k-th smallest MP distance; since SF_y ≤ 1, MP(x, y) ≤ r_x needs
    SF_x(d_xy) ≥ 1 − r_x, i.e. d_xy ≤ t_x = μ_x − σ_x·Φ⁻¹(1 − r_x), and likewise for y. Pass 2
    evaluates the Gaussian tails only for pairs under both thresholds (well under 1% of the pairs
    on embedding-like data), with the same formula, so the selection is exact. Ties (MP often
    rounds to exactly 0 for close pairs) go to the nearer raw distance, then the lower index.
    Rows with σ = 0 (a step, not a Gaussian tail) or no usable bound evaluate all their pairs.
    Exact copies (``duplicates``) are at distance exactly 0; cosine distances are clipped at 0.
    """
    import torch
    from scipy.special import ndtri

    n = x.shape[0]
    xp, x_sq = prepare(np.ascontiguousarray(x), metric)
    # products in the data's dtype, as the exact k-NN (float32 data: float32 BLAS, half the time
    # and memory traffic of float64); μ, σ and the MP values in float64
    work = np.float32 if xp.dtype == np.float32 else np.float64
    xt = torch.from_numpy(np.ascontiguousarray(xp, dtype=work))
    sq = None if x_sq is None else torch.from_numpy(x_sq.astype(work))
    b = max(1, min(n, memory // (np.dtype(work).itemsize * 4 * n)))
    n_cand = min(n - 1, 2 * k)
    root2 = np.sqrt(2.0)

    force = duplicates is not None and metric != "dot"
    if force:
        rep_t = torch.from_numpy(np.asarray(duplicates, dtype=np.int64))
        copied_t = torch.from_numpy(np.bincount(duplicates, minlength=n)[duplicates] > 1)

    def to_distance(g, a):
        """Gram rows a.. → distances in place; (|x|² + |y|²) − 2g keeps d_xy == d_yx; exact
        copies (``duplicates``) at exactly 0."""
        if metric == "dot":
            return g.neg_()
        if metric == "cosine":  # ≥ 0: identical unit vectors may round to a cosine above 1
            d = g.neg_().add_(1.0).clamp_(min=0.0)
        else:
            d = g.mul_(-2.0).add_(sq[a:a + g.shape[0], None] + sq[None, :]).clamp_(min=0.0)
            d = d if metric == "sqeuclidean" else d.sqrt_()
        if force and copied_t[a:a + d.shape[0]].any():
            d.masked_fill_(rep_t[a:a + d.shape[0], None] == rep_t[None, :], 0.0)
        return d

    def dist(a):
        return to_distance(xt[a:a + b] @ xt.T, a)

    # when the whole matrix fits the budget: one symmetric product (half the flops), kept for
    # both passes
    full = _symmetric_gram(xp.astype(np.float64, copy=False)).to(xt.dtype) \
        if 8 * n * n <= memory else None

    def sf2(d, mu, sd):  # 2·SF(d; μ, σ) = erfc((d − μ) / (σ√2)); σ = 0: the point mass at μ
        out = torch.special.erfc((d - mu) / (sd * root2))
        return torch.nan_to_num_(out, nan=0.0)  # 0/0 only where σ = 0 and d = μ: SF = 0

    def mp(d, mu_x, sd_x, mu_y, sd_y):
        return 1.0 - 0.25 * sf2(d, mu_x, sd_x) * sf2(d, mu_y, sd_y)

    total, total_sq = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    cand_d = torch.empty((n, n_cand), dtype=torch.float64)
    cand_i = torch.empty((n, n_cand), dtype=torch.int64)
    from geomkit.report.progress import progress_bar

    with torch.inference_mode(), progress_bar(n, "mutual proximity: moments", engine=True) as bar:
        for a in range(0, n, b):
            bar.update(min(b, n - a))
            d = dist(a) if full is None else to_distance(full[a:a + b], a)
            m = d.shape[0]
            rows = torch.arange(m)
            d[rows, rows + a] = 0.0
            total[a:a + m] = d.sum(1, dtype=torch.float64)
            total_sq[a:a + m] = d.square().sum(1, dtype=torch.float64)
            d[rows, rows + a] = torch.inf
            cand_d[a:a + m], cand_i[a:a + m] = torch.topk(d, n_cand, dim=1, largest=False)
        mu = total / (n - 1)
        sigma = (total_sq / (n - 1) - mu * mu).clamp_(min=0.0).sqrt_()
        bound = mp(cand_d, mu[:, None], sigma[:, None], mu[cand_i], sigma[cand_i])
        r = torch.kthvalue(bound, k, dim=1).values.numpy()
        mu_np, sd_np = mu.numpy(), sigma.numpy()
        # SF_x ≥ 1 − r_x, less an absolute margin for the rounding of 1 − SF·SF (and MP = 0
        # rows: the bound stays finite); no bound where 1 − r_x ≤ margin or σ = 0
        tau = 1.0 - r - 1e-12
        z_np = np.full(n, -np.inf)
        ok = (tau > 0) & (sd_np > 0)
        z_np[ok] = ndtri(tau[ok])
        z = torch.from_numpy(z_np)
        thresh = np.full(n, np.inf)
        thresh[ok] = mu_np[ok] - sd_np[ok] * z_np[ok]
        thresh[ok] += 1e-7 * (np.abs(thresh[ok]) + sd_np[ok])
        t = torch.from_numpy(thresh)
        indices = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k))
    with torch.inference_mode(), progress_bar(n, "mutual proximity: select", engine=True) as bar:
        for a in range(0, n, b):
            bar.update(min(b, n - a))
            if full is None:
                d = dist(a)
                d[torch.arange(d.shape[0]), torch.arange(a, a + d.shape[0])] = torch.inf
            else:
                d = full[a:a + b]  # self already at inf from pass 1
            m = d.shape[0]
            rr, cc = torch.nonzero(d <= t[a:a + m, None], as_tuple=True)
            dv = d[rr, cc]
            # SF_y(d_xy) ≥ 1 − r_x too: d_xy ≤ μ_y − σ_y·Φ⁻¹(1 − r_x); no such bound where
            # row x has none (z = −∞) or σ_y = 0 (a step, not a Gaussian tail)
            zr, sc = z[a + rr], sigma[cc]
            keep = ~(torch.isfinite(zr) & (sc > 0)) | (
                dv <= mu[cc] - sc * zr + 1e-7 * (dv.abs() + sc))
            rr, cc, dv = rr[keep], cc[keep], dv[keep]
            red = mp(dv, mu[a + rr], sigma[a + rr], mu[cc], sigma[cc]).numpy()
            rr, cc, dv = rr.numpy(), cc.numpy(), dv.numpy()
            order = np.lexsort((cc, dv, red, rr))
            first = np.searchsorted(rr[order], np.arange(m))
            counts = np.diff(np.r_[first, order.size])
            if (counts < k).any():  # cannot happen: the k bounding candidates pass the threshold
                raise RuntimeError("mutual proximity: fewer than k candidates under the bound")
            take = order[(first[:, None] + np.arange(k)[None, :]).ravel()]
            indices[a:a + m] = cc[take].reshape(m, k)
            scores[a:a + m] = red[take].reshape(m, k)
    return indices, scores


def _symmetric_gram(x: np.ndarray, tile: int = 512):
    """X·Xᵀ (float64 torch tensor) from one BLAS syrk (upper triangle only), mirrored by tiles."""
    import torch
    from scipy.linalg.blas import dsyrk

    n = x.shape[0]
    upper = dsyrk(1.0, np.ascontiguousarray(x).T, trans=1)  # Fortran order: its .T is C order
    g = torch.from_numpy(upper.T)  # lower triangle filled
    for i in range(0, n, tile):
        for j in range(i + tile, n, tile):
            g[i:i + tile, j:j + tile].copy_(g[j:j + tile, i:i + tile].T)
        blk = g[i:i + tile, i:i + tile]
        blk.copy_(blk.tril() + blk.tril(-1).T)
    return g


def _scaled(d, scale, zero_zero, zero_positive, formula):
    """``formula(d, scale)`` where the local scale is positive; where it is 0 (an item with at
    least k_ls exact duplicates) the limit of the definition: ``zero_zero`` for d = 0 (a
    duplicate), ``zero_positive`` for d > 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = formula(d, scale)
    degenerate = scale == 0
    if degenerate.any():
        out = np.where(degenerate, np.where(d == 0, zero_zero, zero_positive), out)
    return out


def local_scaling(x, k, *, metric="euclidean", k_ls=5, memory=256 * 2**20, duplicates=None,
                  knn=None):
    """LS(d) = 1 − exp(−d²/(σ_x σ_y)); with σ_x σ_y = 0: 0 for d = 0, 1 for d > 0 (the limits).

    Ranked by the exponent z = d²/(σ_x σ_y) (z = +∞ where σ_x σ_y = 0 < d), which orders pairs
    as LS does but without LS's rounding to exactly 1 for z ≳ 37 (ties that would go by index)."""
    sigma = _neighbours(x, k_ls, metric, memory, duplicates, knn).distances[:, -1]
    return _reduced_topk(x, k, metric, lambda d, rows: _scaled(
        d, sigma[rows, None] * sigma[None, :], 0.0, np.inf, lambda d, s: d * d / s),
        memory, duplicates, to_score=lambda z: -np.expm1(-z))


def nicdm(x, k, *, metric="euclidean", k_ls=5, memory=256 * 2**20, duplicates=None, knn=None):
    """NICDM d/√(r_x r_y); with r_x r_y = 0: 0 for d = 0, +∞ for d > 0 (the limits)."""
    r = _neighbours(x, k_ls, metric, memory, duplicates, knn).distances.mean(1)
    return _reduced_topk(x, k, metric, lambda d, rows: _scaled(
        d, r[rows, None] * r[None, :], 0.0, np.inf, lambda d, s: d / np.sqrt(s)), memory,
        duplicates)


def dis_sim_local(x, k, *, k_ls=5, memory=256 * 2**20, duplicates=None, knn=None):
    xf = np.asarray(x, dtype=np.float64)
    # as scikit-hubness: the k_ls nearest *including the item itself* (self + k_ls - 1 others)
    nn = _neighbours(x, k_ls - 1, "sqeuclidean", memory, duplicates,
                     knn).indices if k_ls > 1 else None
    centroids = xf if nn is None else (xf + xf[nn].sum(axis=1)) / k_ls
    local = ((xf - centroids) ** 2).sum(1)
    return _reduced_topk(x, k, "sqeuclidean",
                         lambda d, rows: d - local[rows, None] - local[None, :], memory,
                         duplicates)


def csls(x, k, *, k_csls=K_CSLS, memory=256 * 2**20, duplicates=None, knn=None):
    r = 1.0 - _neighbours(x, k_csls, "cosine", memory, duplicates, knn).distances.mean(1)
    # distance 1 - cos; CSLS = 2cos - r_x - r_y, used as a distance by its negative
    return _reduced_topk(x, k, "cosine",
                         lambda d, rows: -(2.0 * (1.0 - d) - r[rows, None] - r[None, :]), memory,
                         duplicates)


def dynamic_inverted_softmax(x, k, *, querybank=None, beta=20.0, memory=256 * 2**20,
                             duplicates=None):
    """QB-Norm DIS on cosine similarities; querybank rows default to the dump (self excluded)."""
    xp, _ = prepare(x, "cosine")
    own = querybank is None
    bank = xp if own else prepare(np.asarray(querybank, dtype=xp.dtype), "cosine")[0]
    n = xp.shape[0]
    lse = np.full(n, -np.inf)  # logsumexp_b beta*s(b, g) per gallery item g
    activated = np.zeros(n, dtype=bool)
    step = max(1, memory // (8 * 3 * n))
    for start in range(0, bank.shape[0], step):
        sim = np.minimum((bank[start:start + step] @ xp.T).astype(np.float64), 1.0)
        if own:
            b = sim.shape[0]
            if duplicates is not None:  # exact copies at cosine exactly 1, as in the rescale
                zero_duplicate_pairs(sim, np.arange(start, start + b), duplicates, 1.0)
            sim[np.arange(b), np.arange(start, start + b)] = -np.inf
        lse = np.logaddexp(lse, logsumexp(beta * sim, axis=0))
        activated[np.argmax(sim, axis=1)] = True

    def rescale(dist, rows):
        sim = 1.0 - dist
        s = sim.copy()
        s[np.arange(rows.size), rows] = -np.inf
        top1 = np.argmax(s, axis=1)
        use = activated[top1]
        out = -sim
        out[use] = -(beta * sim[use] - lse[None, :])
        return out
    return _reduced_topk(x, k, "cosine", rescale, memory, duplicates)


def min_items(method: str, k_ls: int = 5) -> int:
    """Fewest items a reduction is defined for: its fixed neighbourhood plus the item itself
    (DisSimLocal's k_ls counts the item itself)."""
    return {"ls": k_ls + 1, "nicdm": k_ls + 1, "dsl": k_ls, "csls": K_CSLS + 1}.get(method, 2)


def candidates_used(method: str, k: int, n: int, candidates: int | None = None) -> int | None:
    """Length of the candidate lists ``mp`` / ``mp_empiric`` use on ``n`` items: the asked
    length (mp_empiric: default :data:`MP_EMPIRIC_CANDIDATES`, at least k + 1), clamped to the
    n − 1 other items (then the lists hold every other item: the all-items method, nothing
    approximated). None for mp over all items and for the other methods."""
    if method == "mp":
        return None if candidates is None else min(candidates, n - 1)
    if method == "mp_empiric":
        return min(max(candidates or MP_EMPIRIC_CANDIDATES, k + 1), n - 1)
    return None


def check_metric(method: str, metric: str) -> None:
    """Refuse a metric a reduction is not defined on (a :class:`~geomkit.errors.UsageError`)."""
    from geomkit.errors import UsageError

    if method == "dsl" and metric not in ("euclidean", "sqeuclidean"):
        raise UsageError(f"dsl (DisSimLocal) is defined on squared euclidean distances, not "
                         f"{metric}: use the euclidean or sqeuclidean metric (both give the "
                         f"same result).")
    if method in ("csls", "dis") and metric != "cosine":
        raise UsageError(f"{method} is defined on cosine similarities, not {metric}: use the "
                         f"cosine metric.")
    if method in ("ls", "nicdm") and metric == "dot":
        raise UsageError(f"{method} scales non-negative distances; the dot metric's distance "
                         f"−x·y is negative for most pairs: use the cosine, euclidean or "
                         f"sqeuclidean metric.")


AUTO = "auto"


def reduced_knn(x, k, method, *, metric="cosine", memory=256 * 2**20, duplicates=AUTO,
                knn=None, **options) -> KnnResult:
    """k-NN under a hubness reduction; ``method`` in :data:`REDUCTIONS`.

    A method whose local statistics use a fixed number of neighbours needs more items than
    that (:func:`min_items`); fewer is a :class:`~geomkit.errors.UsageError`, never a silently
    smaller neighbourhood. Candidate lists longer than the data are clamped
    (:func:`candidates_used`). ``duplicates``: the lowest equal row of every row, None for
    all-distinct rows, or "auto" (found here); exact copies are at distance exactly 0.
    ``knn(size, metric) -> KnnResult``: the exact kNN graphs the method reads (a shared graph:
    :meth:`geomkit.Space.knn`); by default each is searched here."""
    from geomkit.errors import UsageError

    n = x.shape[0]
    need = min_items(method, options.get("k_ls", 5))
    if n < need:
        raise UsageError(f"the {method} reduction needs at least {need} items (its local scale "
                         f"uses the {need - 1} nearest neighbours of each); this view has {n}.")
    check_metric(method, metric)
    if isinstance(duplicates, str):
        duplicates = duplicate_representatives(x)
    if method == "none":
        if knn is not None:
            return knn(k, metric)
        return exact_knn(x, k, metric=metric, memory=memory, device=options.get("device"),
                         duplicates=duplicates)
    candidates = candidates_used(method, k, n, options.get("candidates"))
    common = dict(memory=memory, duplicates=duplicates)
    with_knn = dict(common, knn=knn)
    if method == "mp":
        idx, dist = mutual_proximity(x, k, metric=metric, candidates=candidates, **with_knn)
    elif method == "mp_empiric":
        idx, dist = mutual_proximity_empiric(x, k, metric=metric, candidates=candidates,
                                             **with_knn)
    elif method == "ls":
        idx, dist = local_scaling(x, k, metric=metric, k_ls=options.get("k_ls", 5), **with_knn)
    elif method == "nicdm":
        idx, dist = nicdm(x, k, metric=metric, k_ls=options.get("k_ls", 5), **with_knn)
    elif method == "dsl":
        idx, dist = dis_sim_local(x, k, k_ls=options.get("k_ls", 5), **with_knn)
    elif method == "csls":
        idx, dist = csls(x, k, **with_knn)
    elif method == "dis":
        idx, dist = dynamic_inverted_softmax(x, k, querybank=options.get("querybank"), **common)
    else:
        raise ValueError(f"unknown reduction {method!r}")
    return KnnResult(idx, dist, metric if method not in ("dsl",) else "sqeuclidean")


__all__ = ["REDUCTIONS", "reduced_knn", "distance_block"]
