"""``geomkit depth REF [TEST]``: TTE / chord / spatial depth and the rank-sum test between corpora."""

import click

from geomkit.analysis.depth import DEPTHS, compute_depth
from geomkit.cli.options import input_options, output_options
from geomkit.errors import UsageError


def _split(source, by: str, ref_value: str, test_value: str):
    values = source.metadata.class_labels(source.path)
    present = sorted(set(values[source.rows]))
    parts = []
    for name, value in (("REF", ref_value), ("TEST", test_value)):
        rows = source.rows[values[source.rows] == str(value)]
        if rows.size == 0:
            shown = ", ".join(present[:10]) + (", ..." if len(present) > 10 else "")
            raise UsageError(f"{source.label}: no rows with {by} == '{value}' for {name} "
                             f"(values: {shown}).")
        parts.append(source.subset(rows, name=f"{by}={value}"))
    return parts


@click.command("depth")
@click.argument("ref", metavar="REF")
@click.argument("test", metavar="[TEST]", required=False)
@click.option("--depth", "kind", type=click.Choice(DEPTHS), default="cosine", show_default=True,
              help="cosine (TTE), chord, or spatial (centre-outward).")
@click.option("--alternative", type=click.Choice(["greater", "less", "two-sided"]), default="greater",
              show_default=True, help="H1 of the rank-sum test (greater: TEST more outlying).")
@click.option("--split-by", type=click.Choice(["labels"]), help="Split one dataset into REF and TEST.")
@click.option("--ref", "ref_value", metavar="VALUE", help="With --split-by: the REF label.")
@click.option("--test", "test_value", metavar="VALUE", help="With --split-by: the TEST label.")
@input_options(metadata=("ids", "texts", "labels"), sweep=False, scheduler=True)
@output_options
def command(ref, test, kind, alternative, split_by, ref_value, test_value, inputs, output):
    """Depth of REF items w.r.t. REF and, with TEST (or --split-by), of TEST items w.r.t. REF,
    with a rank-sum test of whether TEST is more outlying. REF/TEST are PATH[:DATASET]."""
    if inputs.metadata_names.get("labels") and not split_by:
        raise UsageError("--labels names the labels of --split-by; without it depth reads no "
                         "labels.")
    if split_by:
        if test or not (ref_value and test_value):
            raise UsageError("--split-by takes one dataset and both --ref VALUE and --test VALUE.")
        with inputs.open(ref) as source:
            ref_src, test_src = _split(source, split_by, ref_value, test_value)
            result = compute_depth(ref_src, test_src, depth=kind, alternative=alternative,
                                   dd=bool(output.html), progress="depth")
    elif test:
        with inputs.open(ref) as ref_src, inputs.open(test) as test_src:
            result = compute_depth(ref_src, test_src, depth=kind, alternative=alternative,
                                   dd=bool(output.html), progress="depth")
    else:
        if ref_value or test_value:
            raise UsageError("--ref/--test VALUE go with --split-by.")
        with inputs.open(ref) as ref_src:
            result = compute_depth(ref_src, depth=kind, alternative=alternative, progress="depth")
    output.emit(result, source_label=" vs ".join(x for x in (ref, test) if x))
