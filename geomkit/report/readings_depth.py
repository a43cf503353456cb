"""Tables and notes of ``geomkit depth`` (a DepthResult)."""

from __future__ import annotations

import numpy as np

from geomkit.analysis.depth import WEAK_DIRECTION, DepthResult
from geomkit.report.readings import notes_for, tables_for
from geomkit.report.result import dropped_notes


@tables_for(DepthResult)
def depth_tables(r):
    tables = []
    for which in ("ref", "test"):
        if which == "test" and r.test_depth is None:
            continue
        frame = r._frame(which).drop(columns=["corpus"])
        order = np.argsort(frame["depth"].to_numpy(), kind="stable")
        k = min(5, order.size)
        tables.append((f"{which}: most central", frame.iloc[order[::-1][:k]]))
        tables.append((f"{which}: most outlying", frame.iloc[order[:k]]))
    return tables


@notes_for(DepthResult)
def depth_notes(r):
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    if r.depth == "cosine" and r.ref_mean_direction_norm < WEAK_DIRECTION:
        notes.append(f"REF's mean direction is weak (‖m̄‖ = {r.ref_mean_direction_norm:.3f}): "
                     f"cosine depth orders items along m̄ only, so it has little power here "
                     f"(all depths ≈ 1); use --depth spatial, which is centre-outward.")
    if r.test_depth is not None:
        t = r.test
        direction = {"greater": "TEST more outlying than REF", "less": "TEST deeper than REF",
                     "two-sided": "a difference in depth"}[t["alternative"]]
        notes.append(f"rank-sum W = {t['W']:.3f}, p = {t['p']:.3g} for H1: {direction}; "
                     f"Q (Liu & Singh) = {t['q_liu_singh']:.3f} (0.5 under H0); "
                     f"Cliff's delta = {t['effect_size']:.3f}.")
    return notes
