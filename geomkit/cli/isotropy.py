"""``geomkit isotropy INPUT``: the anisotropy suite, per layer / per prefix, before/after a transform."""

import click

from geomkit.analysis.isotropy import DEFAULT_ZETA, UNIFORMITY_MAX_N, compute_isotropy
from geomkit.cli.options import input_options, output_options
from geomkit.errors import UsageError
from geomkit.transforms import Pipeline, Step


def _pipeline(name: str, d: int) -> Pipeline:
    if name == "abtt":
        return Pipeline([Step("abtt", {"directions": max(1, round(d / 100))})])
    return Pipeline([Step(name)])


@click.command("isotropy")
@click.argument("input", metavar="INPUT")
@click.option("--zeta", type=click.FloatRange(0, 1), metavar="Z",
              help=f"IsoScore* shrinkage toward --c0 (default: {DEFAULT_ZETA} when N < d or a "
                   f"--c0 file is given; otherwise IsoScore* is not computed).")
@click.option("--c0", default="identity", show_default=True, metavar="identity|FILE",
              help="IsoScore* target: identity, or the covariance of a (larger) dump PATH[:DATASET].")
@click.option("--transform", "transform_name", type=click.Choice(["center", "whiten", "abtt"]),
              help="Also report every measure after this transform (abtt removes d/100 directions).")
@click.option("--uniformity-max", type=click.IntRange(min=2), default=UNIFORMITY_MAX_N, show_default=True,
              metavar="N", help="Uniformity over all pairs up to N rows, else over a seeded sample of N.")
@input_options(metadata=("ids", "texts"), scheduler=True)
@output_options
def command(input, zeta, c0, transform_name, uniformity_max, inputs, output):
    """Isotropy of INPUT: IsoScore, IsoScore*, avg cosine, partition isotropy, effective rank, ..."""
    def compute(view):
        transform = None
        if transform_name:
            # the raw moments first: the fit of the transform reuses them (one pass, not two)
            view.products("moments", "row_stats", nonzero=True, progress="isotropy")
            transform = _pipeline(transform_name, view.d).fit(view)
        # a prefix's covariance is the leading block of the full one (--dims sweeps)
        c0_view = None if c0_matrix is None else c0_matrix[:view.d, :view.d]
        return compute_isotropy(view, zeta=zeta, c0=c0_view, c0_label=c0_label,
                                uniformity_max_n=uniformity_max, seed=inputs.seed,
                                transform=transform, transform_name=transform_name,
                                progress="isotropy")

    with inputs.open(input) as space:
        c0_matrix, c0_label = None, "identity"
        if c0 != "identity":
            with inputs.open(c0) as ref:
                if ref.d != space.d:  # checked before any pass over either file
                    raise UsageError(f"--c0 {ref.label} has {ref.d} dimensions, {space.label} "
                                     f"{space.d}.")
                c0_matrix = ref.moments(progress="covariance of --c0").cov()
                c0_label = ref.label
            if zeta is None:  # a target was given: IsoScore* is wanted whatever N and d
                zeta = DEFAULT_ZETA
        result = inputs.run(space, compute)
    output.emit(result, source_label=input)
