"""``geomkit info INPUT``: the file's tree, the dataset geomkit would analyse, metadata, quick stats."""

import click

from geomkit.cli.options import input_options, output_options
from geomkit.errors import UsageError
from geomkit.io.inspect import inspect_file

# options that select or read rows: they act only when --scan reads them
ROW_OPTIONS = ("dims", "sample", "seed", "memory", "scheduler")


@click.command("info")
@click.argument("input", metavar="INPUT")
@click.option("--scan", is_flag=True,
              help="Read every row: NaN/Inf rows, zero rows, norm range (one streaming pass).")
@input_options(sweep=False, drop=False, scheduler=True)
@output_options(per_item=False)
def command(input, scan, inputs, output):
    """Describe INPUT (PATH[:DATASET]): groups, datasets, attributes; with --scan, row checks."""
    ctx = click.get_current_context()
    given = [f"--{name}" for name in ROW_OPTIONS
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if given and not scan:
        raise UsageError(f"{', '.join(given)} select or read rows; without --scan info reads no "
                         f"rows, so they cannot act.")
    result = inspect_file(input, lambda spec: inputs.open(spec, layer_required=False), scan=scan)
    output.emit(result, source_label=input)
