"""Intrinsic dimension: TwoNN, MLE, GRIDE, lPCA and per-item local MLE (METHODS.md §9).

All neighbour-based estimators read ONE exact euclidean kNN graph (:meth:`geomkit.Space.knn`,
self excluded), searched once for the largest neighbour order any of them needs; the distances
of the chosen neighbours are then recomputed exactly in float64 as ‖x_i − x_j‖ (the Gram
product the search ranks with loses digits when r₁ ≪ ‖x‖, which ratios of distances amplify).
lPCA reads the streaming moments (:meth:`geomkit.Space.spectrum`, covariance with ddof = 1).

With r_j(i) the distance from item i to its j-th nearest other item:

- TwoNN (Facco+ 2017): μ_i = r₂/r₁. ``linear``: least-squares slope through the origin of
  −log(1 − F_emp) against log μ over the smallest ⌊N(1 − discard)⌋ ratios, F_emp = i/N with N
  all items; ``mle``: (k − 1)/(Σ_{i≤k} log μ_(i) + (N − k)·log μ_(k)), k = ⌊N(1 − discard)⌋
  (censored MLE; discard 0 gives (N − 1)/Σ log μ). Both as scikit-dimension 0.5.
- MLE (Levina & Bickel 2005), per item with k neighbours: m_i = (k − 1)/Σ_{j≤k} log(r_k/r_j)
  (the j = k term is 0; ``unbiased``: k − 2); this is the per-item LID. Global: ``mackay``
  (MacKay & Ghahramani: 1/mean(1/m_i), scikit-dimension's default), ``mean`` (Levina–Bickel's
  average) or ``median``.
- GRIDE (Denti+ 2022): μ_i = r_{n2}/r_{n1}; the root in d of the likelihood score
  (N − 1)/d + (n2 − n1 − 1)·Σ log μ/(1 − μ^{−d}) − (n2 − 1)·Σ log μ (one root: the likelihood is
  concave), ratios ≤ 1 dropped and ratios ≥ q50 + 20·(q95 − q50) cut as DADApy / scikit-dimension
  do; standard error 1/√(observed information). ``scales``: n1 = 1, 2, 4, … with n2 = 2·n1 up to
  the largest order asked, ID against scale (noise dimensions show at small n1 only).
- lPCA: the number of principal components that explain a ``variance`` fraction of the total
  (#(cumulative share < variance) + 1, scikit-dimension's ``ratio``); Fukunaga–Olsen (#λ >
  0.05·λ₁) and the participation ratio (Σλ)²/Σλ² come with it. A linear span, not a manifold
  dimension: a circle in a plane has lPCA 2, TwoNN 1.
- Local TwoNN (``local_twonn``): the global TwoNN refitted on each item's ``n`` nearest other
  items (scikit-dimension's ``fit_pw``), the items' own 2-NN searched inside that set.

Duplicates: an exact copy has r₁ = 0, so μ = r₂/0 and log(r_k/0) are infinite (scikit-dimension
0.5's TwoNN drops such items with a warning, its MLE returns 0 and GRIDE drops them). Here every
neighbour-based estimator runs on the DISTINCT rows (one per group of exact copies): the value on
a dump with copies equals the value on the same dump without them. ``n_duplicates`` = rows equal
to an earlier row; each copy gets its representative's LID. lPCA counts every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geomkit.errors import InputError, UsageError
from geomkit.report.result import Result
from geomkit.space import as_space

ESTIMATORS = ("twonn", "mle", "gride", "lpca")
MLE_COMBS = ("mackay", "mean", "median")
TWONN_FITS = ("linear", "mle")


# ---------------------------------------------------------------------------- estimators
def twonn(mu: np.ndarray, *, discard_fraction: float = 0.1, fit: str = "linear") -> float:
    """TwoNN from the ratios μ = r₂/r₁ (all finite, ≥ 1), as scikit-dimension 0.5."""
    mu = np.asarray(mu, dtype=np.float64)
    n = mu.size
    n_keep = int(n * (1 - discard_fraction))
    if n_keep < 2:
        raise UsageError(f"TwoNN keeps {n_keep} of {n} ratios with discard fraction "
                         f"{discard_fraction:g}; at least 2 are needed.")
    log_mu = np.log(np.sort(mu)[:n_keep])
    if fit == "mle":
        denom = log_mu.sum() + (n - n_keep) * log_mu[-1]
        return float((n_keep - 1) / denom) if denom > 0 else float("inf")
    if fit != "linear":
        raise ValueError(f"fit must be one of {TWONN_FITS}")
    if n_keep == n:
        raise UsageError("TwoNN's linear fit needs a discard fraction above 0 (the largest "
                         "ratio has F = 1 and −log(1 − F) = ∞); use the mle fit for 0.")
    y = -np.log1p(-np.arange(1, n_keep + 1) / n)
    sxx = float(log_mu @ log_mu)
    return float(log_mu @ y / sxx) if sxx > 0 else float("inf")


def mle_pointwise(dist: np.ndarray, k: int, *, unbiased: bool = False) -> np.ndarray:
    """Levina–Bickel m_i from the first k neighbour distances of each row (ascending, > 0)."""
    r = np.asarray(dist[:, :k], dtype=np.float64)
    s = np.log(r[:, -1:] / r).sum(axis=1)
    with np.errstate(divide="ignore"):
        return ((k - 2) if unbiased else (k - 1)) / s


def combine_mle(m: np.ndarray, comb: str = "mackay") -> float:
    if comb == "mackay":
        return float(1.0 / np.mean(1.0 / m))
    if comb == "mean":
        return float(np.mean(m))
    if comb == "median":
        return float(np.median(m))
    raise ValueError(f"comb must be one of {MLE_COMBS}")


def gride(dist: np.ndarray, n1: int, n2: int) -> tuple[float, float, int]:
    """GRIDE ID at orders (n1, n2) from neighbour distances (column j = (j+1)-th neighbour):
    ``(id, standard error, ratios used)``."""
    from scipy.optimize import brentq

    log_mu = np.log(dist[:, n2 - 1] / dist[:, n1 - 1])
    log_mu = log_mu[np.isfinite(log_mu) & (log_mu > 0)]  # ties (μ = 1) carry no information
    if log_mu.size:
        mu = np.exp(log_mu)
        q95, q50 = np.percentile(mu, [95, 50])
        log_mu = log_mu[mu < 20 * (q95 - q50) + q50]
    n = log_mu.size
    if n < 2:
        raise InputError(f"GRIDE (n1 = {n1}, n2 = {n2}) has {n} usable distance ratios; at "
                         f"least 2 are needed (the neighbour distances are tied).")
    total = float(log_mu.sum())
    extra = n2 - n1 - 1

    def score(d):
        return (n - 1) / d + extra * float(np.sum(log_mu / -np.expm1(-d * log_mu))) \
            - (n2 - 1) * total

    hi = 1.0
    while score(hi) > 0:
        hi *= 2
    d = brentq(score, 1e-8, hi, xtol=1e-12, rtol=1e-12)
    info = n / d**2 + extra * float(np.sum((log_mu / (2 * np.sinh(d * log_mu / 2))) ** 2))
    return float(d), float(1 / np.sqrt(info)), int(n)


def gride_scales(dist: np.ndarray, largest: int) -> list[dict]:
    """GRIDE at n1 = 1, 2, 4, … with n2 = 2·n1 ≤ ``largest`` (scikit-dimension's multiscale):
    ``[{"n1", "n2", "id", "error", "radius"}]``, radius = mean distance to the n2-th neighbour."""
    out = []
    n1 = 1
    while 2 * n1 <= largest:
        value, err, _ = gride(dist, n1, 2 * n1)
        out.append({"n1": n1, "n2": 2 * n1, "id": value, "error": err,
                    "radius": float(dist[:, 2 * n1 - 1].mean())})
        n1 *= 2
    return out


def lpca(eigenvalues: np.ndarray, *, variance: float = 0.95, alpha_fo: float = 0.05) -> dict:
    """lPCA rules on the covariance eigenvalues (descending): ``ratio`` (components explaining
    ``variance``), ``fo`` (Fukunaga–Olsen, λ > alpha·λ₁), ``participation_ratio``."""
    ev = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    total = ev.sum()
    if not total > 0:
        return {"ratio": None, "fo": None, "participation_ratio": None}
    share = np.cumsum(ev) / total
    return {"ratio": int((share < variance).sum() + 1),
            "fo": int((ev > alpha_fo * ev[0]).sum()),
            "participation_ratio": float(total**2 / (ev**2).sum())}


def local_twonn(x: np.ndarray, neighbours: np.ndarray, *, discard_fraction: float = 0.1,
                fit: str = "linear") -> np.ndarray:
    """TwoNN refitted on each row's neighbour set ``x[neighbours[i]]`` (item i itself not in
    it): the 2-NN distances searched inside the set, exact float64 differences."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(neighbours.shape[0])
    for i, nb in enumerate(neighbours):
        pts = x[nb]
        sq = np.einsum("ij,ij->i", pts, pts)
        d2 = np.clip(sq[:, None] + sq[None, :] - 2 * pts @ pts.T, 0, None)
        np.fill_diagonal(d2, np.inf)
        two = np.sqrt(np.partition(d2, 1, axis=1)[:, :2])
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = two[:, 1] / two[:, 0]
        out[i] = twonn(mu[np.isfinite(mu)], discard_fraction=discard_fraction, fit=fit)
    return out


def exact_distances(x: np.ndarray, indices: np.ndarray, *, chunk_bytes: int = 64 * 2**20
                    ) -> tuple[np.ndarray, np.ndarray]:
    """‖x_i − x_j‖ in float64 for every listed neighbour j of row i, each row re-sorted by
    (distance, index): ``(indices, distances)``."""
    n, k = indices.shape
    d = x.shape[1]
    dist = np.empty((n, k))
    step = max(1, chunk_bytes // (8 * k * d))
    for a in range(0, n, step):
        b = min(n, a + step)
        diff = x[indices[a:b]].astype(np.float64) - x[a:b, None, :].astype(np.float64)
        dist[a:b] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.lexsort((indices, dist), axis=1)
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(dist, order, axis=1)


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True)
class IntdimResult(Result):
    n: int
    d: int
    k: int
    twonn: float | None
    mle: float | None
    gride: float | None
    lpca: int | None
    n_duplicates: int
    lid: dict
    params: dict
    details: dict
    n_distinct: int = 0
    gride_scales: list | None = None
    hubness: dict | None = None
    n_dropped: int = 0
    n_dropped_zero: int = 0
    lid_values: np.ndarray = field(repr=False, default=None)  # per analysed row
    local_twonn_values: np.ndarray = field(repr=False, default=None)
    kocc: np.ndarray = field(repr=False, default=None)
    representatives: np.ndarray = field(repr=False, default=None)  # None: no copies
    rows: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    label: str = ""
    command: str = "intdim"

    @property
    def title(self):
        return f"geomkit intdim (k={self.k}) {self.label}".strip()

    def to_dict(self):
        out = {"n": self.n, "d": self.d, "k": self.k, "twonn": self.twonn, "mle": self.mle,
               "gride": self.gride, "lpca": self.lpca, "n_duplicates": self.n_duplicates,
               "lid": self.lid, "n_dropped": self.n_dropped,
               "n_dropped_zero": self.n_dropped_zero}
        if self.gride_scales is not None:
            out["gride_scales"] = self.gride_scales
        if self.local_twonn_values is not None:
            out["twonn_local"] = _summary(self.local_twonn_values[self.distinct_positions()])
        if self.hubness is not None:
            out["hubness"] = self.hubness
        return out

    def distinct_positions(self) -> np.ndarray:
        """Positions of the distinct rows (the first of each group of copies)."""
        return np.arange(self.n) if self.representatives is None else \
            np.flatnonzero(self.representatives == np.arange(self.n))

    def per_item(self):
        import pandas as pd

        frame = pd.DataFrame({"row": self.rows})
        if self.ids is not None:
            frame["id"] = self.ids
        frame["lid"] = self.lid_values
        if self.local_twonn_values is not None:
            frame["twonn_local"] = self.local_twonn_values
        if self.kocc is not None:
            frame["k_occurrence"] = self.kocc
        return frame


def _finite(value):
    return float(value) if value is not None and np.isfinite(value) else None


def _summary(values: np.ndarray) -> dict:
    """mean, median and 95th percentile of the finite values (None where there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": None, "median": None, "p95": None}
    return {"mean": float(v.mean()), "median": float(np.median(v)),
            "p95": float(np.percentile(v, 95))}


# ---------------------------------------------------------------------------- compute
def compute_intdim(space, *, k: int = 20, estimators=ESTIMATORS, discard_fraction: float = 0.1,
                   twonn_fit: str = "linear", mle_comb: str = "mackay", unbiased: bool = False,
                   gride_n1: int = 1, gride_n2: int | None = None, scales: int | None = None,
                   variance: float = 0.95, local_twonn_n: int | None = None,
                   with_hubness: bool = False, device: str | None = None,
                   max_bytes: int = 8 * 2**30) -> IntdimResult:
    """Global intrinsic dimension of ``space`` by ``estimators`` (of twonn, mle, gride, lpca;
    the others are None) and the per-item LID (local MLE with ``k`` neighbours).

    ``scales``: GRIDE at n1 = 1, 2, 4, … (n2 = 2·n1 ≤ scales); ``local_twonn_n``: per-item TwoNN
    on each item's n nearest items; ``with_hubness``: k-occurrence of the same k-NN graph and its
    Spearman / Pearson correlation with LID (are hubs low- or high-dimensional places?)."""
    from scipy import stats

    from geomkit.engine.duplicates import count_representatives
    from geomkit.engine.knn import check_device

    space = as_space(space)
    estimators = tuple(dict.fromkeys(estimators))
    bad = [e for e in estimators if e not in ESTIMATORS]
    if bad or not estimators:
        raise UsageError(f"estimators: choose from {', '.join(ESTIMATORS)}.")
    if twonn_fit not in TWONN_FITS:
        raise UsageError(f"twonn fit: choose {' or '.join(TWONN_FITS)}.")
    if mle_comb not in MLE_COMBS:
        raise UsageError(f"mle averaging: choose from {', '.join(MLE_COMBS)}.")
    if not 0 <= discard_fraction < 1:
        raise UsageError(f"discard fraction {discard_fraction:g} must be in [0, 1).")
    if twonn_fit == "linear" and discard_fraction == 0 and "twonn" in estimators:
        raise UsageError("TwoNN's linear fit needs a discard fraction above 0 (the largest "
                         "ratio has F = 1 and −log(1 − F) = ∞); use the mle fit for 0.")
    if k < 2 + bool(unbiased):
        raise UsageError(f"k = {k}: the MLE needs k ≥ {2 + bool(unbiased)}.")
    gride_n2 = 2 * gride_n1 if gride_n2 is None else gride_n2
    if not 1 <= gride_n1 < gride_n2:
        raise UsageError(f"GRIDE needs 1 ≤ n1 < n2 (n1 = {gride_n1}, n2 = {gride_n2}).")
    if scales is not None and scales < 2:
        raise UsageError(f"scales = {scales}: the largest neighbour order must be at least 2.")
    if not 0 < variance <= 1:
        raise UsageError(f"variance {variance:g} must be in (0, 1].")
    if device:
        check_device(device)

    rows, x = space.matrix(max_bytes=max_bytes)
    n = x.shape[0]
    rep = space.duplicates()
    n_dup, _ = count_representatives(rep)
    distinct = np.arange(n) if rep is None else np.flatnonzero(rep == np.arange(n))
    m = distinct.size
    if m < 2:
        raise InputError(f"all {n} rows are copies of one row: the intrinsic dimension of a "
                         f"single point is undefined.")
    order = max(k, 2, gride_n2 if "gride" in estimators else 0, scales or 0,
                local_twonn_n or 0)
    if order > m - 1:
        what = f"{m} distinct rows" + (f" ({n_dup} of {n} rows are copies)" if n_dup else "")
        raise UsageError(f"neighbour order {order} (from -k, GRIDE's n2, --scales or "
                         f"--local-twonn) needs at least {order + 1} distinct rows; the data "
                         f"has {what}.")
    if local_twonn_n is not None and local_twonn_n < 3:
        raise UsageError(f"local TwoNN needs at least 3 neighbours, got {local_twonn_n}.")

    # one exact euclidean graph of the distinct rows, for the largest order any estimator reads
    target = space if rep is None else space.subset(rows[distinct], "distinct rows")
    graph = target.knn(order, "euclidean", device=device)
    xd = x if rep is None else x[distinct]
    idx, dist = exact_distances(xd, graph.indices)

    lid_distinct = mle_pointwise(dist, k, unbiased=unbiased)
    mu = dist[:, 1] / dist[:, 0]
    values: dict = {"twonn": None, "mle": None, "gride": None, "lpca": None}
    details: dict = {}
    if "twonn" in estimators:
        values["twonn"] = _finite(twonn(mu, discard_fraction=discard_fraction, fit=twonn_fit))
    if "mle" in estimators:
        values["mle"] = _finite(combine_mle(lid_distinct, mle_comb))
        details["mle_by_comb"] = {c: _finite(combine_mle(lid_distinct, c)) for c in MLE_COMBS}
    if "gride" in estimators:
        g, err, used = gride(dist, gride_n1, gride_n2)
        values["gride"] = _finite(g)
        details["gride_error"] = err
        details["gride_ratios_used"] = used
    scale_rows = gride_scales(dist, scales) if scales is not None else None
    if "lpca" in estimators:
        rules = lpca(space.spectrum()[0], variance=variance)
        values["lpca"] = rules["ratio"]
        details["lpca_rules"] = rules

    lid = _summary(lid_distinct)
    details["lid_infinite"] = int((~np.isfinite(lid_distinct)).sum())

    # per analysed row: copies take their representative's values
    back = np.arange(n) if rep is None else np.searchsorted(distinct, rep)
    lid_rows = lid_distinct[back]
    local = None
    if local_twonn_n is not None:
        local = local_twonn(xd, idx[:, :local_twonn_n], discard_fraction=discard_fraction,
                            fit=twonn_fit)[back]
    hub = kocc = None
    if with_hubness:
        from geomkit.analysis.hubness import hubness_measures, k_occurrence

        kocc_distinct = k_occurrence(idx[:, :k], m)
        kocc = kocc_distinct[back]
        ok = np.isfinite(lid_distinct)
        sd = kocc_distinct.std()
        hub = {"k": k, "metric": "euclidean",
               "spearman": _finite(stats.spearmanr(lid_distinct[ok], kocc_distinct[ok])[0])
               if sd > 0 else None,
               "pearson": _finite(np.corrcoef(lid_distinct[ok], kocc_distinct[ok])[0, 1])
               if sd > 0 else None,
               "k_skewness": hubness_measures(kocc_distinct, k)["k_skewness"]}
    meta = space.metadata
    params = {"k": k, "estimators": list(estimators), "discard_fraction": discard_fraction,
              "twonn_fit": twonn_fit, "mle_comb": mle_comb, "unbiased": unbiased,
              "gride_n1": gride_n1, "gride_n2": gride_n2, "scales": scales,
              "variance": variance, "local_twonn_n": local_twonn_n, "metric": "euclidean",
              "knn": "exact"}
    return IntdimResult(
        n=n, d=space.d, k=k, twonn=values["twonn"], mle=values["mle"], gride=values["gride"],
        lpca=values["lpca"], n_duplicates=n_dup, lid=lid, params=params, details=details,
        n_distinct=m, gride_scales=scale_rows, hubness=hub, n_dropped=space.n_dropped,
        n_dropped_zero=space.n_dropped_zero, lid_values=lid_rows, local_twonn_values=local,
        kocc=kocc, representatives=rep, rows=rows, ids=None if meta.ids is None else meta.ids[rows],
        texts=None if meta.texts is None else meta.texts[rows], label=space.label)
