"""Tables, notes and CSV rows of ``geomkit hubness`` (a HubnessResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.hubness import HubnessResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes


@summary_for(HubnessResult)
def hubness_summary_rows(r):
    return [{"method": m, **v} for m, v in r.methods.items()]


@tables_for(HubnessResult)
def hubness_tables(r):
    import pandas as pd
    tables = [("measures per method", pd.DataFrame(r.summary_rows()))]
    base = r.kocc.get("none", next(iter(r.kocc.values())))
    tables.append(("top hubs", _items(r, np.argsort(-base, kind="stable")[:10], base)))
    anti = np.flatnonzero(base == 0)[:10]
    if anti.size:
        tables.append(("antihubs (never a neighbour)", _items(r, anti, base)))
    return tables


def _items(r, pick, kocc):
    import pandas as pd
    frame = pd.DataFrame({"row": r.rows[pick], "k_occurrence": kocc[pick]})
    if r.ids is not None:
        frame["id"] = r.ids[pick]
    if r.texts is not None:
        frame["text"] = r.texts[pick]
    return frame


@notes_for(HubnessResult)
def hubness_notes(r):
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    if r.n_duplicates:
        notes.append(f"{r.n_duplicates} rows are exact copies of another row "
                     f"({r.n_duplicate_groups} groups): copies are each other's nearest "
                     f"neighbours at distance 0 (ties go to the lower row), so a group of "
                     f"more than k copies fills its members' lists and inflates the "
                     f"k-occurrence of its first members (the reductions keep copies at "
                     f"reduced distance 0 too, using the limits of their definitions where "
                     f"a local scale is 0); deduplicate to measure the space itself.")
    for m, used in r.candidates.items():
        if used is not None and used == r.n - 1:
            notes.append(f"{m}: candidate lists hold all {used} other items (the data has "
                         f"fewer items than the lists asked for), i.e. the all-items method.")
    base = r.methods.get("none")
    if base:
        notes.append(f"{base['n_hubs']} hubs (k-occurrence ≥ {r.hub_size:g}·k) and "
                     f"{base['n_antihubs']} antihubs among {r.n} items; k-skewness "
                     f"{_skew(base)} (0 for a symmetric k-occurrence distribution).")
    if any(v["k_skewness"] is None for v in r.methods.values()):
        notes.append("k-skewness is undefined (null) where every item has the same "
                     "k-occurrence: no hubness at all.")
    for m, v in r.methods.items():
        if m != "none" and base:
            notes.append(f"{m}: k-skewness {_skew(base)} -> {_skew(v)}, "
                         f"Robin Hood {base['robinhood']:.3f} -> {v['robinhood']:.3f}"
                         + (f", k-NN error {base['knn_error']:.3f} -> {v['knn_error']:.3f}"
                            if "knn_error" in v else "") + ".")
    if not r.knn["exact"]:
        notes.append(approximate_note(r.knn, r.k))
    return notes


def _skew(values: dict) -> str:
    return "undefined" if values["k_skewness"] is None else f"{values['k_skewness']:.2f}"


def approximate_note(knn: dict, k: int) -> str:
    """One sentence on an approximate search: index, lists, how nprobe was set, measured recall."""
    tuning = knn.get("nprobe_tuning")
    how = (f"tuned: the fewest reaching recall {tuning['target']} on {tuning['sample']} seeded "
           f"queries" if tuning else "as given")
    text = (f"approximate neighbours (faiss {knn.get('index', 'IVF')}, {knn.get('nlist')} lists, "
            f"nprobe {knn.get('nprobe')} {how}); recall@{k} on "
            f"{knn.get('recall_sample')} other seeded queries = {knn['recall']:.3f}")
    if tuning and knn["recall"] < tuning["target"]:
        text += f", below the target {tuning['target']}"
    if knn.get("sq8_memory"):
        text += (f". PQ codes are re-ranked from rows read back for each query block (about one "
                 f"read of the dump per block: slow on large dumps); --memory "
                 f"{-(-knn['sq8_memory'] // 2**20)}MB holds 8-bit codes (IVF-SQ8)")
    return text + "."
