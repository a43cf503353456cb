"""``geomkit check INPUT --max hubness.k_skewness=3 ...``: a deployment gate (exit 1 on failure)."""

import sys

import click

from geomkit.cli.options import input_options, output_options
from geomkit.errors import UsageError


@click.command("check")
@click.argument("input", metavar="INPUT")
@click.option("--max", "maxima", multiple=True, metavar="CMD.KEY=V",
              help="Fail when the key is above V (e.g. hubness.k_skewness=3).")
@click.option("--min", "minima", multiple=True, metavar="CMD.KEY=V",
              help="Fail when the key is below V (e.g. isotropy.isoscore=0.05).")
@click.option("--between", multiple=True, metavar="CMD.KEY=LO,HI",
              help="Fail when the key is outside [LO, HI] (e.g. norms.cv=0,0.5).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), metavar="FILE.toml",
              help="Rules from a TOML file ([max], [min], [between] tables; docs/check.md).")
@click.option("--defaults", is_flag=True,
              help="Add the proposed thresholds of docs/check.md.")
@click.option("--vs", "other", metavar="OTHER",
              help="A second dump, for rules on depth.* and compare.*.")
@click.option("-k", "k", type=click.IntRange(min=2), default=10, show_default=True,
              help="Neighbourhood size of hubness and compare.")
@input_options(metadata=("ids", "labels", "counts"), sweep=False)
@output_options(per_item=False)
def command(input, maxima, minima, between, rules_file, defaults, other, k, inputs, output):
    """Check INPUT against rules on any key of the analyses' JSON (COMMAND.KEY): exit 0 when
    every rule holds, 1 when one fails, 2 on a usage error (an unknown key lists the valid
    ones), 3 on an input error. Runs only the analyses the rules name."""
    import dataclasses

    from geomkit.analysis.check import (default_rules, evaluate_rules, parse_rule,
                                        rules_from_toml)
    from geomkit.report.progress import log

    rules = ([parse_rule("max", t) for t in maxima] + [parse_rule("min", t) for t in minima]
             + [parse_rule("between", t) for t in between])
    if rules_file:
        rules += rules_from_toml(rules_file)
    if defaults:
        rules += default_rules(with_other=other is not None)
    if not rules:
        raise UsageError("give rules: --max/--min/--between CMD.KEY=V, --rules FILE.toml or "
                         "--defaults.")
    commands = {r.command for r in rules}
    if other and not commands & {"depth", "compare"}:
        raise UsageError("--vs OTHER is read only by rules on depth.* or compare.*; none given.")
    if k != 10 and not commands & {"hubness", "compare"}:
        raise UsageError("-k acts only on rules on hubness.* or compare.*; none given.")
    fixed = dataclasses.replace(inputs, layer=None, dims=None)
    with inputs.open(input) as space:
        other_space = fixed.open(other) if other else None
        try:
            result = evaluate_rules(rules, space, other_space, k=k, seed=inputs.seed,
                                    label=input, progress=log)
        finally:
            if other_space is not None:
                other_space.close()
    output.emit(result, source_label=input)
    if not result.passed:
        sys.exit(1)
