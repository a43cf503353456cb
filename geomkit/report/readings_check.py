"""Tables and notes of ``geomkit check`` (a CheckResult)."""

from __future__ import annotations

from geomkit.analysis.check import CheckResult
from geomkit.report.readings import notes_for, summary_for, tables_for
from geomkit.report.result import dropped_notes


@summary_for(CheckResult)
def check_summary(r: CheckResult) -> list[dict]:
    return [{"rule": row["rule"], "value": row["value"], "passed": row["passed"]}
            for row in r.to_dict()["rules"]]


@tables_for(CheckResult)
def check_tables(r: CheckResult):
    import pandas as pd

    rows = r.to_dict()["rules"]
    return [("rules", pd.DataFrame({"rule": [x["rule"] for x in rows],
                                    "value": [x["value"] for x in rows],
                                    "result": ["pass" if x["passed"] else "FAIL" for x in rows]}))]


@notes_for(CheckResult)
def check_notes(r: CheckResult) -> list[str]:
    notes = dropped_notes(r.n_dropped, r.n_dropped_zero)
    failed = [x for x in r.to_dict()["rules"] if not x["passed"]]
    if not failed:
        notes.append(f"all {len(r.rules)} rules hold.")
    for x in failed:
        value = "no value" if x["value"] is None else f"{x['value']:.6g}"
        notes.append(f"FAILED: {x['rule']} (value: {value}).")
    return notes
