"""The result protocol every analysis returns, and the sweep wrapper for ``--layer all``/``--dims``.

A result knows its numbers; it never draws or phrases. ``to_dict()`` is the JSON contract;
``per_item()`` the per-row frame for ``--per-item``. ``summary_rows()`` (CSV rows), ``tables()``
(the table view and the HTML page: top hubs with their texts, ...) and ``notes()`` (plain-words
readings) are looked up in :mod:`geomkit.report.readings`; figures in
:mod:`geomkit.report.figures`.
"""

from __future__ import annotations

from dataclasses import dataclass


class Result:
    """What every analysis returns: numbers (``to_dict``, the JSON contract) and per-item arrays
    (``per_item``). Tables, notes and CSV rows are read off a result in :mod:`geomkit.report`
    (``readings_<command>.py``), figures in ``figures_<command>.py``."""

    command: str = ""
    title: str = ""

    def to_dict(self) -> dict:
        raise NotImplementedError

    def per_item(self):
        return None

    def summary_rows(self) -> list[dict]:
        """Rows for ``--format csv``: by default the scalar keys of ``to_dict()`` as one row."""
        from geomkit.report.readings import reading

        fn = reading("summary_rows", self)
        if fn is not None:
            return fn(self)
        return [{k: v for k, v in flatten(self.to_dict()).items() if not isinstance(v, list)}]

    def tables(self) -> list[tuple[str, "object"]]:
        from geomkit.report.readings import reading

        fn = reading("tables", self)
        return fn(self) if fn is not None else []

    def notes(self) -> list[str]:
        from geomkit.report.readings import reading

        fn = reading("notes", self)
        return fn(self) if fn is not None else []


def dropped_notes(n_dropped: int, n_dropped_zero: int = 0) -> list[str]:
    """The note every result gives about rows left out (non-finite, all-zero)."""
    notes = []
    nonfinite = int(n_dropped or 0) - int(n_dropped_zero or 0)
    if nonfinite:
        notes.append(f"{nonfinite} rows with NaN/Inf were skipped (--drop-nonfinite).")
    if n_dropped_zero:
        notes.append(f"{n_dropped_zero} all-zero rows were skipped (--drop-zero).")
    return notes


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are kept as values."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class SweepResult(Result):
    """Per-layer or per-prefix results of one analysis.

    JSON: the keys of the last view (last layer, largest prefix) at the top level, plus
    ``layers`` (each object with ``layer``) or ``dims`` (each object with ``dims``).
    """

    kind: str  # "layer" or "dims"
    values: list
    results: tuple = ()

    @property
    def command(self):
        return self.results[-1].command

    @property
    def title(self):
        return self.results[-1].title

    @property
    def key(self) -> str:
        return "layers" if self.kind == "layer" else "dims"

    @property
    def top(self) -> Result:
        return self.results[-1]

    def to_dict(self) -> dict:
        out = dict(self.top.to_dict())
        out[self.key] = [{self.kind: v, **r.to_dict()} for v, r in zip(self.values, self.results)]
        return out

    def summary_rows(self) -> list[dict]:
        rows = []
        for v, r in zip(self.values, self.results):
            for row in r.summary_rows():
                rows.append({self.kind: v, **row})
        return rows

    def tables(self):
        import pandas as pd
        return [(f"per {self.kind}", pd.DataFrame(self.summary_rows()))] + self.top.tables()

    def per_item(self):
        """Every view's per-item values, one block of rows per view with a ``layer``/``dims``
        column in front (not only the last view's)."""
        import pandas as pd

        frames = []
        for value, result in zip(self.values, self.results):
            frame = result.per_item()
            if frame is None:
                return None
            frame.insert(0, self.kind, value)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def notes(self):
        return self.top.notes()
