"""Rank axes and rankability (METHODS.md §5; Sonthalia et al. 2025, "On the rankability of visual
embeddings"): does one direction v order the items by a numeric attribute, and from how few labels?

Rows are L2-normalised first (as the reference); an item's score is v·x̂. Ways to get v (``METHODS``):

- ``regression`` — ridge regression of the attribute on x̂ (with intercept), α over 10⁻³…10³
  chosen by generalised cross-validation (the closed-form inner CV, from one eigendecomposition
  of the d×d Gram, so 10⁵ rows cost one product); v = w / ‖w‖. The reference trains
  Linear(d, 1) with MSE: the same direction up to the penalty.
- ``pairwise`` — logistic loss on ordered pairs (y_i > y_j): v ∝ w minimising
  Σ log(1 + exp(−w·(x̂_i − x̂_j))) + ‖w‖²/(2C), on all pairs up to 20 000, else 20 000 seeded
  random pairs.
- ``extremes`` — the two most extreme labelled items (lowest and highest attribute; the first
  row wins ties): v = (x̂_hi − x̂_lo)/‖x̂_hi − x̂_lo‖; or the centroids of given low/high rows.
- ``poles`` — SemAxis: centroid of the items at or above the (1 − q) quantile of the attribute
  minus the centroid of those at or below the q quantile (q = 0.1), normalised.
- ``pca`` — the first principal component of the labelled x̂ ("moral direction"), its sign fixed
  so that the projection correlates positively with the attribute.

Rankability (``compute_rankability``): K-fold cross-validation (seeded shuffle) — fit on K − 1
folds, project the held-out fold; Spearman ρ (the headline), Kendall τ-b and Pearson r from
scipy.stats per fold, pairwise-order accuracy (share of held-out pairs with different attributes
ordered right, ties in the score count ½; all pairs up to 2 000 items per fold, else 10⁶ seeded
pairs), each the mean over folds; the 95% interval of ρ is mean ± t₀.₉₇₅,K−1 · sd/√K over the folds
(the fold spread). Null: the same statistic (mean over the same folds of the fold's Spearman ρ)
for ``null_directions`` seeded random unit directions, its mean and 95th percentile, and the
one-sided empirical p-value (1 + #{ρ_null ≥ ρ}) / (1 + M): calibrated (uniform) when the
attribute is unrelated to the space, since an axis fitted on other folds is then as good as a
random direction on the held-out one. Upper bound: k-NN regression (k = 10, cosine) under the
same folds (on a seeded sample of 10 000 labelled items beyond that). Shots: for each n, ``shot_repeats`` seeded draws of n labelled items, fit on them,
Spearman on all other labelled items (mean ± sd), and the two-extremes point (the global lowest and
highest item, ρ on the rest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from geomkit.errors import InputError, UsageError
from geomkit.report.result import Result
from geomkit.space import as_space

METHODS = ("regression", "pairwise", "extremes", "poles", "pca")
RIDGE_ALPHAS = np.logspace(-3, 3, 13)
POLE_QUANTILE = 0.1
MAX_PAIRS = 20_000
PAIR_SAMPLE = 1_000_000
EXACT_PAIRS_UP_TO = 2_000
NULL_DIRECTIONS = 1000
NULL_BLOCK = 100
UPPER_BOUND_K = 10
UPPER_BOUND_MAX = 10_000  # the k-NN upper bound on a seeded subsample beyond this
DEFAULT_SHOTS = (2, 5, 10, 20, 50, 100)
SHOT_REPEATS = 10


# ----------------------------------------------------------------------------- attribute
@dataclass(frozen=True)
class Attribute:
    """A numeric attribute aligned with the dump's rows (NaN where missing)."""

    name: str
    values: np.ndarray  # float64, one per original row of the dump

    def labelled(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(rows with a finite value, their values, number of rows without one)``."""
        v = self.values[rows]
        ok = np.isfinite(v)
        return rows[ok], v[ok], int((~ok).sum())


def attribute_from_values(values, name: str, where: str) -> Attribute:
    """Check a column of attribute values (numeric, not constant); ``where`` names it."""
    values = np.asarray(values)
    if values.dtype.kind not in "iufb":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{where}: the attribute is not numeric (dtype {values.dtype}); a "
                             f"rank axis needs numbers (years, counts, scores).") from None
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        raise InputError(f"{where}: the attribute has {finite.size} finite values; at least 2 "
                         f"are needed.")
    if finite.min() == finite.max():
        raise InputError(f"{where}: the attribute is constant ({finite[0]:g}); nothing to rank.")
    return Attribute(name, values)


def read_attribute(space, spec: str) -> Attribute:
    """``spec``: a dataset resolved next to the embeddings (``year``, or absolute ``/meta/year``),
    or ``FILE.csv:COLUMN`` keyed by the dump's ids (column ``id`` or the first column)."""
    import os

    space = as_space(space)
    head, _, column = spec.rpartition(":")
    if head and head.lower().endswith(".csv") and os.path.exists(head):
        return _csv_attribute(space, head, column)
    values, where = space.source.read_aligned(spec, "the attribute")
    return attribute_from_values(values, spec.rsplit("/", 1)[-1], where)


def _csv_attribute(space, path: str, column: str) -> Attribute:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0][:120]}).") from None
    if column not in frame.columns:
        raise InputError(f"{path}: no column '{column}' (columns: {', '.join(map(str, frame.columns[:10]))}).")
    ids = space.metadata.ids
    if ids is None:
        raise InputError(f"{space.label}: has no ids; a CSV attribute is matched to rows by id.")
    key = "id" if "id" in frame.columns else frame.columns[0]
    if key == column:
        raise InputError(f"{path}: needs an id column besides '{column}'.")
    lookup = dict(zip(frame[key].astype(str), frame[column]))
    values = np.array([lookup.get(str(i), np.nan) for i in ids], dtype=object)
    numeric = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    given = pd.Series(values).notna().to_numpy()
    if (given & ~np.isfinite(numeric)).sum() > 0.5 * given.sum():
        raise InputError(f"{path}:{column}: the attribute is not numeric.")
    return attribute_from_values(numeric, column, f"{path}:{column}")


# ----------------------------------------------------------------------------- fitting
def _unit(v: np.ndarray, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0:
        raise InputError(f"the {what} axis is the zero vector (the items used are identical).")
    return v / norm


def fit_axis(xu: np.ndarray, y: np.ndarray, method: str = "regression", *, seed: int = 0,
             low: np.ndarray | None = None, high: np.ndarray | None = None,
             quantile: float = POLE_QUANTILE) -> tuple[np.ndarray, dict]:
    """A unit axis from unit rows ``xu`` (n, d) and attribute values ``y``: ``(v, parameters)``.
    ``low``/``high``: positions (into xu) of given pole items for ``extremes``/``poles``."""
    xu = np.asarray(xu)  # float32 rows stay float32: products in their dtype, sums in float64
    y = np.asarray(y, dtype=np.float64)
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}.")
    if method == "regression":
        return ridge_axis(xu, y)
    if method == "pairwise":
        from sklearn.linear_model import LogisticRegression

        i, j = _ordered_pairs(y, MAX_PAIRS, seed)
        if i.size == 0:
            raise InputError("the pairwise axis needs items with different attribute values.")
        diff = np.asarray(xu[i], dtype=np.float64) - xu[j]
        # both orientations: a symmetric problem, no intercept
        model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=1000)
        model.fit(np.vstack([diff, -diff]), np.r_[np.ones(i.size), np.zeros(i.size)])
        return _unit(model.coef_[0], method), {"pairs": int(i.size), "C": 1.0}
    if method == "pca":
        lam, vec, _, _ = ridge_spectrum(xu, y)
        v = vec[:, int(np.argmax(lam))]
        if np.corrcoef(xu @ v.astype(xu.dtype), y)[0, 1] < 0:
            v = -v
        return _unit(v, method), {}
    if low is not None and high is not None:
        v = xu[high].mean(0, dtype=np.float64) - xu[low].mean(0, dtype=np.float64)
        return _unit(v, method), {"low": int(len(low)), "high": int(len(high))}
    if method == "extremes":
        return _unit(np.asarray(xu[int(np.argmax(y))], dtype=np.float64)
                     - xu[int(np.argmin(y))], method), {}
    lo_cut, hi_cut = np.quantile(y, quantile), np.quantile(y, 1 - quantile)
    return (_unit(xu[y >= hi_cut].mean(0, dtype=np.float64)
                  - xu[y <= lo_cut].mean(0, dtype=np.float64), method), {"quantile": quantile})


def ridge_spectrum(xu: np.ndarray, y: np.ndarray):
    """Eigenvalues λ and eigenvectors V of the centred Gram XcᵀXc, and z = Vᵀ Xcᵀ(y − ȳ): from
    a thin SVD of Xc when n < d, else from XcᵀXc accumulated in float64 over row blocks (the
    products in the rows' dtype; no copy of the rows)."""
    n, d = xu.shape
    mean = xu.mean(0, dtype=np.float64)
    yc = y - y.mean()
    if n < d:
        u, sv, vt = np.linalg.svd(np.asarray(xu, dtype=np.float64) - mean, full_matrices=False)
        return sv ** 2, vt.T, sv * (u.T @ yc), float(yc @ yc)
    gram = np.zeros((d, d))
    cross = np.zeros(d)
    centre = mean.astype(xu.dtype)
    for a in range(0, n, 8192):
        block = xu[a:a + 8192] - centre  # centred first: no XᵀX − n·μμᵀ cancellation
        gram += (block.T @ block).astype(np.float64)  # a BLAS product in the rows' dtype
        cross += block.T.astype(np.float64) @ yc[a:a + 8192]
    lam, vec = np.linalg.eigh((gram + gram.T) / 2)
    lam = np.clip(lam, 0.0, None)
    return lam, vec, vec.T @ cross, float(yc @ yc)


def ridge_axis(xu: np.ndarray, y: np.ndarray, alphas=RIDGE_ALPHAS) -> tuple[np.ndarray, dict]:
    """Ridge regression of y on the rows (with intercept), α minimising generalised
    cross-validation GCV(α) = n·RSS(α) / (n − 1 − df(α))², df = Σ λ/(λ + α) (Golub, Heath &
    Wahba 1979: the rotation-invariant form of leave-one-out CV), all from one eigendecomposition;
    the axis is w/‖w‖, w = (XcᵀXc + αI)⁻¹ Xcᵀ(y − ȳ)."""
    n = y.size
    lam, vec, z, total = ridge_spectrum(xu, y)
    best = None
    for alpha in alphas:
        shrink = 1.0 / (lam + alpha)
        rss = total - float((z ** 2 * (2 * shrink - lam * shrink ** 2)).sum())
        df = float((lam * shrink).sum())
        denom = n - 1 - df
        gcv = n * max(rss, 0.0) / denom ** 2 if denom > 0 else np.inf
        if best is None or gcv < best[0]:
            best = (gcv, alpha)
    alpha = float(best[1])
    w = vec @ (z / (lam + alpha))
    return _unit(w, "regression"), {"alpha": alpha, "alpha_by": "generalised cross-validation"}


def _ordered_pairs(y: np.ndarray, limit: int, seed: int):
    """Pairs (i, j) with y_i > y_j: all of them up to ``limit``, else a seeded sample."""
    n = y.size
    if n * (n - 1) // 2 <= limit:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, limit), rng.integers(0, n, limit)
    keep = y[i] != y[j]
    i, j = i[keep], j[keep]
    swap = y[i] < y[j]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    return i, j


# ----------------------------------------------------------------------------- metrics
def pairwise_accuracy(score: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
    """Share of pairs with y_i ≠ y_j that the score orders the same way (a tie in the score
    counts ½): all pairs up to 2 000 items, else 10⁶ seeded random pairs."""
    n = y.size
    if n <= EXACT_PAIRS_UP_TO:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, PAIR_SAMPLE), rng.integers(0, n, PAIR_SAMPLE)
    keep = y[i] != y[j]
    i, j = i[keep], j[keep]
    if i.size == 0:
        return float("nan")
    agree = np.sign(score[i] - score[j]) * np.sign(y[i] - y[j])
    return float(((agree > 0) + 0.5 * (agree == 0)).mean())


def rank_metrics(score: np.ndarray, y: np.ndarray, *, seed: int = 0) -> dict:
    """Spearman ρ, Kendall τ-b, Pearson r (scipy.stats) and pairwise-order accuracy."""
    if np.ptp(score) == 0 or np.ptp(y) == 0:
        return {"spearman": None, "kendall_tau_b": None, "pearson": None,
                "pairwise_accuracy": None}
    return {"spearman": float(stats.spearmanr(score, y).statistic),
            "kendall_tau_b": float(stats.kendalltau(score, y, variant="b").statistic),
            "pearson": float(stats.pearsonr(score, y).statistic),
            "pairwise_accuracy": pairwise_accuracy(score, y, seed=seed)}


def random_direction_null(xu: np.ndarray, y: np.ndarray, folds: list[np.ndarray], *,
                          directions: int = NULL_DIRECTIONS, seed: int = 0) -> np.ndarray:
    """The cross-validated ρ of ``directions`` seeded random unit directions: for each, the mean
    over the same folds of the Spearman ρ on the fold — the statistic of the fitted axis, with
    no fitting (blocks of 100 directions: one (n × d)·(d × 100) product and a column ranking per
    fold). Under an attribute unrelated to the space, a fitted axis's held-out ρ is distributed
    like these, so the empirical p-value is calibrated."""
    rng = np.random.default_rng(seed)
    out = np.zeros(directions)
    d = xu.shape[1]
    ry = []
    for test in folds:
        r = stats.rankdata(y[test])
        r = r - r.mean()
        ry.append(r / np.linalg.norm(r))
    for a in range(0, directions, NULL_BLOCK):
        m = min(NULL_BLOCK, directions - a)
        r = rng.standard_normal((d, m))
        r /= np.linalg.norm(r, axis=0)
        proj = xu @ r.astype(xu.dtype)
        for test, rank_y in zip(folds, ry):
            out[a:a + m] += rank_y @ _column_ranks(proj[test])
    return out / len(folds)


def _column_ranks(p: np.ndarray) -> np.ndarray:
    """Ranks of every column of ``p``, centred and scaled to unit norm (so that a dot product
    with another such vector is Spearman's ρ). Random projections are continuous: one argsort
    per column (ties, vanishingly rare, are broken by position instead of averaged)."""
    order = np.argsort(p, axis=0, kind="stable")
    ranks = np.empty(p.shape)
    ranks[order, np.arange(p.shape[1])] = np.arange(p.shape[0], dtype=np.float64)[:, None]
    ranks -= (p.shape[0] - 1) / 2.0
    return ranks / np.linalg.norm(ranks, axis=0)


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AxisFit(Result):
    """``axes fit``: the axis and how it was made (written to an HDF5 axis file)."""

    axis: np.ndarray = field(repr=False)
    method: str
    parameters: dict
    attribute: str
    n: int
    n_missing: int
    train_rows: np.ndarray = field(repr=False, default=None)
    train_ids: np.ndarray = field(repr=False, default=None)
    fit_spearman: float | None = None  # on the training items themselves (optimistic)
    axis_file: str | None = None
    label: str = ""
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "axes fit"

    @property
    def title(self):
        return f"geomkit axes fit ({self.method}, {self.attribute}) {self.label}".strip()

    def to_dict(self):
        out = {"attribute": self.attribute, "n": self.n, "n_missing": self.n_missing,
               "method": self.method, "parameters": self.parameters, "d": int(self.axis.size),
               "fit_spearman": self.fit_spearman, "n_dropped": self.n_dropped,
               "n_dropped_zero": self.n_dropped_zero}
        if self.axis_file is not None:
            out["axis_file"] = self.axis_file
        return out


@dataclass(frozen=True)
class RankabilityResult(Result):
    """``axes score``: cross-validated rankability, the random-direction null, the k-NN upper
    bound and the shots curve."""

    attribute: str
    n: int
    n_missing: int
    method: str
    folds: int
    spearman: float | None
    spearman_ci: list
    kendall_tau_b: float | None
    pearson: float | None
    pairwise_accuracy: float | None
    random_null: dict
    upper_bound_spearman: float | None
    shots: list
    upper_bound_n: int | None = None  # items of the k-NN upper bound (a seeded sample beyond 10⁴)
    fold_spearman: list = field(default_factory=list)
    null_values: np.ndarray = field(repr=False, default=None)
    rows: np.ndarray = field(repr=False, default=None)
    values: np.ndarray = field(repr=False, default=None)
    scores: np.ndarray = field(repr=False, default=None)  # held-out scores (each row's fold)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    label: str = ""
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "axes score"

    @property
    def title(self):
        return f"geomkit axes score ({self.method}, {self.attribute}) {self.label}".strip()

    def to_dict(self):
        return {"attribute": self.attribute, "n": self.n, "n_missing": self.n_missing,
                "method": self.method, "folds": self.folds, "spearman": self.spearman,
                "spearman_ci": self.spearman_ci, "kendall_tau_b": self.kendall_tau_b,
                "pearson": self.pearson, "pairwise_accuracy": self.pairwise_accuracy,
                "random_null": self.random_null,
                "upper_bound_spearman": self.upper_bound_spearman,
                "upper_bound_n": self.upper_bound_n, "shots": self.shots,
                "n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero}

    def per_item(self):
        import pandas as pd

        frame = pd.DataFrame({"row": self.rows, "attribute": self.values,
                              "heldout_score": self.scores})
        if self.ids is not None:
            frame.insert(1, "id", self.ids)
        return frame


@dataclass(frozen=True)
class ProjectionResult(Result):
    """``axes project``: every item's score on one or two axes."""

    axes: list  # [{"file", "method", "attribute"}, ...]
    n: int
    scores: np.ndarray = field(repr=False)  # (n, n_axes)
    rows: np.ndarray = field(repr=False, default=None)
    summary: list = field(default_factory=list)  # per axis: mean, std, spearman (with attribute)
    attribute: str | None = None
    values: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    label: str = ""
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "axes project"

    @property
    def title(self):
        return f"geomkit axes project {self.label}".strip()

    def to_dict(self):
        return {"n": self.n, "attribute": self.attribute, "axes": self.summary,
                "n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero}

    def per_item(self):
        import pandas as pd

        frame = pd.DataFrame({"row": self.rows})
        if self.ids is not None:
            frame["id"] = self.ids
        for i in range(self.scores.shape[1]):
            frame[f"score_{i + 1}" if self.scores.shape[1] > 1 else "score"] = self.scores[:, i]
        if self.values is not None:
            frame["attribute"] = self.values
        return frame


# ----------------------------------------------------------------------------- computation
def labelled_unit_rows(space, attribute: Attribute):
    """``(rows, unit vectors, attribute values, n_missing)`` of the labelled rows, in memory:
    one validated pass of unit rows (the row policy of every command: non-finite and all-zero
    rows are refused, or dropped with drop_nonfinite / drop_zero), keeping the rows whose
    attribute is finite (written into one preallocated array: no second copy)."""
    space = as_space(space)
    source = space.source
    rows_all = (np.arange(source.n_total) if source._rows is None else source._rows)
    capacity = int(np.isfinite(attribute.values[rows_all]).sum())
    xu = np.empty((capacity, space.d), dtype=space.compute_dtype)
    rows = np.empty(capacity, dtype=np.int64)
    filled, missing = 0, 0
    for blk in space.blocks(unit=True):
        ok = np.isfinite(attribute.values[blk.rows])
        missing += int((~ok).sum())
        m = int(ok.sum())
        xu[filled:filled + m] = blk.x[ok]
        rows[filled:filled + m] = blk.rows[ok]
        filled += m
    rows, xu = rows[:filled], xu[:filled]
    if rows.size < 2:
        raise InputError(f"{space.label}: {rows.size} rows have a finite '{attribute.name}'; at "
                         f"least 2 are needed.")
    y = attribute.values[rows]
    if np.ptp(y) == 0:
        raise InputError(f"{space.label}: '{attribute.name}' is constant on the analysed rows; "
                         f"nothing to rank.")
    return rows, xu, y, missing


def compute_axis(space, attribute: Attribute, *, method: str = "regression", seed: int = 0,
                 low=None, high=None) -> AxisFit:
    """Fit one rank axis on every labelled row of ``space`` (``low``/``high``: original rows of
    given pole items for extremes/poles)."""
    space = as_space(space)
    rows, xu, y, missing = labelled_unit_rows(space, attribute)
    lo_pos = hi_pos = None
    if low is not None or high is not None:
        if method not in ("extremes", "poles") or low is None or high is None:
            raise UsageError("given low and high items go with the extremes or poles method, "
                             "and both are needed.")
        lo_pos, hi_pos = _positions(rows, low, "low"), _positions(rows, high, "high")
    v, params = fit_axis(xu, y, method, seed=seed, low=lo_pos, high=hi_pos)
    meta = space.metadata
    fit_rho = rank_metrics(xu @ v, y, seed=seed)["spearman"]
    return AxisFit(axis=v, method=method, parameters=params, attribute=attribute.name,
                   n=int(rows.size), n_missing=missing, train_rows=rows,
                   train_ids=None if meta.ids is None else meta.ids[rows], fit_spearman=fit_rho,
                   label=space.label, n_dropped=space.n_dropped,
                   n_dropped_zero=space.n_dropped_zero)


def _positions(rows: np.ndarray, wanted, what: str) -> np.ndarray:
    wanted = np.asarray(wanted, dtype=np.int64)
    pos = np.searchsorted(rows, wanted)
    ok = (pos < rows.size) & (rows[np.minimum(pos, rows.size - 1)] == wanted)
    if not ok.all():
        raise InputError(f"the {what} items {wanted[~ok][:5].tolist()} are not labelled rows of "
                         f"the input.")
    return pos


def compute_rankability(space, attribute: Attribute, *, method: str = "regression",
                        folds: int = 5, shots=DEFAULT_SHOTS, shot_repeats: int = SHOT_REPEATS,
                        null_directions: int = NULL_DIRECTIONS, seed: int = 0,
                        upper_bound: bool = True) -> RankabilityResult:
    """Cross-validated rankability of ``attribute`` in ``space`` along a ``method`` axis."""
    from sklearn.neighbors import KNeighborsRegressor

    space = as_space(space)
    rows, xu, y, missing = labelled_unit_rows(space, attribute)
    n = rows.size
    if not 2 <= folds <= n // 2:
        raise UsageError(f"{folds} folds need at least {2 * folds} labelled items; there are {n}.")
    per_fold, heldout, upper = [], np.empty(n), []
    parts = _folds(n, folds, seed)
    keep = None  # the upper bound's k-NN search on at most UPPER_BOUND_MAX items
    if upper_bound and n > UPPER_BOUND_MAX:
        keep = np.zeros(n, dtype=bool)
        keep[np.random.default_rng(seed).choice(n, UPPER_BOUND_MAX, replace=False)] = True
    for f, test in enumerate(parts):
        train = np.setdiff1d(np.arange(n), test, assume_unique=True)
        if np.ptp(y[train]) == 0:
            continue
        v, _ = fit_axis(xu[train], y[train], method, seed=seed + f)
        heldout[test] = xu[test] @ v
        per_fold.append(rank_metrics(heldout[test], y[test], seed=seed))
        if upper_bound:
            tr, te = (train, test) if keep is None else (train[keep[train]], test[keep[test]])
            if te.size > 2 and tr.size > 1:
                knn = KNeighborsRegressor(n_neighbors=min(UPPER_BOUND_K, tr.size),
                                          metric="cosine")
                pred = knn.fit(xu[tr], y[tr]).predict(xu[te])
                upper.append(rank_metrics(pred, y[te])["spearman"])
    means = {key: _mean([m[key] for m in per_fold]) for key in
             ("spearman", "kendall_tau_b", "pearson", "pairwise_accuracy")}
    rhos = [m["spearman"] for m in per_fold if m["spearman"] is not None]
    ci = [None, None]
    if len(rhos) >= 2:
        half = stats.t.ppf(0.975, len(rhos) - 1) * np.std(rhos, ddof=1) / np.sqrt(len(rhos))
        ci = [float(np.mean(rhos) - half), float(np.mean(rhos) + half)]
    null = random_direction_null(xu, y, [p for p in parts if np.ptp(y[p]) > 0],
                                 directions=null_directions, seed=seed)
    rho = means["spearman"]
    random_null = {"n_directions": int(null.size), "mean": float(null.mean()),
                   "p95": float(np.quantile(null, 0.95)),
                   "p_value": (float((1 + (null >= rho).sum()) / (1 + null.size))
                               if rho is not None else None)}
    meta = space.metadata
    return RankabilityResult(
        attribute=attribute.name, n=int(n), n_missing=missing, method=method, folds=folds,
        spearman_ci=ci, random_null=random_null,
        upper_bound_spearman=_mean(upper) if upper_bound else None,
        upper_bound_n=int(min(n, UPPER_BOUND_MAX)) if upper_bound else None,
        shots=shots_curve(xu, y, method, shots, repeats=shot_repeats, seed=seed),
        fold_spearman=rhos, null_values=null, rows=rows, values=y, scores=heldout,
        ids=None if meta.ids is None else meta.ids[rows],
        texts=None if meta.texts is None else meta.texts[rows], label=space.label,
        n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero, **means)


def _spearman(score: np.ndarray, y: np.ndarray) -> float | None:
    if np.ptp(score) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(score, y).statistic)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def shots_curve(xu, y, method, shots, *, repeats: int = SHOT_REPEATS, seed: int = 0) -> list:
    """Spearman on the other labelled items of an axis fitted on n random labelled items
    (``repeats`` seeded draws per n), and the two-extremes point."""
    n = y.size
    rng = np.random.default_rng(seed)
    out = []
    for size in sorted({int(s) for s in shots}):
        if not 2 <= size <= n - 2:
            continue
        rhos = []
        for _ in range(repeats):
            pick = np.sort(rng.choice(n, size=size, replace=False))
            if np.ptp(y[pick]) == 0:
                continue
            rest = np.ones(n, dtype=bool)
            rest[pick] = False
            try:
                v, _ = fit_axis(xu[pick], y[pick], method, seed=seed)
            except InputError:  # identical items drawn: no axis
                continue
            rho = _spearman((xu @ v.astype(xu.dtype))[rest], y[rest])
            if rho is not None:
                rhos.append(rho)
        if rhos:
            out.append({"n": size, "method": method, "spearman_mean": float(np.mean(rhos)),
                        "spearman_std": float(np.std(rhos)), "draws": len(rhos)})
    lo, hi = int(np.argmin(y)), int(np.argmax(y))
    rest = np.ones(n, dtype=bool)
    rest[[lo, hi]] = False
    if rest.sum() >= 2:
        try:
            v = _unit(np.asarray(xu[hi], np.float64) - xu[lo], "extremes")
            rho = _spearman((xu @ v.astype(xu.dtype))[rest], y[rest])
            out.append({"n": 2, "method": "two extremes", "spearman_mean": rho,
                        "spearman_std": 0.0, "draws": 1})
        except InputError:
            pass
    return out


# ----------------------------------------------------------------------------- axis files
def write_axis(path: str, fit: AxisFit) -> None:
    """The axis file (HDF5, atomic): ``axis`` (d,), ``train_rows``, ``train_ids`` and
    attributes method, parameters (JSON), attribute, input, geomkit_version."""
    import h5py

    from geomkit import __version__
    from geomkit.io.writers import atomic_path

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("axis", data=fit.axis)
        f.create_dataset("train_rows", data=fit.train_rows)
        if fit.train_ids is not None:
            f.create_dataset("train_ids", data=np.array([str(i) for i in fit.train_ids],
                                                        dtype=object),
                             dtype=h5py.string_dtype("utf-8"))
        f.attrs.update({"kind": "geomkit rank axis", "method": fit.method,
                        "parameters": json.dumps(fit.parameters), "attribute": fit.attribute,
                        "input": fit.label, "n": fit.n, "geomkit_version": __version__})


def read_axis(path: str) -> dict:
    """An axis file written by :func:`write_axis`: ``{"axis", "method", "attribute", "file"}``."""

    from geomkit.io.source import open_h5

    f = open_h5(path)
    try:
        if f.attrs.get("kind") != "geomkit rank axis" or "axis" not in f:
            raise InputError(f"{path}: is not an axis file written by geomkit axes fit.")
        axis = np.asarray(f["axis"][:], dtype=np.float64)
        if axis.ndim != 1 or not np.isfinite(axis).all() or np.linalg.norm(axis) == 0:
            raise InputError(f"{path}: its axis is not a finite non-zero vector.")
        return {"axis": axis / np.linalg.norm(axis), "method": str(f.attrs.get("method", "")),
                "attribute": str(f.attrs.get("attribute", "")), "file": path}
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as an axis file ({exc}).") from None
    finally:
        f.close()


def compute_projection(space, axes: list[dict], *, attribute: Attribute | None = None,
                       progress: str | None = None) -> ProjectionResult:
    """v·x̂ of every row on each axis (one streaming pass of unit rows)."""
    from geomkit.analysis.depth import ProjectionAccumulator

    space = as_space(space)
    for a in axes:
        if a["axis"].size != space.d:
            raise UsageError(f"{a['file']}: the axis is {a['axis'].size}-dimensional, "
                             f"{space.label} has {space.d} dimensions.")
    accs = [ProjectionAccumulator(a["axis"]) for a in axes]
    space.run(*accs, unit=True, progress=progress)
    parts = [acc.result() for acc in accs]
    rows = parts[0][0]
    scores = np.column_stack([p[1] for p in parts])
    values = None if attribute is None else attribute.values[rows]
    summary = []
    for a, col in zip(axes, scores.T):
        entry = {"file": a["file"], "method": a["method"], "attribute": a["attribute"],
                 "mean": float(col.mean()), "std": float(col.std(ddof=1)) if col.size > 1 else 0.0}
        if values is not None:
            ok = np.isfinite(values)
            entry["spearman"] = (float(stats.spearmanr(col[ok], values[ok]).statistic)
                                 if ok.sum() > 2 and np.ptp(values[ok]) > 0 else None)
        summary.append(entry)
    meta = space.metadata
    return ProjectionResult(axes=[{k: a[k] for k in ("file", "method", "attribute")} for a in axes],
                            n=int(rows.size), scores=scores, rows=rows, summary=summary,
                            attribute=None if attribute is None else attribute.name,
                            values=values, ids=None if meta.ids is None else meta.ids[rows],
                            texts=None if meta.texts is None else meta.texts[rows],
                            label=space.label, n_dropped=space.n_dropped,
                            n_dropped_zero=space.n_dropped_zero)
