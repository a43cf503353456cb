"""docs/cli.md's "Command entries" say exactly what the commands declare: every option of the
command that is not an input or output option (those have their own tables in the same page) is
listed, none that is not, with the default and the range click shows in ``--help``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
DOCUMENTED = ("drift", "intdim")  # the commands the "Command entries" table covers


def _table_after(heading: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    rows = []
    for line in text[start:end if end > 0 else None].splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            # "\|" inside a cell is a literal bar (choices written a\|b)
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            rows.append(cells)
    return rows[1:]  # without the header


def _flags(cell: str) -> set[str]:
    """Every option named in backticks in ``cell`` (``--a/--b`` gives both, ``-k`` too)."""
    out = set()
    for code in re.findall(r"`([^`]+)`", cell):
        for token in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", code):
            out.add(token)
    return out


def _shared() -> set[str]:
    """The input and output options the page documents in their own tables."""
    out = set()
    for heading in ("Input options", "Output options"):
        for cells in _table_after(heading):
            out |= _flags(cells[0])
    return out | {"-h", "--help", "-q"}


def _command(name: str) -> click.Command:
    from geomkit.cli.main import COMMANDS

    return importlib.import_module(f"geomkit.cli.{COMMANDS[name]}").command


def _entries() -> dict[str, list[str]]:
    out = {}
    for cells in _table_after("Command entries"):
        name = re.match(r"`(\w+)", cells[0]).group(1)
        out[name] = cells
    return out


@pytest.mark.parametrize("name", DOCUMENTED)
def test_command_entry_lists_exactly_the_commands_own_options(name):
    entries = _entries()
    assert name in entries, f"docs/cli.md has no command entry for {name}"
    cells = entries[name]
    own_cell = cells[1].split("; input options")[0].split("; sweeps")[0]
    documented = _flags(own_cell) - _shared()
    command = _command(name)
    declared = set()
    for p in command.params:
        if isinstance(p, click.Option):
            declared |= {o for o in p.opts + p.secondary_opts}
    declared -= _shared()
    assert documented == declared, (name, sorted(documented ^ declared))
    # every default and bound --help shows for an option is in the entry
    for p in command.params:
        if not isinstance(p, click.Option) or not (set(p.opts) & declared):
            continue
        if p.show_default and p.default is not None and not p.is_flag:
            default = p.default
            if isinstance(default, str):  # a list default (T[,T...]): each item named
                for item in default.split(","):
                    assert item in own_cell, (name, p.opts, item)
            else:
                spelled = {str(default), f"{default:,}"} if isinstance(default, int) \
                    else {str(default)}
                assert any(s in own_cell for s in spelled), (name, p.opts, default)
        if isinstance(p.type, click.types._NumberRangeBase):
            for bound in (p.type.min, p.type.max):
                if bound is not None:
                    assert f"{bound:g}" in own_cell, (name, p.opts, bound)
        if isinstance(p.type, click.Choice):
            for choice in p.type.choices:
                assert choice in own_cell, (name, p.opts, choice)


def test_command_entries_name_the_json_keys_the_commands_write():
    """The top-level JSON keys in the entries are the result's ``to_dict`` keys (run on a small
    pair), the optional ones of intdim included."""
    import numpy as np

    from geomkit import Space
    from geomkit.analysis.drift import compute_drift
    from geomkit.analysis.intdim import compute_intdim

    rng = np.random.default_rng(0)
    a, b = Space.from_array(rng.standard_normal((60, 4))), \
        Space.from_array(rng.standard_normal((60, 4)) + 0.3)
    results = {"drift": compute_drift(a, b, tests=("mean",), permutations=20).to_dict(),
               "intdim": compute_intdim(a, k=5, scales=4, local_twonn_n=5,
                                        with_hubness=True).to_dict()}
    entries = _entries()
    for name, doc in results.items():
        cell = entries[name][3]
        listed = set(re.findall(r"`(\w+)`", cell))
        assert set(doc) <= listed, (name, sorted(set(doc) - listed))
        assert listed <= set(doc) | {"mean", "median", "p95", "exact", "recall", "statistic",
                                     "p_value", "effect_size"}, (name, sorted(listed - set(doc)))
