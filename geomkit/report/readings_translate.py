"""Tables and notes of ``geomkit translate fit`` and ``translate eval`` (a TranslateResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.translate import KEYS, TranslateResult
from geomkit.report.readings import notes_for, paired_items_frame, summary_for, tables_for
from geomkit.report.result import dropped_notes


@summary_for(TranslateResult)
def translate_summary(r: TranslateResult) -> list[dict]:
    row = {k: getattr(r, k) for k in KEYS if k != "unmatched"}
    row["evaluated_on"] = r.evaluated_on
    if r.confidence:
        row.update({f"confidence_{k}": v for k, v in r.confidence.items()})
    return [row]


@tables_for(TranslateResult)
def translate_tables(r: TranslateResult):
    if r.ranks is None:
        return []
    order = np.argsort(-r.ranks, kind="stable")[:10]
    return [("items translated worst (true target ranked lowest)",
             paired_items_frame(order, r.eval_rows_a, r.eval_rows_b, ids=r.ids, texts=r.texts,
                                rank=r.ranks, cosine=r.cosines))]


@notes_for(TranslateResult)
def translate_notes(r: TranslateResult) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    if r.method == "unsupervised":
        notes.append("unsupervised: no pair was used to fit the map (pairs, where known, only "
                     "evaluate it).")
        c = r.confidence or {}
        if c:
            agree = c.get("seed_agreement")
            notes.append(
                f"confidence without labels: {c['verdict']} — {100 * c['mutual_share']:.0f}% of "
                f"items have a mutual best match (≈ 70% even for unrelated spaces)"
                + (f"; {c['seeds']} seeds agree on {100 * agree:.0f}% of the matches (near 0 "
                   f"when the search failed)" if agree is not None else
                   "; run several --seeds to measure their agreement") + ".")
    if r.unmatched and (r.unmatched.get("a") or r.unmatched.get("b")):
        notes.append(f"{r.unmatched['a']} source and {r.unmatched['b']} target items have no "
                     f"partner by {r.pairs}.")
    if r.dims != "equal":
        notes.append(f"dimensions {r.d_src} -> {r.d_tgt}: {r.dims}.")
    if r.top1 is None:
        notes.append("no pairs are known, so the map is not evaluated.")
        return notes
    notes.append(f"evaluated on {r.evaluated_on} ({r.n_eval} items): the true target is the "
                 f"first of {r.n_eval} candidates for {100 * r.top1:.1f}% of items and among the "
                 f"first 10 for {100 * r.top10:.1f}%; mean rank {r.mean_rank:.1f} (random: "
                 f"{r.random_rank:.1f}); mean cosine to the true target {r.mean_cosine:.3f} "
                 f"({r.retrieval} retrieval).")
    if r.anchors:
        an = r.anchors
        notes.append(f"relative representations over {an['anchors']} parallel anchors (no map): "
                     f"top-1 {100 * an['top1']:.1f}%, mean rank {an['mean_rank']:.1f} on "
                     f"{an['items']} of the same items.")
    return notes
