"""Information gain of words and its relation to embedding norms (Oyama, Yokoi & Shimodaira 2023).

KL(w) = Σ_{w'} p(w'|w) log[p(w'|w) / p(w')], p(w') = n_{w'}/N (N = corpus tokens),
p(w'|w) = n_{w,w'} / Σ_{w''} n_{w,w''}; raw counts, 0·log 0 = 0. The frequency-weighted mean of KL
is the mutual information between a word and its context words.

Frequency artefact removal: ΔKL = KL − KL̄ with KL̄ from ``percentile`` (3rd percentile of KL among
words of similar frequency: 200 log bins merged to ≥ 50 words) or ``shuffle`` (KL recounted on
``shuffles`` randomly shuffled copies of the corpus, averaged; corpus input only).

With embeddings (rows named by ``ids`` = words): R², slope (least squares of ‖u‖² on KL) and
Spearman between KL and ‖u‖² — ``raw``; ``centred`` (u − ū, ū the frequency-weighted mean); and
``whitened`` ((u − ū)ᵀ G (u − ū), G the frequency-weighted covariance of the context vectors, when
given) — on words with n_w > ``fit_min_count`` (paper: 1000). Keywords: ranking by n_w·KL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from geomkit.analysis.norms import frequency_bins, percentile_baseline
from geomkit.report.result import Result


def kl_per_word(co) -> np.ndarray:
    """KL(p(·|w) ‖ p(·)) for every vocabulary word (0 for words with no co-occurrence)."""
    m = co.matrix.tocsr()
    row_sum = np.asarray(m.sum(axis=1)).ravel()
    p_context = co.counts / co.n_tokens
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = m.data / row_sum[rows]
        terms = np.where(m.data > 0, cond * np.log(cond / p_context[m.indices]), 0.0)
    return np.bincount(rows, weights=terms, minlength=m.shape[0])


MIN_FIT_WORDS = 20  # below this a least-squares R² over words is noise: not reported


def linear_fit(x: np.ndarray, y: np.ndarray) -> dict:
    """Least squares of y on x: R², slope, intercept and Spearman's ρ; all None with fewer than
    :data:`MIN_FIT_WORDS` points or a constant x."""
    if x.size < MIN_FIT_WORDS or np.ptp(x) == 0:
        return {"r2": None, "slope": None, "intercept": None, "spearman": None}
    res = stats.linregress(x, y)
    return {"r2": float(res.rvalue ** 2), "slope": float(res.slope),
            "intercept": float(res.intercept),
            "spearman": float(stats.spearmanr(x, y).statistic)}


@dataclass(frozen=True)
class InfogainResult(Result):
    n_words: int
    n_tokens: int
    window: int | None
    mutual_information: float
    baseline: str
    words: np.ndarray = field(repr=False, default=None)
    counts: np.ndarray = field(repr=False, default=None)
    kl: np.ndarray = field(repr=False, default=None)
    kl_baseline: np.ndarray = field(repr=False, default=None)
    fits: dict | None = None
    n_fit_words: int | None = None
    norm_sq: np.ndarray = field(repr=False, default=None)       # aligned with words (nan if absent)
    fit_mask: np.ndarray = field(repr=False, default=None)      # words used in the fits
    delta_norm_sq: np.ndarray = field(repr=False, default=None)
    keywords: int = 20
    document_counts: np.ndarray = field(repr=False, default=None)  # n_w in --keywords-for DOC
    n_dropped: int = 0  # rows of the embeddings left out (non-finite, all-zero)
    n_dropped_zero: int = 0
    label: str = ""
    command: str = "infogain"

    @property
    def title(self):
        return f"geomkit infogain {self.label}".strip()

    def to_dict(self):
        out = {"n_words": self.n_words, "n_tokens": self.n_tokens, "window": self.window,
               "mutual_information": self.mutual_information, "baseline": self.baseline}
        if self.fits is not None:
            out["n_dropped"] = self.n_dropped
            out["n_dropped_zero"] = self.n_dropped_zero
            out["n_fit_words"] = self.n_fit_words
            for key in ("r2", "slope", "spearman"):
                out[key] = {space: fit[key] for space, fit in self.fits.items()}
        return out

    def per_item(self):
        import pandas as pd
        frame = pd.DataFrame({"word": self.words, "count": self.counts, "kl": self.kl,
                              "kl_baseline": self.kl_baseline, "delta_kl": self.kl - self.kl_baseline})
        if self.norm_sq is not None:
            frame["norm_sq"] = self.norm_sq
            frame["delta_norm_sq"] = self.delta_norm_sq
        return frame


def compute_infogain(co, *, baseline: str = "percentile", shuffled: list | None = None,
                     embeddings: dict | None = None, fit_min_count: float = 1000,
                     keywords: int = 20, label: str = "",
                     document_counts: np.ndarray | None = None) -> InfogainResult:
    """KL per word from co-occurrence counts ``co``; ``shuffled`` = co-occurrences of shuffled
    corpora (for ``baseline='shuffle'``); ``embeddings`` = {"words", "vectors", optional
    "context"} aligned by word; ``document_counts``: n_w of one document per vocabulary word
    (its keywords are ranked by n_w·KL; :func:`geomkit.io.cooccurrence.word_counts`)."""
    kl = kl_per_word(co)
    p = co.counts / co.counts.sum()
    if baseline == "shuffle":
        base = np.mean([_align(kl_per_word(s), s.vocab, co.vocab) for s in shuffled], axis=0)
    else:
        base = percentile_baseline(kl, frequency_bins(np.maximum(co.counts, 1)))
    fitted = {} if embeddings is None else _fit_norms(kl, co, embeddings, fit_min_count)
    return InfogainResult(n_words=int(co.vocab.size), n_tokens=int(co.n_tokens), window=co.window,
                          mutual_information=float((p * kl).sum()), baseline=baseline,
                          words=co.vocab, counts=co.counts, kl=kl, kl_baseline=base,
                          keywords=keywords, label=label, document_counts=document_counts,
                          **fitted)


def _align(values, from_vocab, to_vocab):
    pos = {w: i for i, w in enumerate(from_vocab)}
    return np.array([values[pos[w]] if w in pos else np.nan for w in to_vocab])


def _fit_norms(kl, co, emb, fit_min_count) -> dict:
    """The result's fields about the embeddings: ‖u‖² (raw, centred, whitened) against KL."""
    from geomkit.errors import InputError

    pos = {str(w): i for i, w in enumerate(emb["words"])}
    have = np.array([str(w) in pos for w in co.vocab], dtype=bool)
    if not have.any():
        raise InputError(f"{emb.get('label', 'the embeddings')}: none of its {len(pos)} ids is a "
                         f"word of the corpus vocabulary ({co.vocab.size} words); the ids must be "
                         f"the words.")
    idx = np.array([pos[str(w)] for w in co.vocab[have]], dtype=np.int64)
    u = np.asarray(emb["vectors"][idx], dtype=np.float64)
    weights = co.counts[have] / co.counts[have].sum()
    centred = u - weights @ u
    spaces = {"raw": (u ** 2).sum(1), "centred": (centred ** 2).sum(1)}
    if emb.get("context") is not None:
        c = np.asarray(emb["context"][idx], dtype=np.float64)
        cc = c - weights @ c
        g = (cc * weights[:, None]).T @ cc
        spaces["whitened"] = np.einsum("ij,jk,ik->i", centred, g, centred)
    norm_sq = np.full(co.vocab.size, np.nan)
    norm_sq[have] = spaces["raw"]
    delta = np.full(co.vocab.size, np.nan)
    delta[have] = spaces["raw"] - percentile_baseline(spaces["raw"],
                                                      frequency_bins(np.maximum(co.counts[have], 1)))
    sel = co.counts[have] > fit_min_count
    fit_mask = np.zeros(co.vocab.size, dtype=bool)
    fit_mask[np.flatnonzero(have)[sel]] = True
    return {"norm_sq": norm_sq, "delta_norm_sq": delta, "n_fit_words": int(sel.sum()),
            "n_dropped": int(emb.get("n_dropped", 0)),
            "n_dropped_zero": int(emb.get("n_dropped_zero", 0)),
            "fit_mask": fit_mask,
            "fits": {name: linear_fit(kl[have][sel], values[sel]) for name, values in spaces.items()}}
