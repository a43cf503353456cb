"""Tables and notes of ``geomkit compare`` (a CompareResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.compare import KEYS, CompareResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes


@summary_for(CompareResult)
def compare_summary(r: CompareResult) -> list[dict]:
    return [{k: getattr(r, k) for k in KEYS}]


@tables_for(CompareResult)
def compare_tables(r: CompareResult):
    import pandas as pd

    order = np.argsort(r.jaccard, kind="stable")[:10]
    frame = pd.DataFrame({"row": r.rows_a[order], "row_b": r.rows_b[order],
                          "knn_shared": r.shared[order], "knn_jaccard": r.jaccard[order]})
    if r.ids is not None:
        frame.insert(1, "id", r.ids[order])
    if r.texts is not None:
        frame["text"] = r.texts[order]
    return [("items whose neighbourhoods differ most", frame)]


@notes_for(CompareResult)
def compare_notes(r: CompareResult) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    notes.append(f"{r.n} items paired by {r.pairs}"
                 + (f" ({r.unmatched['a']} of A and {r.unmatched['b']} of B without a partner)"
                    if r.unmatched.get("a") or r.unmatched.get("b") else "") + ".")
    notes.append(f"linear CKA {r.cka_linear:.3f} (1 for spaces equal up to rotation and scale, "
                 f"≈ 0 for unrelated ones); unbiased CKA {r.cka_unbiased:.3f}; CKNNA "
                 f"{r.cknna:.3f} (CKA on each item's {r.k} nearest neighbours only).")
    notes.append(f"on average {100 * r.mutual_knn:.0f}% of an item's {r.k} nearest neighbours are "
                 f"the same in both spaces (chance: {100 * r.k / max(r.n - 1, 1):.1f}%).")
    return notes
