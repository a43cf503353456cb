"""Tables, notes and CSV rows of ``geomkit intdim`` (an IntdimResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.intdim import IntdimResult
from geomkit.report.readings import notes_for, tables_for
from geomkit.report.result import dropped_notes


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "null"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


@tables_for(IntdimResult)
def intdim_tables(r):
    import pandas as pd

    p = r.params
    rows = []
    if r.twonn is not None or "twonn" in p["estimators"]:
        rows.append({"estimator": "twonn", "value": r.twonn,
                     "parameters": f"{p['twonn_fit']} fit, discard {p['discard_fraction']:g}"})
    if "mle" in p["estimators"]:
        rows.append({"estimator": "mle", "value": r.mle,
                     "parameters": f"k = {r.k}, average {p['mle_comb']}"
                                   + (" (unbiased k-2)" if p["unbiased"] else "")})
    if "gride" in p["estimators"]:
        err = r.details.get("gride_error")
        rows.append({"estimator": "gride", "value": r.gride,
                     "parameters": f"n1 = {p['gride_n1']}, n2 = {p['gride_n2']}"
                                   + (f", standard error {err:.3g}" if err is not None else "")})
    if "lpca" in p["estimators"]:
        rows.append({"estimator": "lpca", "value": r.lpca,
                     "parameters": f"components explaining {p['variance']:g} of the variance"})
    rows.append({"estimator": "lid (local MLE)", "value": r.lid["mean"],
                 "parameters": f"mean over items, k = {r.k}; median {_fmt(r.lid['median'])}, "
                               f"p95 {_fmt(r.lid['p95'])}"})
    tables = [("estimators", pd.DataFrame(rows))]
    rules = r.details.get("lpca_rules")
    if rules:
        tables.append(("lPCA rules", pd.DataFrame([
            {"rule": f"variance share {p['variance']:g}", "value": rules["ratio"]},
            {"rule": "Fukunaga-Olsen (λ > 0.05·λ1)", "value": rules["fo"]},
            {"rule": "participation ratio (Σλ)²/Σλ²", "value": rules["participation_ratio"]}])))
    if r.gride_scales:
        tables.append(("GRIDE against scale", pd.DataFrame(r.gride_scales)))
    if r.hubness is not None:
        tables.append(("LID and k-occurrence", pd.DataFrame([r.hubness])))
    if r.lid_values is not None and r.lid_values.size:
        pick = highest_lid(r, 10)
        frame = pd.DataFrame({"row": r.rows[pick], "lid": r.lid_values[pick]})
        if r.ids is not None:
            frame.insert(1, "id", r.ids[pick])
        if r.kocc is not None:
            frame["k_occurrence"] = r.kocc[pick]
        if r.texts is not None:
            frame["text"] = r.texts[pick]
        tables.append(("highest local ID (LID) items", frame))
    return tables


def highest_lid(r: IntdimResult, count: int) -> np.ndarray:
    """Positions of the distinct items with the highest LID (infinite first), highest first."""
    pos = r.distinct_positions()
    values = np.nan_to_num(r.lid_values[pos], nan=-np.inf)
    return pos[np.argsort(-values, kind="stable")[:count]]


@notes_for(IntdimResult)
def intdim_notes(r):
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    if r.n_duplicates:
        notes.append(f"{r.n_duplicates} rows are exact copies of an earlier row: a copy is at "
                     f"distance 0 from its twin, so r2/r1 and log(r_k/r_j) are infinite. TwoNN, "
                     f"MLE, GRIDE and LID use the {r.n_distinct} distinct rows (each copy gets "
                     f"its twin's LID); lPCA counts every row. scikit-dimension drops such "
                     f"items from TwoNN and GRIDE only and its MLE returns 0.")
    if not r.knn.get("exact", True):  # approximate neighbours (issue 17)
        notes.append(f"approximate neighbours (faiss {r.knn.get('index')}, nprobe "
                     f"{r.knn.get('nprobe')} of {r.knn.get('nlist')} lists); recall@"
                     f"{r.knn.get('k_searched')} on a sample of {r.knn.get('recall_sample')} "
                     f"rows = {r.knn['recall']:.3f}. A missed neighbour is replaced by a farther "
                     f"one, which biases TwoNN, MLE, GRIDE and LID low (docs/intdim.md).")
    values = {name: getattr(r, name) for name in ("twonn", "mle", "gride")
              if getattr(r, name) is not None}
    if values:
        text = ", ".join(f"{name} {value:.2f}" for name, value in values.items())
        notes.append(f"Nonlinear estimates: {text} — about how many directions the data "
                     f"spreads along locally, out of d = {r.d}.")
    if r.lpca is not None:
        notes.append(f"lPCA: {r.lpca} principal components explain "
                     f"{r.params['variance']:g} of the variance — the dimension of the linear "
                     f"span, an upper bound on a curved manifold's dimension.")
        nonlinear = [v for v in values.values()]
        if nonlinear and r.lpca > 2 * max(nonlinear):
            notes.append("lPCA is more than twice the nonlinear estimates: the data lies on a "
                         "curved (or clustered) low-dimensional set inside a wider linear span; "
                         "a PCA to the lPCA size keeps it, a smaller linear projection would not.")
    if r.gride_scales:
        ids = [s["id"] for s in r.gride_scales]
        notes.append(f"GRIDE against scale goes from {ids[0]:.2f} (n1 = 1) to {ids[-1]:.2f} "
                     f"(n1 = {r.gride_scales[-1]['n1']}): an ID that drops as the scale grows "
                     f"means noise dimensions at the smallest scales; a plateau is the manifold "
                     f"dimension.")
    if r.details.get("lid_infinite"):
        notes.append(f"{r.details['lid_infinite']} items have all k neighbours at one distance "
                     f"(tied distances): their LID is infinite and left out of the LID summary.")
    if r.hubness is not None and r.hubness.get("spearman") is not None:
        rho = r.hubness["spearman"]
        notes.append(f"Spearman correlation of LID with k-occurrence (k = {r.k}, euclidean): "
                     f"{rho:.2f}" + (" — hubs sit where the local dimension is low."
                                     if rho < -0.2 else
                                     " — hubs sit where the local dimension is high."
                                     if rho > 0.2 else " — little relation."))
    if r.n_distinct < 20 * max(r.k, 1):
        notes.append(f"Only {r.n_distinct} distinct items for k = {r.k}: neighbour-based "
                     f"estimates are biased low when N is not much larger than 10^(ID/2).")
    return notes
