"""Tables and notes of ``geomkit infogain`` (an InfogainResult)."""

from __future__ import annotations

from geomkit.analysis.infogain import MIN_FIT_WORDS, InfogainResult
from geomkit.report.readings import notes_for, tables_for
from geomkit.report.result import dropped_notes


@tables_for(InfogainResult)
def infogain_tables(r):
    frame = r.per_item()
    scope = "corpus"
    if r.document_counts is not None:
        frame["count"] = r.document_counts
        scope = "document"
    frame["keyness"] = frame["count"] * frame["kl"]
    top = frame[frame["count"] > 0].sort_values("keyness", ascending=False, kind="stable")
    tables = [(f"{scope} keywords (n_w·KL, top {r.keywords})",
               top.head(r.keywords)[["word", "count", "kl", "keyness"]])]
    frame = r.per_item()
    tables.append(("largest ΔKL", frame.sort_values("delta_kl", ascending=False,
                                                   kind="stable").head(r.keywords)))
    return tables


@notes_for(InfogainResult)
def infogain_notes(r):
    notes = [f"mutual information (frequency-weighted mean KL) = {r.mutual_information:.4f} nats."]
    notes += dropped_notes(r.n_dropped, r.n_dropped_zero)
    if r.fits:
        raw = r.fits["raw"]
        if raw["r2"] is not None:
            notes.append(f"‖u‖² vs KL on {r.n_fit_words} words: R² = {raw['r2']:.3f}, slope "
                         f"{raw['slope']:.3f}, Spearman {raw['spearman']:.3f} (paper, text8 "
                         f"skip-gram, n_w > 1000: R² = 0.831).")
        else:
            notes.append(f"‖u‖² vs KL is not fitted: {r.n_fit_words} words have an embedding "
                         f"and n_w above the fit threshold; at least {MIN_FIT_WORDS} are "
                         f"needed (lower the threshold or use a larger corpus).")
    return notes
