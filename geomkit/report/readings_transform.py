"""CSV rows of ``geomkit transform`` (a TransformResult)."""

from __future__ import annotations

import json

from geomkit.report.readings import summary_for
from geomkit.transforms.run import TransformResult


@summary_for(TransformResult)
def transform_summary_rows(r):
    row = r.to_dict()
    row["steps"] = json.dumps(row["steps"])
    return [row]
