"""Tables, notes and CSV rows of ``geomkit info`` (an InfoResult)."""

from __future__ import annotations

from geomkit.io.inspect import InfoResult
from geomkit.report.readings import notes_for, summary_for, tables_for


@summary_for(InfoResult)
def info_summary_rows(r) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items()
             if k not in ("tree", "metadata", "attrs")}]


@tables_for(InfoResult)
def info_tables(r):
    import pandas as pd
    rows = [{"path": e["path"], "kind": e["kind"],
             "shape": "x".join(map(str, e["shape"])) if e.get("shape") is not None else "",
             "dtype": e.get("dtype", ""),
             "chunks": "x".join(map(str, e["chunks"])) if e.get("chunks") else "",
             "attrs": ", ".join(f"{k}={v}" for k, v in e.get("attrs", {}).items())
             or e.get("target", "")}
            for e in r.tree]
    return [("contents", pd.DataFrame(rows))]


@notes_for(InfoResult)
def info_notes(r) -> list[str]:
    notes = []
    if r.problem:
        notes.append(r.problem)
    if r.stats.get("nonfinite_rows"):
        notes.append(f"{r.stats['nonfinite_rows']} rows contain NaN/Inf: analyses fail unless "
                     f"--drop-nonfinite is given.")
    if r.stats.get("duplicate_rows"):
        notes.append(f"{r.stats['duplicate_rows']} rows repeat another row exactly "
                     f"({r.stats['duplicate_groups']} groups): neighbour-based measures "
                     f"(hubness, depth) see each group as a cluster at distance 0.")
    if r.stats.get("zero_rows"):
        notes.append(f"{r.stats['zero_rows']} rows are all zero: cosine-based analyses refuse them.")
    if r.stats and not r.stats.get("scanned"):
        notes.append("The rows were not read: --scan checks every row for NaN/Inf, zero "
                     "vectors and exact duplicates, and reports the norm range.")
    elif r.layer is not None:
        notes.append(f"Row checks are for layer {r.layer} of the stack (choose with --layer).")
    return notes
