"""``geomkit compare A B``: how alike two spaces of the same items are (CKA, k-NN agreement)."""

import click

from geomkit.analysis.compare import compute_compare
from geomkit.cli.options import input_options, output_options


@click.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("-k", "k", type=click.IntRange(min=2), default=10, show_default=True,
              help="Neighbourhood size of the k-NN metrics.")
@click.option("--pairs", type=click.Choice(["auto", "ids", "rows"]), default="auto",
              show_default=True, help="Pair items by ids (auto: when both have ids) or row order.")
@input_options(metadata=("ids", "texts"))
@output_options
def command(a, b, k, pairs, inputs, output):
    """Compare spaces A and B on their paired items: linear and unbiased CKA, CKNNA, mutual and
    cycle k-NN, and per item the k-NN overlap. A sweep (--layer all) applies to A against a
    fixed B."""
    import dataclasses

    fixed = dataclasses.replace(inputs, layer=None, dims=None)  # B is one view: the sweep is A's
    with inputs.open(a) as space_a, fixed.open(b) as space_b:
        result = inputs.run(space_a, lambda view: compute_compare(view, space_b, k=k,
                                                                  pairs=pairs))
    output.emit(result, source_label=f"{a} vs {b}")
