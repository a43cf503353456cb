"""Tables, notes and CSV rows of ``geomkit norms`` (a NormsResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.norms import MAD_RULE, NormsResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes, flatten


@summary_for(NormsResult)
def norms_summary_rows(r):
    row = {k: v for k, v in flatten(r.to_dict()).items() if not isinstance(v, list)}
    return [row]


def _item_frame(r, order):
    import pandas as pd
    frame = pd.DataFrame({"row": order if r.rows is None else r.rows[order],
                          "norm": r.norms[order]})
    if r.ids is not None:
        frame["id"] = r.ids[order]
    if r.log_likelihood is not None:
        frame["log_likelihood"] = r.log_likelihood[order]
    if r.texts is not None:
        frame["text"] = r.texts[order]
    return frame


@tables_for(NormsResult)
def norms_tables(r):
    import pandas as pd
    tables = []
    if r.groups:
        tables.append(("groups", pd.DataFrame([{k: v for k, v in g.items() if k != "quantiles"}
                                               for g in r.groups])))
    if r.frequency:
        tables.append(("norm by log2 frequency bin", pd.DataFrame(r.frequency["bins"])))
    order = np.argsort(r.norms, kind="stable")
    k = min(5, order.size)
    tables.append(("largest norms", _item_frame(r, order[::-1][:k])))
    tables.append(("smallest norms", _item_frame(r, order[:k])))
    if r.log_likelihood is not None:
        tables.append(("least likely items (whitened norm)",
                       _item_frame(r, np.argsort(r.log_likelihood, kind="stable")[:k])))
    if r.delta_norm_sq is not None:
        top = np.argsort(-r.delta_norm_sq, kind="stable")[:10]
        frame = _item_frame(r, top)
        frame.insert(2, "delta_norm_sq", r.delta_norm_sq[top])
        frame.insert(2, "count", r.counts[top])
        tables.append(("largest frequency-debiased Δ‖u‖²", frame))
    return tables


@notes_for(NormsResult)
def norms_notes(r):
    s = r.summary
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    notes += [f"norms {s['mean']:.4g} ± {s['std']:.3g} (cv {s['cv']:.3f}); {s['n_outliers']} robust "
             f"outliers (|norm − median| > {MAD_RULE}·1.4826·MAD)." if s["cv"] is not None else
             "all norms are zero."]
    if s["cv"] is not None and s["cv"] < 1e-4:
        notes.append("all vectors have (almost) the same norm: the dump was L2-normalised, so "
                     "length carries no information here.")
    if r.imbalance is not None and r.imbalance > 1.5:
        notes.append(f"group mean norms differ by a factor {r.imbalance:.2f}: in a shared space "
                     f"the larger-norm group dominates dot-product scores (norm imbalance).")
    if r.frequency:
        notes.append(f"Spearman(norm, log frequency) = {r.frequency['spearman']:.3f}.")
    return notes
