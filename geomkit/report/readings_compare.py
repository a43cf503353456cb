"""Tables and notes of ``geomkit compare`` (a CompareResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.compare import KEYS, CompareResult
from geomkit.report.readings import notes_for, paired_items_frame, summary_for, tables_for
from geomkit.report.result import dropped_notes


@summary_for(CompareResult)
def compare_summary(r: CompareResult) -> list[dict]:
    return [{k: getattr(r, k) for k in KEYS}]


@tables_for(CompareResult)
def compare_tables(r: CompareResult):
    order = np.argsort(r.jaccard, kind="stable")[:10]
    return [("items whose neighbourhoods differ most",
             paired_items_frame(order, r.rows_a, r.rows_b, ids=r.ids, texts=r.texts,
                                knn_shared=r.shared, knn_jaccard=r.jaccard))]


@notes_for(CompareResult)
def compare_notes(r: CompareResult) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    notes.append(f"{r.n} items paired by {r.pairs}"
                 + (f" ({r.unmatched['a']} of A and {r.unmatched['b']} of B without a partner)"
                    if r.unmatched.get("a") or r.unmatched.get("b") else "") + ".")
    if r.knn_items < r.n:
        notes.append(f"CKA and the spectra use all {r.n} pairs; the k-NN metrics, the RSA and the "
                     f"per-item overlaps a seeded sample of {r.knn_items} (neighbours found among "
                     f"the sampled items; --knn-items).")
    if not r.knn.get("exact", True):
        a, b = r.knn["a"], r.knn["b"]
        notes.append(f"approximate neighbours over all {r.n} pairs (faiss {a['index']} / "
                     f"{b['index']}, more than --knn-items pairs); recall@{r.k} on a sample = "
                     f"{a['recall']:.3f} (A), {b['recall']:.3f} (B).")
    notes.append(f"linear CKA {r.cka_linear:.3f} (1 for spaces equal up to rotation and scale, "
                 f"≈ 0 for unrelated ones); unbiased CKA {r.cka_unbiased:.3f}; CKNNA "
                 f"{r.cknna:.3f} (CKA on each item's {r.k} nearest neighbours only).")
    notes.append(f"on average {100 * r.mutual_knn:.0f}% of an item's {r.k} nearest neighbours are "
                 f"the same in both spaces (chance: {100 * r.k / max(r.knn_items - 1, 1):.1f}%); "
                 f"pairwise similarities correlate with Spearman ρ = {r.similarity_spearman:.3f} "
                 f"({r.rsa_sample} items).")
    if r.anchors:
        an = r.anchors
        notes.append(f"relative representations over {an['anchors']} parallel anchors agree with "
                     f"mean cosine {an['mean_cosine']:.3f}; an item's own partner is the best "
                     f"match for {100 * an['top1']:.1f}% of {an['items']} items (mean rank "
                     f"{an['mean_rank']:.1f}, random {an['random_rank']:.1f}).")
    return notes
