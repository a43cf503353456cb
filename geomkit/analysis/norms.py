"""What vector length encodes (METHODS.md §1): norm distribution, groups, frequency, likelihood.

- Distribution of ‖x‖: mean, std, coefficient of variation, quantiles, min/max (with ids), zero and
  near-zero rows (‖x‖ ≤ 1e-6 · median), robust outliers: |‖x‖ − median| > 3.5 · 1.4826 · MAD
  (the modified z-score rule of Iglewicz & Hoaglin).
- Groups (labels or ``--group-by``): the same per group, and each group's mean norm relative to
  the overall mean (the VLM "norm imbalance" check: ``imbalance`` = max / min group mean).
- With counts: Spearman of norm vs log frequency, log2 frequency bins (Schakel & Wilson 2015) with
  the median norm per bin, and the frequency-debiased Δ‖u‖² = ‖u‖² − 3rd percentile of ‖u‖² among
  words of similar frequency (Oyama et al. 2023: 200 log-spaced bins of n_w over [1, max n_w],
  merged from the top down until each holds ≥ 50 words).
- Whitened log-likelihood (Betser et al. 2025): log p(x) ≈ −½(d log 2π + ‖(x − μ)W‖²), W = V S^{-1/2}
  from the covariance (ddof = 1) regularised as S + ε·mean(S) with ε = 1e-6, so rank-deficient
  dumps never fail (the directions without variance get a tiny, finite scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from geomkit.engine.moments import row_numbers, take
from geomkit.report.result import Result
from geomkit.space import as_space

QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
MAD_RULE = 3.5
NEAR_ZERO = 1e-6
WHITEN_EPS = 1e-6


def norm_summary(norms: np.ndarray) -> dict:
    """Distribution of a vector of norms (the JSON keys of ``geomkit norms``)."""
    med = float(np.median(norms))
    mad = float(np.median(np.abs(norms - med))) * 1.4826
    outliers = np.abs(norms - med) > MAD_RULE * mad if mad > 0 else np.zeros(norms.size, bool)
    mean = float(norms.mean())
    std = float(norms.std(ddof=1)) if norms.size > 1 else 0.0
    return {"n": int(norms.size), "mean": mean, "std": std,
            "cv": std / mean if mean > 0 else None,
            "min": float(norms.min()), "max": float(norms.max()),
            "quantiles": {k: float(np.quantile(norms, q)) for k, q in QUANTILES.items()},
            "n_outliers": int(outliers.sum()), "n_zero": int((norms == 0).sum()),
            "n_near_zero": int((norms <= NEAR_ZERO * med).sum()) if med > 0 else int((norms == 0).sum())}


def outlier_mask(norms: np.ndarray) -> np.ndarray:
    med = np.median(norms)
    mad = np.median(np.abs(norms - med)) * 1.4826
    return np.abs(norms - med) > MAD_RULE * mad if mad > 0 else np.zeros(norms.size, bool)


def frequency_bins(counts: np.ndarray, *, n_bins: int = 200, min_words: int = 50) -> np.ndarray:
    """Bin id of every word: 200 log-spaced bins of n_w over [1, max n_w], merged from the top
    down until each holds ≥ ``min_words`` words (Oyama et al. 2023)."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.geomspace(1.0, max(counts.max(), 1.0 + 1e-9), n_bins + 1)
    raw = np.clip(np.searchsorted(edges, counts, side="right") - 1, 0, n_bins - 1)
    sizes = np.bincount(raw, minlength=n_bins)
    merged = np.empty(n_bins, dtype=np.int64)
    group, filled = 0, 0
    for b in range(n_bins - 1, -1, -1):  # from the top (rare high-frequency words) down
        merged[b] = group
        filled += sizes[b]
        if filled >= min_words:
            group, filled = group + 1, 0
    if filled and group > 0:  # a short last (lowest) group joins the one above it
        merged[merged == group] = group - 1
    return merged[raw]


def percentile_baseline(values: np.ndarray, bins: np.ndarray, q: float = 3.0) -> np.ndarray:
    """Per word: the q-th percentile of ``values`` among the words of its frequency bin."""
    out = np.empty(values.size)
    for b in np.unique(bins):
        sel = bins == b
        out[sel] = np.percentile(values[sel], q)
    return out


@dataclass(frozen=True)
class NormsResult(Result):
    summary: dict
    d: int
    rows: np.ndarray = field(repr=False, default=None)  # None: rows 0..n−1 (a full view)
    norms: np.ndarray = field(repr=False, default=None)
    groups: list | None = None
    group_of: np.ndarray = field(repr=False, default=None)
    frequency: dict | None = None
    counts: np.ndarray = field(repr=False, default=None)
    delta_norm_sq: np.ndarray = field(repr=False, default=None)
    log_likelihood: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    imbalance: float | None = None
    n_dropped: int = 0
    n_dropped_zero: int = 0
    label: str = ""
    command: str = "norms"

    @property
    def title(self):
        return f"geomkit norms {self.label}".strip()

    def to_dict(self):
        out = {"n": self.summary["n"], "d": self.d, "n_dropped": self.n_dropped,
               "n_dropped_zero": self.n_dropped_zero}
        out.update({k: v for k, v in self.summary.items() if k != "n"})
        out["min_id"] = self._name(int(np.argmin(self.norms)))
        out["max_id"] = self._name(int(np.argmax(self.norms)))
        if self.groups is not None:
            out["groups"] = self.groups
            out["group_imbalance"] = self.imbalance
        if self.frequency is not None:
            out["frequency"] = self.frequency
        return out

    @property
    def row_numbers(self) -> np.ndarray:
        """Original row numbers (materialised; ``rows`` None means 0..n−1)."""
        return row_numbers(self.rows, self.norms.size)

    def _name(self, i: int) -> str:
        if self.ids is not None:
            return str(self.ids[i])
        return str(i if self.rows is None else self.rows[i])

    def per_item(self):
        import pandas as pd
        frame = pd.DataFrame({"row": self.row_numbers})
        if self.ids is not None:
            frame["id"] = self.ids
        frame["norm"] = self.norms
        frame["norm_sq"] = self.norms ** 2
        frame["outlier"] = outlier_mask(self.norms)
        if self.group_of is not None:
            frame["group"] = self.group_of
        if self.counts is not None:
            frame["count"] = self.counts
            frame["delta_norm_sq"] = self.delta_norm_sq
        if self.log_likelihood is not None:
            frame["log_likelihood"] = self.log_likelihood
        return frame


class LogLikelihoodAccumulator:
    """Whitened Gaussian log-likelihood of every row (a second pass):
    −½(d log 2π + ‖(x − μ)W‖²). The centring and the d×d product run in the block's precision
    (float32 for float16/32 dumps, as the kNN products: half the time of float64, relative error
    ~1e-6; float64 dumps, and whitening scales float32 cannot hold — e.g. the near-zero variances
    of a degenerate dump — in float64), the sum of squares in float64."""

    def __init__(self, mean: np.ndarray, w: np.ndarray):
        self.mean, self.w = mean, w
        self._cast = {}
        self.values: list[np.ndarray] = []

    def fresh(self) -> "LogLikelihoodAccumulator":
        return LogLikelihoodAccumulator(self.mean, self.w)

    def __getstate__(self):  # Dask ships the accumulator: not the cast copies
        return {"mean": self.mean, "w": self.w, "_cast": {}, "values": self.values}

    def consume(self, rows, x):
        single = x.dtype != np.float64 and np.abs(self.w).max(initial=0.0) < 1e15
        dt = np.float32 if single else np.float64
        if dt not in self._cast:
            self._cast[dt] = (self.mean.astype(dt), np.ascontiguousarray(self.w, dtype=dt))
        mean, w = self._cast[dt]
        z = (np.asarray(x, dtype=dt) - mean) @ w
        self.values.append(-0.5 * (self.mean.size * np.log(2 * np.pi)
                                   + np.square(z).sum(axis=1, dtype=np.float64)))

    def merge(self, other: "LogLikelihoodAccumulator") -> "LogLikelihoodAccumulator":
        self.values += other.values
        return self

    def result(self) -> np.ndarray:
        return np.concatenate(self.values) if self.values else np.empty(0)


def group_summaries(norms: np.ndarray, groups: np.ndarray):
    """Per group: the norm summary and its mean relative to the overall mean; and the
    imbalance max / min of the group means (None when a group mean is 0)."""
    overall = norms.mean()
    out = []
    for name in sorted(set(groups)):
        summ = norm_summary(norms[groups == name])
        out.append({"group": name, **summ,
                    "mean_ratio": summ["mean"] / overall if overall else None})
    means = [g["mean"] for g in out]
    return out, (float(max(means) / min(means)) if min(means) > 0 else None)


def frequency_relation(norms: np.ndarray, counts: np.ndarray):
    """Spearman of norm vs log count, the median norm per log2-count bin, and the
    frequency-debiased Δ‖u‖² (Oyama et al. 2023) of every row."""
    positive = counts > 0
    rho = (stats.spearmanr(norms[positive], np.log(counts[positive])).statistic
           if positive.sum() > 2 else None)
    log2 = np.floor(np.log2(np.where(positive, counts, 1))).astype(int)
    bins = [{"log2_count": int(b), "min_count": int(2 ** b),
             "n": int((log2[positive] == b).sum()),
             "median_norm": float(np.median(norms[positive][log2[positive] == b]))}
            for b in np.unique(log2[positive])]
    sq = norms ** 2
    delta = sq - percentile_baseline(sq, frequency_bins(np.maximum(counts, 1)))
    return {"spearman": float(rho) if rho is not None else None, "bins": bins}, delta


def compute_norms(space, *, groups: np.ndarray | None = None, counts: np.ndarray | None = None,
                  likelihood: bool = True, progress: str | None = None) -> NormsResult:
    """Norm diagnostics of ``space`` (a :class:`geomkit.Space`, or a source); ``groups`` /
    ``counts`` are aligned with the dump's rows (all of them, in file order)."""
    space = as_space(space)
    names = ("row_stats", "moments") if likelihood else ("row_stats",)
    rs = space.products(*names, progress=progress)[0]
    rows, norms = rs.rows, rs.norms
    meta = space.metadata
    extra = {}
    if groups is not None:
        g = np.asarray([str(v) for v in take(groups, rows)], dtype=object)
        extra["group_of"] = g
        extra["groups"], extra["imbalance"] = group_summaries(norms, g)
    if counts is not None:
        c = take(np.asarray(counts, dtype=np.float64), rows)
        extra["counts"] = c
        extra["frequency"], extra["delta_norm_sq"] = frequency_relation(norms, c)
    if likelihood:
        m = space.moments()
        values, vectors = space.spectrum()
        floor = WHITEN_EPS * max(values.mean(), np.finfo(float).tiny)
        acc = LogLikelihoodAccumulator(m.mean, vectors / np.sqrt(values + floor))
        space.run(acc)
        extra["log_likelihood"] = acc.result()
    return NormsResult(summary=norm_summary(norms), d=space.d, rows=rows, norms=norms,
                       ids=take(meta.ids, rows), texts=take(meta.texts, rows), label=space.label,
                       n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero, **extra)
