"""Tables, notes and CSV rows of ``geomkit isotropy`` (an IsotropyResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.isotropy import IsotropyResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes, flatten


@summary_for(IsotropyResult)
def isotropy_summary_rows(r):
    if r.after is None:
        return [flatten(r.values())]
    return [{"space": "raw", **flatten(r.values())},
            {"space": r.transform, **flatten(r.after.values())}]


@tables_for(IsotropyResult)
def isotropy_tables(r):
    import pandas as pd
    tables = []
    if r.after is not None:
        tables.append((f"before / after {r.transform}", pd.DataFrame(r.summary_rows())))
    if r.conformity is not None and r.conformity.size:
        order = np.argsort(r.conformity, kind="stable")
        k = min(5, order.size)
        pick = np.concatenate([order[::-1][:k], order[:k]])
        frame = pd.DataFrame({"item": ["most conforming"] * k + ["least conforming"] * k,
                              "row": pick if r.rows is None else r.rows[pick],
                              "conformity": r.conformity[pick],
                              "norm": r.norms[pick]})
        if r.ids is not None:
            frame.insert(2, "id", r.ids[pick])
        if r.texts is not None:
            frame["text"] = r.texts[pick]
        tables.append(("most and least conforming items", frame))
    return tables


@notes_for(IsotropyResult)
def isotropy_notes(r) -> list[str]:
    return reading(r)


def reading(r: IsotropyResult) -> list[str]:
    """A plain-words reading of the numbers."""
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    if r.n < r.d:
        notes.append(f"N = {r.n} < d = {r.d}: plain IsoScore is unreliable (the covariance has rank "
                     f"< d); IsoScore* with zeta = {r.zeta} toward {r.c0_label} is reported.")
    elif r.isoscore_star is not None:
        notes.append(f"IsoScore* uses zeta = {r.zeta} toward {r.c0_label}.")
    if r.avg_cosine is not None and r.mean_norm_ratio is not None:
        if r.avg_cosine > 0.3 and r.mean_norm_ratio > 0.4:
            notes.append(f"avg cosine {r.avg_cosine:.2f} is driven by a common mean direction "
                         f"(‖mean‖/mean‖x‖ = {r.mean_norm_ratio:.2f}); IsoScore, which ignores the mean, "
                         f"is {r.isoscore:.3f}. Centring removes most of the cosine anisotropy.")
        elif r.avg_cosine > 0.3:
            notes.append(f"avg cosine {r.avg_cosine:.2f} is high although the mean is small.")
    if r.isoscore is not None and np.isfinite(r.isoscore):
        used = 1 + r.isoscore * (r.d - 1)
        notes.append(f"IsoScore {r.isoscore:.3f}: the variance spreads about as evenly as over "
                     f"{used:.0f} of {r.d} equally used dimensions; the top component carries "
                     f"{100 * r.top_pc_share['top1']:.1f}% of the variance, the top 10 "
                     f"{100 * r.top_pc_share['top10']:.1f}%.")
    if r.uniformity_rows and r.uniformity_rows < r.n:
        notes.append(f"uniformity is computed exactly over a random sample of {r.uniformity_rows} rows "
                     f"(all pairs of the sample).")
    if r.after is not None:
        a = r.after
        notes.append(f"after {r.transform}: IsoScore {r.isoscore:.3f} -> {a.isoscore:.3f}, "
                     f"avg cosine {r.avg_cosine:.3f} -> {a.avg_cosine:.3f}.")
    return notes
