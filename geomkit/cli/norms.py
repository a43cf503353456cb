"""``geomkit norms INPUT``: norm distribution, groups, frequency, whitened likelihood."""

import click
import numpy as np

import geomkit.report.figures_norms  # noqa: F401  (registers the HTML figures)
from geomkit.analysis.norms import compute_norms
from geomkit.cli.options import input_options, output_options
from geomkit.errors import InputError


def _aligned(source, name: str):
    """A 1-D dataset next to the embeddings, aligned with the rows (for --group-by)."""
    parent = source._dset.parent
    obj = source._file.get(name) if name.startswith("/") else parent.get(name)
    if obj is None or obj.ndim != 1:
        raise InputError(f"{source.path}: no 1-D dataset '{name}' for --group-by (looked in {parent.name}).")
    if obj.shape[0] != source.n_total:
        raise InputError(f"{source.path}:{obj.name}: has {obj.shape[0]} entries but {source.dataset} "
                         f"has {source.n_total} rows.")
    from geomkit.io.source import _decode
    return _decode(np.asarray(obj[0:obj.shape[0]]))


@click.command("norms")
@click.argument("input", metavar="INPUT")
@click.option("--group-by", metavar="DSET", help="Group rows by this 1-D dataset (default: labels "
              "when --labels is given).")
@click.option("--no-likelihood", is_flag=True, help="Skip the whitened log-likelihood.")
@input_options
@output_options
def command(input, group_by, no_likelihood, inputs, output):
    """Norm diagnostics of INPUT; with counts, norm vs frequency and the debiased Δ‖u‖²."""

    def compute(view):
        groups = None
        if group_by:
            groups = _aligned(view, group_by)
        elif inputs.metadata_names.get("labels"):
            groups = view.metadata.labels
        counts = view.metadata.counts
        return compute_norms(view, groups=groups, counts=counts, likelihood=not no_likelihood,
                             progress="norms")

    with inputs.open(input) as source:
        result = inputs.run(source, compute)
    output.emit(result, source_label=input)
