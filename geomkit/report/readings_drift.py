"""Tables and notes of ``geomkit drift`` (a DriftResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.drift import TOP_ITEMS, DriftResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes

# per test: the per-item value of NEW's items, and whether the largest (True) or the smallest
# value marks the items most responsible for the drift
ITEM_VALUES = {"depth": ("depth", False, "lowest depth w.r.t. REF"),
               "mmd": ("witness", True, "highest MMD witness (denser in NEW than in REF)"),
               "classifier": ("classifier_score", True, "most confidently told NEW")}


def test_rows(r: DriftResult) -> list[dict]:
    rows = []
    for name, t in r.tests.items():
        rows.append({"test": name, "statistic": t["statistic"], "p_value": t["p_value"],
                     "effect_size": t["effect_size"], "drift": t["drift"],
                     "n_ref_used": t.get("n_ref_used"), "n_new_used": t.get("n_new_used")})
    return rows


@summary_for(DriftResult)
def drift_summary(r):
    rows = test_rows(r)
    rows.append({"test": "overall", "drift": r.drift, "n_ref_used": r.n_ref,
                 "n_new_used": r.n_new})
    return rows


def responsible_items(r: DriftResult, name: str, k: int = TOP_ITEMS):
    """The ``k`` items of NEW most responsible for the drift by one test's per-item value."""
    import pandas as pd

    column, largest, _ = ITEM_VALUES[name]
    rows, values = r.items[name]
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(-values if largest else values, kind="stable")[:k]
    frame = pd.DataFrame({"row": rows[order], column: values[order]})
    meta = r.new_meta
    if meta is not None and meta.ids is not None:
        frame.insert(1, "id", meta.ids[rows[order]])
    if meta is not None and meta.texts is not None:
        frame["text"] = meta.texts[rows[order]]
    return frame


@tables_for(DriftResult)
def drift_tables(r):
    import pandas as pd

    tables = [("tests", pd.DataFrame(test_rows(r)))]
    for name in ITEM_VALUES:
        if name in r.items:
            tables.append((f"NEW: {ITEM_VALUES[name][2]} ({name})", responsible_items(r, name)))
    return tables


def _words(name: str, t: dict) -> str:
    p = t["p_value"]
    if name == "depth":
        return (f"depth: rank-sum W = {t['statistic']:.3f}, p = {p:.3g}, Cliff's delta = "
                f"{t['effect_size']:.3f} (positive: NEW more outlying than REF).")
    if name == "mmd":
        how = ("exact kernel" if t["estimator"] == "exact" else
               f"random Fourier features ({t['features']} features, an approximate kernel)")
        return (f"mmd: MMD² = {t['statistic']:.4g} (σ = {t['sigma']:.4g}, {t['sigma_from']}; "
                f"{how}), p = {p:.3g} from {t['permutations']} permutations.")
    if name == "classifier":
        return (f"classifier: held-out ROC AUC = {t['auc']:.3f} (0.5 = REF and NEW "
                f"indistinguishable; {t['n_test']} held-out rows), p = {p:.3g}; {t['folds']}-fold "
                f"out-of-fold AUC {t['auc_cv']:.3f} ± {t['auc_cv_delong_se']:.3f} (DeLong SE).")
    if name == "ks":
        return (f"ks: {t['n_drifted']} of {t['n_dims']} {t['basis']} drifted after "
                f"Benjamini–Hochberg (share {t['share_drifted']:.3f}); largest KS D = "
                f"{t['statistic']:.3f}; global p (Simes) = {p:.3g}.")
    cos = "n/a" if t["cosine"] is None else f"{t['cosine']:.4g}"
    return (f"mean: ‖μ_NEW − μ_REF‖ = {t['euclidean']:.4g} ({t['effect_size']:.3g} × REF's RMS "
            f"spread), cosine distance {cos}; p = {p:.3g} against {t['bootstraps']} bootstrap "
            f"resamples of REF.")


@notes_for(DriftResult)
def drift_notes(r):
    drifted = [k for k, t in r.tests.items() if t["drift"]]
    verdict = ("DRIFT: NEW does not look like a draw from REF's distribution" if r.drift else
               "no drift detected")
    notes = [f"{verdict} ({r.rule}). Tests with p ≤ {r.alpha:g} on their own: "
             f"{', '.join(drifted) if drifted else 'none'}."]
    notes += [_words(name, t) for name, t in r.tests.items()]
    sampled = {(t.get("n_ref_used"), t.get("n_new_used")) for k, t in r.tests.items()
               if k != "depth"}
    for n_ref, n_new in sorted(sampled, key=str):
        if (n_ref, n_new) != (r.n_ref, r.n_new):
            notes.append(f"some tests ran on a seeded sample of {n_ref} REF and {n_new} NEW rows "
                         f"(of {r.n_ref} and {r.n_new}); see n_ref_used / n_new_used.")
    if r.tests.get("depth", {}).get("weak_mean_direction"):
        notes.append("REF's mean direction is weak: cosine depth has little power here (the "
                     "other tests do not depend on it).")
    return notes + dropped_notes(r.n_dropped, r.n_dropped_zero)
