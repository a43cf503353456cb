"""``geomkit compare A B``: how alike two spaces of the same items are (CKA, k-NN agreement)."""

import click

from geomkit.analysis.compare import compute_compare
from geomkit.cli.options import anchor_options, input_options, output_options
from geomkit.engine.ann import TARGET_RECALL, TUNE_SAMPLE


@click.command("compare")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("-k", "k", type=click.IntRange(min=2), default=10, show_default=True,
              help="Neighbourhood size of the k-NN metrics.")
@click.option("--pairs", type=click.Choice(["auto", "ids", "rows"]), default="auto",
              show_default=True, help="Pair items by ids (auto: when both have ids) or row order.")
@click.option("--rsa-sample", type=click.IntRange(min=3), default=2000, show_default=True,
              metavar="N", help="Items (a seeded sample, --seed) whose pairwise similarities "
                                "are correlated for similarity_spearman.")
@click.option("--knn-items", type=click.IntRange(min=3), default=20000, show_default=True,
              metavar="N", help="The k-NN metrics and per-item overlaps use exact neighbours up "
                                "to N pairs, approximate ones (faiss IVF within --memory, recall "
                                "measured per space) over every pair beyond.")
@click.option("--nprobe", type=click.IntRange(min=1), default=None,
              help="Inverted lists searched per query by the approximate neighbours (beyond "
                   "--knn-items pairs; default: the fewest reaching --target-recall); more: "
                   "higher recall, slower.")
@click.option("--target-recall", type=click.FloatRange(0, 1, min_open=True), default=None,
              metavar="R", help=f"Beyond --knn-items pairs, without --nprobe: nprobe is tuned to "
                                f"the fewest lists whose recall@k on {TUNE_SAMPLE} seeded queries "
                                f"reaches R (default {TARGET_RECALL}).")
@anchor_options
@input_options(metadata=("ids", "texts"), scheduler=True)
@output_options
def command(a, b, k, pairs, rsa_sample, knn_items, nprobe, target_recall, anchors, anchor_ids,
            inputs, output):
    """Compare spaces A and B on their paired items: linear and unbiased CKA, CKNNA, mutual and
    cycle k-NN, the Spearman correlation of pairwise similarities, and per item the k-NN
    overlap. A sweep (--layer all) applies to A against a
    fixed B."""
    import dataclasses

    fixed = dataclasses.replace(inputs, layer=None, dims=None)  # B is one view: the sweep is A's
    with inputs.open(a) as space_a, fixed.open(b) as space_b:
        result = inputs.run(space_a, lambda view: compute_compare(
            view, space_b, k=k, pairs=pairs, rsa_sample=rsa_sample, seed=inputs.seed,
            knn_items=knn_items, anchors=anchors, anchor_ids=anchor_ids, nprobe=nprobe,
            target_recall=target_recall))
    output.emit(result, source_label=f"{a} vs {b}")
