"""``geomkit norms INPUT``: norm distribution, groups, frequency, whitened likelihood."""

import click

from geomkit.analysis.norms import compute_norms
from geomkit.cli.options import input_options, output_options
from geomkit.io.source import class_labels


@click.command("norms")
@click.argument("input", metavar="INPUT")
@click.option("--group-by", metavar="DSET", help="Group rows by this 1-D dataset (default: labels "
              "when --labels is given).")
@click.option("--no-likelihood", is_flag=True, help="Skip the whitened log-likelihood.")
@input_options(scheduler=True)
@output_options
def command(input, group_by, no_likelihood, inputs, output):
    """Norm diagnostics of INPUT; with counts, norm vs frequency and the debiased Δ‖u‖²."""

    def compute(view):
        groups = None
        if group_by:
            groups = class_labels(*view.source.read_aligned(group_by, "--group-by"))
        elif inputs.metadata_names.get("labels"):
            groups = view.metadata.class_labels(view.path)
        counts = view.metadata.counts
        return compute_norms(view, groups=groups, counts=counts, likelihood=not no_likelihood,
                             progress="norms")

    with inputs.open(input) as source:
        result = inputs.run(source, compute)
    output.emit(result, source_label=input)
