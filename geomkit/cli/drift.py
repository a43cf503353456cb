"""``geomkit drift REF NEW``: a calibrated two-sample suite (depth, MMD, domain classifier,
per-dimension KS, distance between means) with one overall verdict."""

import click

from geomkit.analysis.drift import DEFAULT_TESTS, MAX_ROWS, compute_drift, parse_tests
from geomkit.cli.options import input_options, output_options


def _tests(ctx, param, value):
    from geomkit.errors import UsageError

    try:
        return parse_tests(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc).rstrip(".")) from None


@click.command("drift")
@click.argument("ref", metavar="REF")
@click.argument("new", metavar="NEW")
@click.option("--tests", callback=_tests, default=",".join(DEFAULT_TESTS), show_default=True,
              metavar="T[,T...]", help="Tests to run: depth, mmd, classifier, ks, mean.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True,
              help="Level of each test's decision; the verdict uses alpha / number of tests.")
@click.option("--sigma", type=click.FloatRange(0, min_open=True),
              help="MMD kernel bandwidth (default: median pairwise distance of the pooled "
                   "sample).")
@click.option("--permutations", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Permutations (mmd, classifier) and bootstrap resamples (mean).")
@click.option("--max-rows", type=click.IntRange(min=2), default=MAX_ROWS, show_default=True,
              help="Rows per side sampled (seeded) for mmd, classifier, ks and mean.")
@click.option("--ks-components", type=click.IntRange(min=1), metavar="K",
              help="Run ks on the top K principal components of the pooled sample.")
@input_options(metadata=("ids", "texts"), sweep=False)
@output_options
def command(ref, new, tests, alpha, sigma, permutations, max_rows, ks_components, inputs,
            output):
    """Has NEW drifted from REF? One row per test (statistic, p-value, effect size, decision at
    --alpha) and an overall verdict (Bonferroni over the tests). Exit 0 whether or not drift is
    found (a gate is `geomkit check`'s job). REF/NEW are PATH[:DATASET]."""
    with inputs.open(ref) as ref_space, inputs.open(new) as new_space:
        result = compute_drift(ref_space, new_space, tests=tests, alpha=alpha, sigma=sigma,
                               permutations=permutations, seed=inputs.seed, max_rows=max_rows,
                               ks_components=ks_components, progress="drift")
    output.emit(result, source_label=f"{ref} vs {new}")
