"""``geomkit info INPUT``: the file's tree, the dataset geomkit would analyse, metadata, quick stats."""

import click

from geomkit.cli.options import input_options, output_options
from geomkit.io.inspect import inspect_file


@click.command("info")
@click.argument("input", metavar="INPUT")
@input_options
@output_options
def command(input, inputs, output):
    """Describe INPUT (PATH[:DATASET]): groups, datasets, attributes and quick stats."""
    result = inspect_file(input, lambda spec: inputs.open(spec, layer_required=False))
    output.emit(result, source_label=input)
