"""``geomkit hubness INPUT``: k-occurrence measures per hubness reduction, k-NN error with labels."""

import click

from geomkit.analysis.hubness import compute_hubness
from geomkit.cli.options import (approximate_options, input_options, output_options,
                                 scheduler_given, use_approximate)
from geomkit.engine.knn import METRICS, available_devices
from geomkit.errors import UsageError
from geomkit.transforms.hubness import MP_EMPIRIC_CANDIDATES, REDUCTIONS


def _methods(ctx, param, value):
    methods = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in methods if m not in REDUCTIONS]
    if bad or not methods:
        raise click.BadParameter(f"choose from {', '.join(REDUCTIONS)} (comma-separated).")
    return list(dict.fromkeys(methods))


@click.command("hubness")
@click.argument("input", metavar="INPUT")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Neighbourhood size.")
@click.option("--metric", type=click.Choice(METRICS), default="cosine", show_default=True)
@click.option("--reduce", "reduce", default="none", callback=_methods, show_default=True,
              metavar="M[,M...]", help=f"Reductions reported side by side: {', '.join(REDUCTIONS)}.")
@click.option("--hub-size", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="A hub has k-occurrence >= hub-size * k (as scikit-hubness).")
@click.option("--knn-error", is_flag=True,
              help="Leave-one-out k-NN classification error from the labels dataset.")
@approximate_options
@click.option("--mp-candidates", type=click.IntRange(min=2), default=None,
              help="Candidate list per item for mp (default: all items) and mp_empiric "
                   f"(default: {MP_EMPIRIC_CANDIDATES}).")
@click.option("--device", default=None, metavar="DEVICE",
              help="torch device for the exact kNN products, e.g. cuda (default: CPU).")
@click.option("--querybank", metavar="PATH[:DATASET]", help="Querybank for --reduce dis (default: INPUT).")
@input_options(metadata=("ids", "texts", "labels"), scheduler=True)
@output_options
def command(input, k, metric, reduce, hub_size, knn_error, approximate, nprobe, target_recall,
            mp_candidates, device, querybank, inputs, output):
    """Hubness of INPUT: k-skewness, Robin Hood, Gini, hubs and antihubs, per reduction."""
    if device and device not in available_devices():
        raise UsageError(f"--device {device} is not available here (available: "
                         f"{', '.join(available_devices())}).")
    if mp_candidates is not None and mp_candidates <= k:
        raise UsageError(f"--mp-candidates {mp_candidates} must be larger than -k {k}.")
    bank, bank_label = None, None
    if querybank:
        with inputs.open(querybank) as qb:
            _, bank = qb.matrix(nonzero=True)  # dis: cosine similarities
            bank_label = qb.label

    def compute(view):
        labels = None
        if knn_error or inputs.metadata_names.get("labels"):
            labels = view.metadata.class_labels(view.path)
        use_approx = use_approximate(approximate, view.n, nprobe, target_recall)
        if use_approx and scheduler_given():
            raise UsageError("the approximate search runs in this process (one faiss index); "
                             "--scheduler acts on the exact search: add --exact, or drop "
                             "--scheduler.")
        if bank is not None and bank.shape[1] != view.d:
            raise UsageError(f"--querybank {bank_label} has {bank.shape[1]} dimensions, "
                             f"{view.label} {view.d}.")
        return compute_hubness(view, k=k, metric=metric, reduce=reduce, hub_size=hub_size,
                               labels=labels, approximate=use_approx, querybank=bank,
                               candidates=mp_candidates, device=device, nprobe=nprobe,
                               target_recall=target_recall)

    with inputs.open(input) as source:
        result = inputs.run(source, compute)
    output.emit(result, source_label=input)
