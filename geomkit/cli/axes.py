"""``geomkit axes fit|score|project``: rank axes and rankability of a numeric attribute."""

import click

from geomkit.analysis.axes import (DEFAULT_SHOTS, METHODS, NULL_DIRECTIONS, compute_axis,
                                   compute_projection, compute_rankability, read_attribute,
                                   read_axis, write_axis)
from geomkit.cli.options import input_options, output_options
from geomkit.errors import UsageError
from geomkit.report.progress import log

ATTRIBUTE_HELP = ("Numeric attribute: a dataset next to the embeddings (year, or /meta/year), or "
                  "FILE.csv:COLUMN keyed by the dump's ids.")


def _shots(ctx, param, value):
    if value is None:
        return list(DEFAULT_SHOTS)
    try:
        shots = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter("takes comma-separated integers, e.g. 2,5,10,20.") from None
    if not shots or shots[0] < 2:
        raise click.BadParameter("takes integers of at least 2.")
    return shots


def _rows_of(space, ids_text: str | None, what: str):
    """Original rows of the items named by ``--low``/``--high`` (ids, comma-separated)."""
    if ids_text is None:
        return None
    from geomkit.engine.pairs import positions_of_ids

    wanted = [s.strip() for s in ids_text.split(",") if s.strip()]
    return sorted(positions_of_ids(space.metadata.ids, wanted, space.label, f"{what} items"))


@click.group("axes")
def command():
    """Rank axes: does one direction order the items by a numeric attribute?"""


@command.command("fit")
@click.argument("input", metavar="INPUT")
@click.option("--attribute", required=True, metavar="SPEC", help=ATTRIBUTE_HELP)
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Axis file to write (HDF5).")
@click.option("--method", type=click.Choice(METHODS), default="regression", show_default=True)
@click.option("--low", metavar="IDS", help="extremes/poles: ids of the low pole (comma-separated).")
@click.option("--high", metavar="IDS", help="extremes/poles: ids of the high pole.")
@input_options(metadata=("ids",), sweep=False)
@output_options(per_item=False, outputs=(("out", "-o"),))
def fit_command(input, attribute, out, method, low, high, inputs, output):
    """Fit a rank axis for ATTRIBUTE on INPUT's labelled rows and write it to -o."""
    if (low is None) != (high is None):
        raise UsageError("--low and --high go together.")
    if low is not None and method not in ("extremes", "poles"):
        raise UsageError("--low/--high name the poles of --method extremes or poles.")
    with inputs.open(input) as space:
        attr = read_attribute(space, attribute)
        fit = compute_axis(space, attr, method=method, seed=inputs.seed,
                           low=_rows_of(space, low, "--low"), high=_rows_of(space, high, "--high"))
    write_axis(out, fit)
    log(f"geomkit: axis written to {out}")
    import dataclasses
    output.emit(dataclasses.replace(fit, axis_file=out), source_label=input)


@command.command("score")
@click.argument("input", metavar="INPUT")
@click.option("--attribute", required=True, metavar="SPEC", help=ATTRIBUTE_HELP)
@click.option("--method", type=click.Choice(METHODS), default="regression", show_default=True)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--shots", callback=_shots, metavar="N[,N...]",
              help=f"Sample-efficiency curve: labelled-set sizes (default "
                   f"{','.join(map(str, DEFAULT_SHOTS))}).")
@click.option("--null-directions", type=click.IntRange(min=100), default=NULL_DIRECTIONS,
              show_default=True, help="Random unit directions of the null.")
@click.option("--no-upper-bound", is_flag=True, help="Skip the k-NN regression upper bound.")
@input_options(metadata=("ids", "texts"))
@output_options
def score_command(input, attribute, method, folds, shots, null_directions, no_upper_bound,
                  inputs, output):
    """Rankability of ATTRIBUTE in INPUT: cross-validated Spearman against random directions."""
    with inputs.open(input) as space:
        attr = read_attribute(space, attribute)
        result = inputs.run(space, lambda view: compute_rankability(
            view, attr, method=method, folds=folds, shots=shots,
            null_directions=null_directions, seed=inputs.seed, upper_bound=not no_upper_bound))
    output.emit(result, source_label=input)


@command.command("project")
@click.argument("input", metavar="INPUT")
@click.option("--axis", "axis_files", required=True, multiple=True, metavar="AXIS.h5",
              help="An axis file from axes fit (give two for a 2-axis scatter).")
@click.option("--attribute", metavar="SPEC", help=ATTRIBUTE_HELP + " Adds Spearman per axis.")
@input_options(metadata=("ids", "texts"), sweep=False)
@output_options
def project_command(input, axis_files, attribute, inputs, output):
    """Score every item of INPUT on one or two axes."""
    if len(axis_files) > 2:
        raise UsageError("--axis takes one or two axis files.")
    axes = [read_axis(path) for path in axis_files]
    with inputs.open(input) as space:
        attr = read_attribute(space, attribute) if attribute else None
        result = compute_projection(space, axes, attribute=attr, progress="project")
    output.emit(result, source_label=input)
