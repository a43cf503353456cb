"""``geomkit intdim INPUT``: intrinsic dimension (TwoNN, MLE, GRIDE, lPCA) and per-item LID."""

import click

from geomkit.analysis.intdim import ESTIMATORS, MLE_COMBS, TWONN_FITS, compute_intdim
from geomkit.cli.options import (approximate_options, input_options, output_options,
                                 use_approximate)
from geomkit.engine.knn import available_devices
from geomkit.errors import UsageError


def _estimators(ctx, param, value):
    names = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in names if m not in ESTIMATORS]
    if bad or not names:
        raise click.BadParameter(f"choose from {', '.join(ESTIMATORS)} (comma-separated).")
    return list(dict.fromkeys(names))


@click.command("intdim")
@click.argument("input", metavar="INPUT")
@click.option("-k", "k", type=click.IntRange(min=2), default=20, show_default=True,
              help="Neighbours of the MLE and of the per-item LID (local MLE).")
@click.option("--estimators", default=",".join(ESTIMATORS), callback=_estimators,
              show_default=True, metavar="E[,E...]",
              help=f"Global estimators computed: {', '.join(ESTIMATORS)} (the others are null).")
@click.option("--discard", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="TwoNN: fraction of the largest ratios r2/r1 discarded.")
@click.option("--twonn-fit", type=click.Choice(TWONN_FITS), default="linear", show_default=True,
              help="TwoNN: least-squares line through the origin (Facco et al.) or the closed-"
                   "form censored MLE.")
@click.option("--mle-average", type=click.Choice(MLE_COMBS), default="mackay",
              show_default=True,
              help="MLE: global value from the per-item m_i: mackay = 1/mean(1/m_i) "
                   "(MacKay-Ghahramani), mean (Levina-Bickel), median.")
@click.option("--gride-n1", type=click.IntRange(min=1), default=1, show_default=True,
              help="GRIDE: ratio of the 2*n1-th to the n1-th neighbour distance.")
@click.option("--scales", type=click.IntRange(min=2), default=None, metavar="MAX",
              help="GRIDE against scale: n1 = 1, 2, 4, ... with n2 = 2*n1 <= MAX.")
@click.option("--variance", type=click.FloatRange(0, 1, min_open=True), default=0.95,
              show_default=True, help="lPCA: components that explain this share of the variance.")
@click.option("--local-twonn", type=click.IntRange(min=3), default=None, metavar="N",
              help="Per-item TwoNN refitted on each item's N nearest items (summary in the "
                   "output, values with --per-item).")
@click.option("--with-hubness", is_flag=True,
              help="k-occurrence of the same k-NN graph and its correlation with LID.")
@click.option("--device", default=None, metavar="DEVICE",
              help="torch device for the exact kNN products, e.g. cuda (default: CPU).")
@approximate_options
@input_options(metadata=("ids", "texts"))
@output_options
def command(input, k, estimators, discard, twonn_fit, mle_average, gride_n1, scales, variance,
            local_twonn, with_hubness, device, approximate, nprobe, target_recall, inputs,
            output):
    """Intrinsic dimension of INPUT: TwoNN, MLE, GRIDE, lPCA, and each item's local ID."""
    if device and device not in available_devices():
        raise UsageError(f"--device {device} is not available here (available: "
                         f"{', '.join(available_devices())}).")
    if twonn_fit == "linear" and discard == 0 and "twonn" in estimators:
        raise UsageError("--discard 0 leaves TwoNN's linear fit an infinite point "
                         "(-log(1 - F) at F = 1); use --twonn-fit mle or a fraction above 0.")
    ctx = click.get_current_context()

    def given(name):
        return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE

    needs = (("discard", "--discard", "twonn", local_twonn is not None),
             ("twonn_fit", "--twonn-fit", "twonn", local_twonn is not None),
             ("mle_average", "--mle-average", "mle", False),
             ("gride_n1", "--gride-n1", "gride", False),
             ("variance", "--variance", "lpca", False))
    for name, flag, estimator, elsewhere in needs:
        if given(name) and estimator not in estimators and not elsewhere:
            raise UsageError(f"{flag} acts on {estimator}; add {estimator} to --estimators.")

    def compute(view):
        use_approx = use_approximate(approximate, view.n, nprobe, target_recall)
        return compute_intdim(view, k=k, estimators=estimators, discard_fraction=discard,
                              twonn_fit=twonn_fit, mle_comb=mle_average, gride_n1=gride_n1,
                              scales=scales, variance=variance, local_twonn_n=local_twonn,
                              with_hubness=with_hubness, device=device,
                              approximate=use_approx, nprobe=nprobe,
                              target_recall=target_recall)

    with inputs.open(input) as source:
        result = inputs.run(source, compute)
    output.emit(result, source_label=input)
