"""``geomkit transform INPUT -o OUT.h5``: center / normalize / whiten / all-but-the-top, in order."""

import click

from geomkit.cli.options import input_options, output_options
from geomkit.errors import UsageError
from geomkit.transforms import parse_steps
from geomkit.transforms.run import load_pipeline, transform_file


def _step(name):
    def callback(ctx, param, value):
        if value not in (None, False):
            ctx.meta.setdefault("geomkit_steps", []).append((name, value))
        return value
    return callback


@click.command("transform")
@click.argument("input", metavar="INPUT")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Output HDF5 file (written atomically).")
@click.option("--center", is_flag=True, callback=_step("center"), help="Subtract the mean.")
@click.option("--normalize", is_flag=True, callback=_step("normalize"), help="L2-normalise rows.")
@click.option("--whiten", is_flag=True, callback=_step("whiten"),
              help="BERT-whitening: (x - mu) U Lambda^-1/2.")
@click.option("--components", type=click.IntRange(min=1), metavar="K",
              help="With --whiten: keep the top K whitened components.")
@click.option("--abtt", type=click.IntRange(min=1), metavar="D", callback=_step("abtt"),
              help="All-but-the-top: centre and remove the top D principal directions.")
@click.option("--fit-from", type=click.Path(dir_okay=False), metavar="OTHER.h5",
              help="Apply the transform fitted and stored by an earlier geomkit transform output.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]),
              help="Output dtype (default: float64 for float64 input, else float32).")
@input_options(sweep=False, scheduler=True)
@output_options(per_item=False, outputs=(("out", "-o"),))
def command(input, out, center, normalize, whiten, components, abtt, fit_from, dtype, inputs, output):
    """Transform INPUT and write OUT.h5 with metadata, provenance and the fitted parameters.

    Steps apply in the order given on the command line; each is fitted in a streaming pass.
    """
    ctx = click.get_current_context()
    steps = ctx.meta.get("geomkit_steps", [])
    if fit_from:
        if steps or components:
            raise UsageError("--fit-from applies a stored transform; do not also give steps.")
        pipeline = load_pipeline(fit_from)
    else:
        if not steps:
            raise UsageError("give at least one step: --center, --normalize, --whiten, --abtt D.")
        if components and not whiten:
            raise UsageError("--components goes with --whiten.")
        pipeline = parse_steps(steps, components)
    with inputs.open(input) as source:
        result = transform_file(source, pipeline, out, dtype=dtype, fit_from=fit_from,
                                progress="transform")
    output.emit(result, source_label=input)
