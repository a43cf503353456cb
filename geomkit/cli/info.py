"""``geomkit info INPUT``: the file's tree, the dataset geomkit would analyse, metadata, quick stats."""

import click

from geomkit.cli.options import input_options, output_options
from geomkit.io.inspect import inspect_file


@click.command("info")
@click.argument("input", metavar="INPUT")
@click.option("--scan", is_flag=True,
              help="Read every row: NaN/Inf rows, zero rows, norm range (one streaming pass).")
@input_options
@output_options(per_item=False)
def command(input, scan, inputs, output):
    """Describe INPUT (PATH[:DATASET]): groups, datasets, attributes; with --scan, row checks."""
    result = inspect_file(input, lambda spec: inputs.open(spec, layer_required=False), scan=scan)
    output.emit(result, source_label=input)
