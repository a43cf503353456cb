"""Hubness: k-occurrence and the measures of scikit-hubness (METHODS.md §3), per reduction.

N_k(x) = number of k-NN lists (self excluded) that contain x. With n items and k:
k_skewness = scipy.stats.skew(N_k) (biased); k_skewness_truncnorm = skewness of a normal truncated at 0
with N_k's mean and std (ddof = 1); robinhood = ½·Σ|N_i − mean| / ΣN; gini = Σ_iΣ_j|N_i − N_j| / (2n·ΣN);
atkinson (ε = ½) = 1 − mean(√N)² / mean(N); antihub_occurrence = #{N = 0}/n; hubs = {N ≥ hub_size·k}
(≥ as scikit-hubness computes it); hub_occurrence = Σ_hubs N / (k·n); groupie_ratio = max N / (n·k).
With labels: leave-one-out k-NN error, majority vote of the k neighbours; a tie between labels goes
to the tied label whose nearest member ranks first. Where every item has the same k-occurrence
(e.g. N = 2, k = 1) both skewnesses are 0/0: None (null in JSON), said in the notes.

Degenerate data (the limits used by each reduction: geomkit/transforms/hubness.py): exact
duplicate rows are counted (``n_duplicates`` = rows equal to an earlier row = N − distinct rows,
``n_duplicate_groups``) and put at distance 0; a note says what they do to k-occurrence.
``candidates`` gives the candidate-list length mp / mp_empiric used (None: mp over all items);
a list longer than the data is clamped to all other items and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from geomkit.report.result import Result
from geomkit.space import as_space
from geomkit.transforms.hubness import (candidates_used, check_metric, knn_requests, min_items,
                                        reduced_knn)

MEASURES = ("k_skewness", "k_skewness_truncnorm", "robinhood", "gini", "atkinson",
            "antihub_occurrence", "hub_occurrence", "groupie_ratio", "n_hubs", "n_antihubs")


def k_occurrence(indices: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(indices.ravel(), minlength=n)


def hubness_measures(kocc: np.ndarray, k: int, hub_size: float = 2.0) -> dict:
    n = kocc.size
    kf = kocc.astype(np.float64)
    total = kf.sum()
    mean, sd = kf.mean(), kf.std(ddof=1)
    if sd > 0:
        a = (0.0 - mean) / sd
        trunc = float(stats.truncnorm(a, np.inf).moment(3))  # as scikit-hubness: raw 3rd moment
    else:  # every item has the same k-occurrence: skewness is 0/0, undefined (None in JSON)
        trunc = None
    sorted_k = np.sort(kf)
    gini = float(((2 * np.arange(1, n + 1) - n - 1) * sorted_k).sum() / (n * total))
    hubs = kf >= hub_size * k
    return {
        "k_skewness": float(stats.skew(kf)) if sd > 0 else None,
        "k_skewness_truncnorm": trunc,
        "robinhood": float(0.5 * np.abs(kf - mean).sum() / total),
        "gini": gini,
        "atkinson": float(1.0 - np.sqrt(kf).mean() ** 2 / kf.mean()),
        "antihub_occurrence": float((kf == 0).mean()),
        "hub_occurrence": float(kf[hubs].sum() / (k * n)),
        "groupie_ratio": float(kf.max() / (n * k)),
        "n_hubs": int(hubs.sum()),
        "n_antihubs": int((kf == 0).sum()),
    }


def knn_error(indices: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out majority-vote k-NN error (ties: the tied label met first in rank order)."""
    _, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    neigh = codes[indices]
    n, k = neigh.shape
    counts = np.zeros((n, codes.max() + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), k), neigh.ravel()), 1)
    best = counts.max(1)
    is_best = counts[np.arange(n)[:, None], neigh] == best[:, None]
    first = np.argmax(is_best, axis=1)  # rank of the nearest neighbour whose label ties for best
    predicted = neigh[np.arange(n), first]
    return float((predicted != codes).mean())


@dataclass(frozen=True)
class HubnessResult(Result):
    k: int
    metric: str
    n: int
    methods: dict
    knn: dict
    hub_size: float = 2.0
    n_duplicates: int = 0
    n_duplicate_groups: int = 0
    n_dropped: int = 0
    n_dropped_zero: int = 0
    candidates: dict = field(default_factory=dict)
    kocc: dict = field(repr=False, default_factory=dict)
    rows: np.ndarray = field(repr=False, default=None)
    ids: np.ndarray = field(repr=False, default=None)
    texts: np.ndarray = field(repr=False, default=None)
    label: str = ""
    command: str = "hubness"

    @property
    def title(self):
        return f"geomkit hubness (k={self.k}, {self.metric}) {self.label}".strip()

    def to_dict(self):
        return {"methods": self.methods, "k": self.k, "metric": self.metric, "n": self.n,
                "n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero,
                "n_duplicates": self.n_duplicates,
                "n_duplicate_groups": self.n_duplicate_groups, "candidates": self.candidates,
                "knn": self.knn}

    def per_item(self):
        import pandas as pd
        frame = pd.DataFrame({"row": self.rows})
        if self.ids is not None:
            frame["id"] = self.ids
        for method, kocc in self.kocc.items():
            frame[f"k_occurrence_{method}"] = kocc
        return frame



def compute_hubness(space, *, k: int = 10, metric: str = "cosine", reduce=("none",),
                    hub_size: float = 2.0, labels: np.ndarray | None = None,
                    approximate: bool = False, querybank: np.ndarray | None = None,
                    candidates: int | None = None, device: str | None = None,
                    max_bytes: int = 8 * 2**30, nprobe: int | None = None,
                    target_recall: float | None = None) -> HubnessResult:
    """k-occurrence measures of ``space`` (a :class:`geomkit.Space`, or a source) for each
    reduction in ``reduce``; ``labels`` (aligned with the dump's rows) add the k-NN error.

    The exact kNN graph is searched once (the largest size any method reads, per metric) and
    shared by every reduction (:meth:`geomkit.Space.knn`). Exact duplicate rows are found first
    (``n_duplicates``: rows equal to an earlier row, ``n_duplicate_groups``); they are at
    distance exactly 0 in every exact path. ``candidates`` in the result: the candidate-list
    length mp / mp_empiric used (None: mp over all items).

    Exact search streams from the source (:mod:`geomkit.engine.knn_stream`, reduction none
    only) when the passes run on Dask or the matrix exceeds ``max_bytes`` or what memory and
    RLIMIT_AS leave (:func:`_streams`); k-occurrence is the same as in memory.

    ``approximate``: faiss IVF neighbours streamed from the source within ``space.memory``
    (:func:`geomkit.engine.ann.approximate_search`; ``nprobe`` lists searched per query, or tuned
    to ``target_recall``), reduction
    none only; the index and its measured recall are reported under ``knn``."""
    from geomkit.engine.duplicates import count_representatives
    from geomkit.engine.knn import check_device
    from geomkit.errors import UsageError

    space = as_space(space)
    if device:
        check_device(device)
    for method in reduce:  # options that cannot act are refused before any read
        check_metric(method, metric)
        if approximate and method != "none":
            raise UsageError("hubness reductions need the exact distance matrix; with "
                             "approximate neighbours use the reduction none only.")
    if candidates is not None and not k < candidates:
        raise UsageError(f"candidates = {candidates} must be larger than k = {k}.")
    if approximate:  # streamed from the source within the memory budget (engine/ann.py)
        return _approximate_hubness(space, k=k, metric=metric, hub_size=hub_size,
                                    labels=labels, nprobe=nprobe, target_recall=target_recall)
    if _streams(space, max_bytes):  # larger than memory, or on Dask: engine/knn_stream.py
        return _streamed_hubness(space, k=k, metric=metric, reduce=reduce, hub_size=hub_size,
                                 labels=labels, device=device, max_bytes=max_bytes)
    # a zero row has no direction: cosine neighbours are undefined for it
    rows, x = space.matrix(max_bytes=max_bytes, nonzero=metric == "cosine")
    n = x.shape[0]
    if not 1 <= k < n:
        raise UsageError(f"k = {k} must be between 1 and N - 1 = {n - 1}.")
    rep = space.duplicates(nonzero=metric == "cosine")
    n_dup, n_groups = count_representatives(rep)

    def graph(size, graph_metric):
        return space.knn(size, graph_metric, device=device)

    # the largest graph per metric first: every smaller one is its prefix
    largest: dict = {}
    for method in reduce:
        if n >= min_items(method):
            for size, graph_metric in knn_requests(method, k, n, metric, candidates=candidates):
                largest[graph_metric] = max(largest.get(graph_metric, 0), size)
    for graph_metric, size in largest.items():
        graph(size, graph_metric)
    methods, kocc_all = {}, {}
    knn_info = {"exact": True, "recall": None}
    for method in reduce:
        res = reduced_knn(x, k, method, metric=metric, memory=space.memory,
                          querybank=querybank, candidates=candidates, device=device,
                          duplicates=rep, knn=graph)
        kocc = k_occurrence(res.indices, n)
        values = hubness_measures(kocc, k, hub_size)
        if labels is not None:
            values["knn_error"] = knn_error(res.indices, labels[rows])
        methods[method], kocc_all[method] = values, kocc
    meta = space.metadata
    return HubnessResult(k=k, metric=metric, n=n, methods=methods, knn=knn_info, hub_size=hub_size,
                         n_duplicates=n_dup, n_duplicate_groups=n_groups,
                         n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero,
                         kocc=kocc_all, rows=rows,
                         candidates={m: candidates_used(m, k, n, candidates) for m in reduce
                                     if m in ("mp", "mp_empiric")},
                         ids=None if meta.ids is None else meta.ids[rows],
                         texts=None if meta.texts is None else meta.texts[rows], label=space.label)


def knn_error_count(neigh: np.ndarray, codes: np.ndarray) -> int:
    """Errors of the leave-one-out majority vote of a block of rows: ``neigh`` (b, k) their
    neighbours' label codes (negative: no neighbour), ``codes`` (b,) their own; a tie between
    labels goes to the tied label whose nearest member ranks first (as :func:`knn_error`)."""
    b, k = neigh.shape
    neigh = np.where(neigh < 0, -1 - np.arange(k)[None, :], neigh)  # missing: each its own
    votes = np.zeros((b, k), dtype=np.int64)
    for j in range(k):
        votes[:, j] = (neigh == neigh[:, [j]]).sum(1)
    first = np.argmax(votes == votes.max(1, keepdims=True), axis=1)
    return int((neigh[np.arange(b), first] != codes).sum())


def _approximate_hubness(space, *, k, metric, hub_size, labels, nprobe,
                         target_recall=None) -> HubnessResult:
    """Reduction none on approximate neighbours, streamed (engine/ann.py): each query block's
    neighbours are folded into k-occurrence counts and k-NN errors; no N×k array is kept."""
    from geomkit.engine.ann import SpaceFeed, approximate_search
    from geomkit.engine.duplicates import count_duplicates
    from geomkit.errors import UsageError

    feed = SpaceFeed(space, metric, hashes=True)
    n = feed.n
    if not 1 <= k < n:
        raise UsageError(f"k = {k} must be between 1 and N - 1 = {n - 1}.")
    kocc = np.zeros(n, dtype=np.int64)
    errors = [0]
    codes = None
    if labels is not None:
        codes = np.unique(np.asarray(labels)[feed.rows].astype(str), return_inverse=True)[1]
        codes = codes.ravel().astype(np.int64)

    def fold(start, idx, dist):
        kocc[:] += np.bincount(idx[idx >= 0], minlength=n)
        if codes is not None:
            neigh = np.where(idx >= 0, codes[np.maximum(idx, 0)], -1)
            errors[0] += knn_error_count(neigh, codes[start:start + idx.shape[0]])

    res = approximate_search(feed, k, metric=metric, memory=space.memory, nprobe=nprobe,
                             target_recall=target_recall, seed=space.seed, on_block=fold, label=space.label)
    rows = feed.rows
    n_dup, n_groups = count_duplicates(np.concatenate(feed.hashes)) if feed.hashes else (0, 0)
    values = hubness_measures(kocc, k, hub_size)
    if codes is not None:
        values["knn_error"] = errors[0] / n
    meta = space.metadata
    return HubnessResult(k=k, metric=metric, n=n, methods={"none": values}, knn=res.info,
                         hub_size=hub_size, n_duplicates=n_dup, n_duplicate_groups=n_groups,
                         n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero,
                         kocc={"none": kocc}, rows=rows, candidates={},
                         ids=None if meta.ids is None else meta.ids[rows],
                         texts=None if meta.texts is None else meta.texts[rows],
                         label=space.label)


def _streams(space, max_bytes: int) -> bool:
    """The exact search streams from the source (:mod:`geomkit.engine.knn_stream`) when the
    passes run on Dask, or when the N×d matrix exceeds ``max_bytes`` or what this machine (or
    RLIMIT_AS) leaves for it (:func:`~geomkit.engine.knn_stream.in_memory_limit`)."""
    from geomkit.engine.knn_stream import in_memory_limit, matrix_bytes

    if getattr(space.executor, "name", "local") != "local":
        return True
    return matrix_bytes(space) > min(max_bytes, in_memory_limit())


def _streamed_hubness(space, *, k, metric, reduce, hub_size, labels, device,
                      max_bytes) -> HubnessResult:
    """Reduction none on the exact kNN streamed from the source: exact copies from a pass of
    row hashes, then one query pass (the space's executor: Dask tasks over parts of the rows)
    whose batches are folded into k-occurrence counts and k-NN errors; no N×k array is kept.
    The reductions need each item's distances to all others in memory, and are refused."""
    from geomkit.engine.duplicates import stream_duplicates
    from geomkit.engine.knn_stream import in_memory_limit, matrix_bytes, stream_knn
    from geomkit.errors import UsageError

    others = [m for m in reduce if m != "none"]
    if others:
        if getattr(space.executor, "name", "local") != "local":
            why = "the passes run on a Dask scheduler, where the exact search streams"
        else:
            why = (f"the {space.n_selected} x {space.d} matrix ({matrix_bytes(space) / 2**30:.2f}"
                   f" GiB) exceeds the {min(max_bytes, in_memory_limit()) / 2**30:.2f} GiB it may "
                   f"take in memory here")
        raise UsageError(f"hubness reduction {others[0]} needs the whole matrix in memory, but "
                         f"{why}; use the reduction none, or {{sample}} rows.")
    nonzero = metric == "cosine"
    dups = stream_duplicates(space, nonzero=nonzero, progress="hubness: duplicate rows")
    n = space.n
    if not 1 <= k < n:
        raise UsageError(f"k = {k} must be between 1 and N - 1 = {n - 1}.")
    rows = space.rows
    codes = None
    if labels is not None:
        codes = np.unique(np.asarray(labels)[rows].astype(str), return_inverse=True)[1]
        codes = codes.ravel().astype(np.int64)
    res = stream_knn(space, k, metric, duplicates=dups, codes=codes, device=device,
                     progress="hubness: exact kNN")
    n_dup, n_groups = dups.counts()
    values = hubness_measures(res.kocc, k, hub_size)
    if codes is not None:
        values["knn_error"] = res.errors / n
    meta = space.metadata
    return HubnessResult(k=k, metric=metric, n=n, methods={"none": values},
                         knn={"exact": True, "recall": None}, hub_size=hub_size,
                         n_duplicates=n_dup, n_duplicate_groups=n_groups,
                         n_dropped=space.n_dropped, n_dropped_zero=space.n_dropped_zero,
                         kocc={"none": res.kocc}, rows=rows, candidates={},
                         ids=None if meta.ids is None else meta.ids[rows],
                         texts=None if meta.texts is None else meta.texts[rows],
                         label=space.label)
