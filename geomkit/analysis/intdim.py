"""Intrinsic dimension: TwoNN, MLE, GRIDE, lPCA and per-item local MLE (METHODS.md §9).

All neighbour-based estimators read ONE exact euclidean kNN graph (:meth:`geomkit.Space.knn`
with ``float64=True``, self excluded), searched once for the largest neighbour order any of them
needs, with float64 distances ‖x_i − x_j‖ (a Gram product loses digits when r₁ ≪ ‖x‖, which
ratios of distances amplify). On CPUs with bfloat16 products the search is the certified
bfloat16 one (:mod:`geomkit.engine.knn_certified`: exact under float64 distances, 2-3× fewer
seconds than float32 products); elsewhere the float32 engine's lists, recomputed in float64.
lPCA reads the streaming moments (:meth:`geomkit.Space.spectrum`, covariance with ddof = 1).
With ``approximate=True`` the graph comes from the faiss IVF engine instead
(:func:`geomkit.engine.ann.approximate_search`, streamed within ``--memory``, recall measured):
each query block's neighbours get the same float64 distances and are folded at once into
per-item arrays (:func:`_approximate_intdim`); no N×k graph and no N×d matrix is held.

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
    with np.errstate(divide="ignore", invalid="ignore"):
        return gride_log_ratios(np.log(dist[:, n2 - 1] / dist[:, n1 - 1]), n1, n2)


def gride_log_ratios(log_mu: np.ndarray, n1: int, n2: int) -> tuple[float, float, int]:
    """GRIDE from the log-ratios log(r_n2 / r_n1) of every item (see :func:`gride`)."""
    from scipy.optimize import brentq

    log_mu = np.asarray(log_mu, dtype=np.float64)
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
    knn: dict = field(default_factory=lambda: {"exact": True, "recall": None})
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
        out["knn"] = self.knn
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


def _neighbour_order(n, m, n_dup, k, estimators, gride_n2, scales, local_twonn_n) -> int:
    """The largest neighbour rank any estimator reads; refused when the m distinct rows (of n,
    n_dup copies) cannot serve it."""
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
    return order


def _global_estimates(estimators, mu, lid_distinct, gride_fit, discard_fraction, twonn_fit,
                      mle_comb) -> tuple[dict, dict]:
    """TwoNN from the ratios ``mu``, the MLE from the per-item LID and GRIDE from
    ``gride_fit()`` → (id, error, ratios used), each when asked: ``(values, details)`` (lPCA
    left None for :func:`_lpca_and_lid`). Shared by the exact and the approximate path."""
    values: dict = {"twonn": None, "mle": None, "gride": None, "lpca": None}
    details: dict = {}
    if "twonn" in estimators:
        values["twonn"] = _finite(twonn(mu, discard_fraction=discard_fraction, fit=twonn_fit))
    if "mle" in estimators:
        values["mle"] = _finite(combine_mle(lid_distinct, mle_comb))
        details["mle_by_comb"] = {c: _finite(combine_mle(lid_distinct, c)) for c in MLE_COMBS}
    if "gride" in estimators:
        g, err, used = gride_fit()
        values["gride"] = _finite(g)
        details["gride_error"] = err
        details["gride_ratios_used"] = used
    return values, details


def _lpca_and_lid(space, estimators, variance, values, details, lid_distinct) -> dict:
    """lPCA from the streaming moments (into ``values``/``details``) and the LID summary."""
    if "lpca" in estimators:
        rules = lpca(space.spectrum()[0], variance=variance)
        values["lpca"] = rules["ratio"]
        details["lpca_rules"] = rules
    details["lid_infinite"] = int((~np.isfinite(lid_distinct)).sum())
    return _summary(lid_distinct)


def _lid_vs_hubness(lid: np.ndarray, kocc: np.ndarray, k: int) -> dict:
    """LID against k-occurrence over the distinct items: Spearman, Pearson (None when every
    k-occurrence is equal), and the k-skewness."""
    from scipy import stats

    from geomkit.analysis.hubness import hubness_measures

    ok = np.isfinite(lid)
    sd = kocc.std()
    return {"k": k, "metric": "euclidean",
            "spearman": _finite(stats.spearmanr(lid[ok], kocc[ok])[0]) if sd > 0 else None,
            "pearson": _finite(np.corrcoef(lid[ok], kocc[ok])[0, 1]) if sd > 0 else None,
            "k_skewness": hubness_measures(kocc, k)["k_skewness"]}


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
                   max_bytes: int = 8 * 2**30, approximate: bool = False,
                   nprobe: int | None = None,
                   target_recall: float | None = None) -> IntdimResult:
    """Global intrinsic dimension of ``space`` by ``estimators`` (of twonn, mle, gride, lpca;
    the others are None) and the per-item LID (local MLE with ``k`` neighbours).

    ``scales``: GRIDE at n1 = 1, 2, 4, … (n2 = 2·n1 ≤ scales); ``local_twonn_n``: per-item TwoNN
    on each item's n nearest items; ``with_hubness``: k-occurrence of the same k-NN graph and its
    Spearman / Pearson correlation with LID (are hubs low- or high-dimensional places?).

    ``approximate``: the neighbours come from the faiss IVF index of
    :func:`geomkit.engine.ann.approximate_search` (``nprobe`` lists searched per query, passed
    through unchanged), streamed from the source within ``space.memory``; each query block is
    folded into per-item arrays (:func:`_approximate_intdim`). ``knn`` in the result: the index
    and its measured recall."""
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
    if nprobe is not None and not approximate:
        raise UsageError("nprobe acts on approximate neighbours only; add --approximate.")
    if target_recall is not None and not approximate:
        raise UsageError("{target_recall} acts on approximate neighbours only; add --approximate.")
    if device:
        if approximate:
            raise UsageError(f"device {device} acts on the exact kNN products; the approximate "
                             f"search runs on the CPU (faiss): drop --device or use --exact.")
        check_device(device)
    if local_twonn_n is not None and local_twonn_n < 3:
        raise UsageError(f"local TwoNN needs at least 3 neighbours, got {local_twonn_n}.")
    if approximate:  # streamed from the source within the memory budget (engine/ann.py)
        return _approximate_intdim(
            space, k=k, estimators=estimators, discard_fraction=discard_fraction,
            twonn_fit=twonn_fit, mle_comb=mle_comb, unbiased=unbiased, gride_n1=gride_n1,
            gride_n2=gride_n2, scales=scales, variance=variance, local_twonn_n=local_twonn_n,
            with_hubness=with_hubness, nprobe=nprobe, target_recall=target_recall)

    rows, x = space.matrix(max_bytes=max_bytes)
    n = x.shape[0]
    rep = space.duplicates()
    n_dup, _ = count_representatives(rep)
    distinct = np.arange(n) if rep is None else np.flatnonzero(rep == np.arange(n))
    m = distinct.size
    order = _neighbour_order(n, m, n_dup, k, estimators, gride_n2, scales, local_twonn_n)

    # one exact euclidean graph of the distinct rows, for the largest order any estimator reads
    target = space if rep is None else space.subset(rows[distinct], "distinct rows")
    graph = target.knn(order, "euclidean", device=device, float64=True)
    xd = x if rep is None else x[distinct]
    idx, dist = graph.indices, graph.distances

    lid_distinct = mle_pointwise(dist, k, unbiased=unbiased)
    values, details = _global_estimates(
        estimators, dist[:, 1] / dist[:, 0], lid_distinct,
        lambda: gride(dist, gride_n1, gride_n2), discard_fraction, twonn_fit, mle_comb)
    scale_rows = gride_scales(dist, scales) if scales is not None else None
    lid = _lpca_and_lid(space, estimators, variance, values, details, lid_distinct)

    # per analysed row: copies take their representative's values
    back = np.arange(n) if rep is None else np.searchsorted(distinct, rep)
    lid_rows = lid_distinct[back]
    local = None
    if local_twonn_n is not None:
        local = local_twonn(xd, idx[:, :local_twonn_n], discard_fraction=discard_fraction,
                            fit=twonn_fit)[back]
    hub = kocc = None
    if with_hubness:
        from geomkit.analysis.hubness import k_occurrence

        kocc_distinct = k_occurrence(idx[:, :k], m)
        kocc = kocc_distinct[back]
        hub = _lid_vs_hubness(lid_distinct, kocc_distinct, k)
    meta = space.metadata
    params = {"k": k, "estimators": list(estimators), "discard_fraction": discard_fraction,
              "twonn_fit": twonn_fit, "mle_comb": mle_comb, "unbiased": unbiased,
              "gride_n1": gride_n1, "gride_n2": gride_n2, "scales": scales,
              "variance": variance, "local_twonn_n": local_twonn_n, "metric": "euclidean",
              "knn": "exact"}
    return IntdimResult(knn={"exact": True, "recall": None, "search": graph.search},
        n=n, d=space.d, k=k, twonn=values["twonn"], mle=values["mle"], gride=values["gride"],
        lpca=values["lpca"], n_duplicates=n_dup, lid=lid, params=params, details=details,
        n_distinct=m, gride_scales=scale_rows, hubness=hub, n_dropped=space.n_dropped,
        n_dropped_zero=space.n_dropped_zero, lid_values=lid_rows, local_twonn_values=local,
        kocc=kocc, representatives=rep, rows=rows, ids=None if meta.ids is None else meta.ids[rows],
        texts=None if meta.texts is None else meta.texts[rows], label=space.label)


# ---------------------------------------------------------------------------- approximate
MIN_QUERY_ROWS = 256  # the smallest query block the approximate search plans (engine/ann.py)


def _gride_pairs(estimators, gride_n1: int, gride_n2: int, scales: int | None) -> list:
    """The (n1, n2) orders whose log-ratios are kept per item: GRIDE's and every scale's."""
    pairs = [(gride_n1, gride_n2)] if "gride" in estimators else []
    n1 = 1
    while scales is not None and 2 * n1 <= scales:
        pairs.append((n1, 2 * n1))
        n1 *= 2
    return list(dict.fromkeys(pairs))


def _read64(space, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Rows at sorted positions ``pos`` of ``space`` (original rows ``rows``), float64."""
    return np.asarray(space.read_rows(rows[pos]), dtype=np.float64)


def _block_exact_distances(space, rows, start: int, idx: np.ndarray, group: int,
                           step_bytes: int = 32 * 2**20) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours ``idx`` (positions) of the query rows start.. with their distances
    recomputed as ‖x_i − x_j‖ in float64 from the source (as
    :func:`geomkit.engine.knn_certified.float64_lists`), each row re-sorted by (distance,
    position). The neighbours' vectors are read in sorted groups of
    ``group`` positions, never all at once."""
    b, c = idx.shape
    xq = _read64(space, rows, np.arange(start, start + b))
    flat = idx.ravel()
    order = np.argsort(flat, kind="stable")
    sorted_pos = flat[order]
    uniq = np.unique(sorted_pos)
    dist = np.empty(b * c)
    step = max(1, step_bytes // (3 * 8 * max(1, xq.shape[1])))
    for s0 in range(0, uniq.size, group):
        part = uniq[s0:s0 + group]
        xc = _read64(space, rows, part)
        lo, hi = np.searchsorted(sorted_pos, [part[0], part[-1] + 1])
        sel = order[lo:hi]
        local = np.searchsorted(part, flat[sel])
        for a in range(0, sel.size, step):
            ss = sel[a:a + step]
            diff = xc[local[a:a + step]] - xq[ss // c]
            dist[ss] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    dist = dist.reshape(b, c)
    srt = np.lexsort((idx, dist), axis=1)
    return np.take_along_axis(idx, srt, axis=1), np.take_along_axis(dist, srt, axis=1)


def _check_budget(m: int, d: int, order: int, memory: int, per_row: int, nprobe) -> None:
    """Refuses, in one sentence, a neighbour order whose smallest query block (its search
    candidates, the float64 distances recomputed) does not fit the memory budget beside the
    index the plan chooses and the per-item arrays (``per_row`` bytes a distinct row)."""
    from geomkit.engine.ann import plan_index

    plan = plan_index(m, d, order, memory, nprobe=nprobe)
    per_query = d * 4 * 3 + (plan.refine * order + 1) * (8 + 4 + 8) * 2 + order * 8 * 4
    need = plan.index_bytes + MIN_QUERY_ROWS * per_query + m * per_row
    if memory is not None and need > memory:
        raise UsageError(
            f"neighbour order {order} (from -k, GRIDE's n2, --scales or --local-twonn) cannot "
            f"be served by the approximate kNN of {m} x {d} rows within the memory budget: the "
            f"index ({plan.index_bytes / 2**20:.0f} MiB), the per-item arrays "
            f"({m * per_row / 2**20:.0f} MiB) and a query block of {MIN_QUERY_ROWS} rows need "
            f"{need / 2**20:.0f} MiB; lower --scales / -k or pass --memory "
            f"{int(np.ceil(need / 2**20))}MB or more.")


def _approximate_intdim(space, *, k, estimators, discard_fraction, twonn_fit, mle_comb,
                        unbiased, gride_n1, gride_n2, scales, variance, local_twonn_n,
                        with_hubness, nprobe, target_recall=None) -> IntdimResult:
    """Every neighbour-based estimator on approximate neighbours, streamed (engine/ann.py).

    Duplicates as in the exact path: a pass of row hashes finds the exact copies
    (:func:`geomkit.engine.duplicates.stream_duplicates`); the index holds the distinct rows
    only (one per group of copies), so no neighbour is at distance 0 and the value on a dump
    with copies is the value on the same dump without them; each copy gets its
    representative's LID. The search asks for the largest neighbour order any estimator reads;
    each query block's neighbours get their distances recomputed exactly in float64 from the
    source and are folded into per-item arrays (μ = r₂/r₁ and the LID, float64; one log-ratio
    per GRIDE order; k-occurrence with ``with_hubness``; local TwoNN): 8 bytes a distinct row
    per array, no N×k list is kept. lPCA reads the streaming moments as in the exact path."""
    from geomkit.engine.ann import SpaceFeed, approximate_search
    from geomkit.engine.duplicates import stream_duplicates

    # lPCA's moments come in the same read as the row hashes
    dups = stream_duplicates(space, progress="intdim: duplicate rows",
                             products=("moments",) if "lpca" in estimators else ())
    n = dups.n
    n_dup, _ = dups.counts()
    rep = dups.dense()  # N positions (8 bytes a row), None without copies
    if rep is None:
        target, distinct = space, None
    else:
        distinct = np.flatnonzero(rep == np.arange(n))
        target = space.subset(space.rows[distinct], "distinct rows")
    m = n if distinct is None else distinct.size
    order = _neighbour_order(n, m, n_dup, k, estimators, gride_n2, scales, local_twonn_n)
    pairs = _gride_pairs(estimators, gride_n1, gride_n2, scales)
    per_row = 8 * (2 + len(pairs) + bool(with_hubness) + (local_twonn_n is not None))
    _check_budget(m, target.d, order, target.memory, per_row, nprobe)

    rows_t = target.rows
    mu = np.empty(m)
    lid_distinct = np.empty(m)
    log_ratios = {p: np.empty(m) for p in pairs}
    radius = {p: 0.0 for p in pairs}
    kocc_distinct = np.zeros(m, dtype=np.int64) if with_hubness else None
    local_distinct = np.empty(m) if local_twonn_n is not None else None
    group = 8192

    def fold(start, idx, _dist):
        idx = np.asarray(idx, dtype=np.int64)
        if (idx < 0).any():
            raise InputError(f"the approximate search of {target.label} returned fewer than "
                             f"{order} neighbours for some rows.")
        b = idx.shape[0]
        idx, dist = _block_exact_distances(target, rows_t, start, idx, group)
        sl = slice(start, start + b)
        with np.errstate(divide="ignore", invalid="ignore"):
            mu[sl] = dist[:, 1] / dist[:, 0]
            lid_distinct[sl] = mle_pointwise(dist, k, unbiased=unbiased)
            for n1, n2 in pairs:
                log_ratios[(n1, n2)][sl] = np.log(dist[:, n2 - 1] / dist[:, n1 - 1])
                radius[(n1, n2)] += float(dist[:, n2 - 1].sum())
        if kocc_distinct is not None:
            kocc_distinct[:] += np.bincount(idx[:, :k].ravel(), minlength=m)
        if local_distinct is not None:
            nb = idx[:, :local_twonn_n]
            sub = max(1, (32 * 2**20) // (8 * local_twonn_n * target.d))
            for a in range(0, b, sub):
                part = nb[a:a + sub]
                uniq, inverse = np.unique(part, return_inverse=True)
                xs = _read64(target, rows_t, uniq)
                local_distinct[start + a:start + a + part.shape[0]] = local_twonn(
                    xs, inverse.reshape(part.shape), discard_fraction=discard_fraction,
                    fit=twonn_fit)

    feed = SpaceFeed(target, "euclidean")
    res = approximate_search(feed, order, metric="euclidean", memory=target.memory,
                             nprobe=nprobe, target_recall=target_recall, seed=space.seed,
                             on_block=fold,
                             label=space.label)

    values, details = _global_estimates(
        estimators, mu, lid_distinct,
        lambda: gride_log_ratios(log_ratios[(gride_n1, gride_n2)], gride_n1, gride_n2),
        discard_fraction, twonn_fit, mle_comb)
    scale_rows = None
    if scales is not None:
        scale_rows = []
        n1 = 1
        while 2 * n1 <= scales:
            value, err, _ = gride_log_ratios(log_ratios[(n1, 2 * n1)], n1, 2 * n1)
            scale_rows.append({"n1": n1, "n2": 2 * n1, "id": value, "error": err,
                               "radius": radius[(n1, 2 * n1)] / m})
            n1 *= 2
    lid = _lpca_and_lid(space, estimators, variance, values, details, lid_distinct)

    back = np.arange(n) if rep is None else np.searchsorted(distinct, rep)
    lid_rows = lid_distinct[back]
    local = None if local_distinct is None else local_distinct[back]
    hub = kocc = None
    if with_hubness:
        kocc = kocc_distinct[back]
        hub = _lid_vs_hubness(lid_distinct, kocc_distinct, k)
    rows = space.rows
    meta = space.metadata
    params = {"k": k, "estimators": list(estimators), "discard_fraction": discard_fraction,
              "twonn_fit": twonn_fit, "mle_comb": mle_comb, "unbiased": unbiased,
              "gride_n1": gride_n1, "gride_n2": gride_n2, "scales": scales,
              "variance": variance, "local_twonn_n": local_twonn_n, "metric": "euclidean",
              "knn": "approximate"}
    knn = {**res.info, "k_searched": order}
    return IntdimResult(
        knn=knn, n=n, d=space.d, k=k, twonn=values["twonn"], mle=values["mle"],
        gride=values["gride"], lpca=values["lpca"], n_duplicates=n_dup, lid=lid, params=params,
        details=details, n_distinct=m, gride_scales=scale_rows, hubness=hub,
        n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero, lid_values=lid_rows,
        local_twonn_values=local, kocc=kocc, representatives=rep, rows=rows,
        ids=None if meta.ids is None else meta.ids[rows],
        texts=None if meta.texts is None else meta.texts[rows], label=space.label)
