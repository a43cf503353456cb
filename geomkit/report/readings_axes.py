"""Tables and notes of ``geomkit axes`` (AxisFit, RankabilityResult, ProjectionResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.axes import AxisFit, ProjectionResult, RankabilityResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes, flatten


def _missing(r) -> list[str]:
    return ([f"{r.n_missing} rows have no finite value of '{r.attribute}' and were left out."]
            if r.n_missing else [])


@notes_for(AxisFit)
def fit_notes(r: AxisFit) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero) + _missing(r)
    if r.fit_spearman is not None:
        notes.append(f"Spearman ρ on the {r.n} training items themselves: {r.fit_spearman:.3f} "
                     f"(optimistic: use axes score for held-out rankability).")
    return notes


@summary_for(RankabilityResult)
def rankability_summary(r: RankabilityResult) -> list[dict]:
    row = {k: v for k, v in flatten(r.to_dict()).items() if not isinstance(v, list)}
    lo, hi = r.spearman_ci
    row["spearman_ci_low"], row["spearman_ci_high"] = lo, hi
    return [row]


@tables_for(RankabilityResult)
def rankability_tables(r: RankabilityResult):
    import pandas as pd

    tables = [("sample efficiency (Spearman on the other labelled items)", pd.DataFrame(r.shots))]
    order = np.argsort(-r.scores, kind="stable")
    k = min(5, order.size)
    for title, pick in (("highest held-out scores", order[:k]), ("lowest held-out scores",
                                                                 order[::-1][:k])):
        frame = pd.DataFrame({"row": r.rows[pick], "attribute": r.values[pick],
                              "score": r.scores[pick]})
        if r.ids is not None:
            frame.insert(1, "id", r.ids[pick])
        if r.texts is not None:
            frame["text"] = r.texts[pick]
        tables.append((title, frame))
    return tables


@notes_for(RankabilityResult)
def rankability_notes(r: RankabilityResult) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero) + _missing(r)
    null = r.random_null
    if r.spearman is None:
        return notes + ["Spearman ρ is undefined: a fold's attribute or scores were constant."]
    lo, hi = r.spearman_ci
    ci = f" (95% interval {lo:.3f}–{hi:.3f} from the spread of the {r.folds} folds)" \
        if lo is not None else ""
    notes.append(f"{r.method} axis, {r.folds}-fold cross-validation: Spearman ρ = "
                 f"{r.spearman:.3f}{ci} on held-out items.")
    verdict = ("beats" if null["p_value"] is not None and null["p_value"] < 0.05
               else "does not beat")
    notes.append(f"It {verdict} random directions: their cross-validated ρ averages "
                 f"{null['mean']:.3f}, 95th "
                 f"percentile {null['p95']:.3f}; p = {null['p_value']:.3g} "
                 f"({null['n_directions']} directions).")
    if r.upper_bound_spearman is not None:
        notes.append(f"k-NN regression (k = 10, cosine, same folds) reaches ρ = "
                     f"{r.upper_bound_spearman:.3f}: what a nonlinear read-out gets.")
    two = next((s for s in r.shots if s["method"] == "two extremes"), None)
    if two is not None and two["spearman_mean"] is not None:
        share = two["spearman_mean"] / r.spearman if r.spearman > 0 else float("nan")
        notes.append(f"The two most extreme items alone give ρ = {two['spearman_mean']:.3f} "
                     f"({100 * share:.0f}% of the cross-validated ρ).")
    return notes


@tables_for(ProjectionResult)
def projection_tables(r: ProjectionResult):
    import pandas as pd

    tables = [("axes", pd.DataFrame(r.summary))]
    order = np.argsort(-r.scores[:, 0], kind="stable")
    frame = pd.DataFrame({"row": r.rows[order], "score": r.scores[order, 0]})
    if r.ids is not None:
        frame.insert(1, "id", r.ids[order])
    if r.values is not None:
        frame["attribute"] = r.values[order]
    if r.texts is not None:
        frame["text"] = r.texts[order]
    tables.append(("ranked items (first axis)", frame))
    return tables


@notes_for(ProjectionResult)
def projection_notes(r: ProjectionResult) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    for a in r.summary:
        if a.get("spearman") is not None:
            notes.append(f"{a['file']}: Spearman ρ with {r.attribute} = {a['spearman']:.3f} "
                         f"over all items (including any the axis was fitted on).")
    return notes
