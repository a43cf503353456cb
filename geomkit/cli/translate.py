"""``geomkit translate fit|apply|eval``: map one embedding space into another."""

import dataclasses

import click

from geomkit.analysis.translate import (DEFAULT_NORMALIZE, METHODS, RETRIEVALS, TranslationMap,
                                        check_dims, compute_translate_eval,
                                        compute_translate_fit, parse_normalize)
from geomkit.cli.options import anchor_options, input_options, output_options, scheduler_given
from geomkit.errors import UsageError
from geomkit.report.progress import log


def _normalize(ctx, param, value):
    try:
        return parse_normalize(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


RETRIEVAL = click.option("--retrieval", type=click.Choice(RETRIEVALS), default="csls",
                         show_default=True,
                         help="Rank targets by cosine (nn) or CSLS (hubness-corrected).")
EVAL_SIZE = click.option("--eval-size", type=click.IntRange(min=2), default=5000,
                         show_default=True, metavar="N",
                         help="Evaluate on at most N pairs (a seeded sample; each true target is "
                              "ranked among all N).")


def _pairs_option(choices):
    return click.option("--pairs", type=click.Choice(choices), default="auto", show_default=True,
                        help="Pair items by ids (auto: when both have ids) or row order"
                             + ("; none: no item is known to correspond (unsupervised)."
                                if "none" in choices else "."))


@click.group("translate")
def command():
    """Translate vectors of one model's space into another's: fit a map (with pairs, or
    without), apply it to any dump, evaluate it on pairs."""


@command.command("fit")
@click.argument("src", metavar="SRC")
@click.argument("tgt", metavar="TGT")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Map file to write (HDF5).")
@click.option("--method", type=click.Choice(METHODS), default="procrustes", show_default=True,
              help="procrustes (orthogonal), lstsq, ridge (--alpha), affine (with a bias), or "
                   "unsupervised (no pairs used).")
@click.option("--alpha", type=click.FloatRange(min=0), metavar="A",
              help="Ridge penalty (with --method ridge).")
@click.option("--normalize", callback=_normalize, default=",".join(DEFAULT_NORMALIZE),
              show_default=True, metavar="STEPS",
              help="Preprocessing of both sides, fitted on the training rows and stored in the "
                   "map: unit and center steps in order, or none.")
@_pairs_option(["auto", "ids", "rows", "none"])
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True), default=1.0,
              show_default=True, metavar="F",
              help="Fit on this share of the pairs (seeded by --seed), evaluate on the rest; "
                   "1 evaluates on the training pairs and says so.")
@click.option("--seeds", type=click.IntRange(min=1), metavar="N",
              help="unsupervised: independent runs (default 3); the best objective wins and "
                   "their agreement is the confidence.")
@click.option("--rank", type=click.IntRange(min=2), metavar="R",
              help="unsupervised: principal directions the pairs are induced in (default 128).")
@click.option("--max-items", type=click.IntRange(min=20), metavar="N",
              help="unsupervised: induce pairs among at most N rows per side (default 4000; a "
                   "seeded sample).")
@anchor_options
@RETRIEVAL
@EVAL_SIZE
@input_options(metadata=("ids", "texts"), sweep=False, scheduler=True)
@output_options(outputs=(("out", "-o"),))
def fit_command(src, tgt, out, method, alpha, normalize, pairs, train_fraction, seeds, rank,
                max_items, anchors, anchor_ids, retrieval, eval_size, inputs, output):
    """Fit a map from SRC's space to TGT's space and write it to -o; print its evaluation
    (held-out pairs with --train-fraction)."""
    if method == "unsupervised" and scheduler_given():
        raise UsageError("--method unsupervised works on an in-memory sample of each side; "
                         "--scheduler cannot act on it.")
    unsup = {"--seeds": seeds, "--rank": rank, "--max-items": max_items}
    if method != "unsupervised":
        given = [flag for flag, value in unsup.items() if value is not None]
        if given:
            raise UsageError(f"{given[0]} goes with --method unsupervised.")
    if method == "ridge" and alpha is None:
        raise UsageError("--method ridge needs --alpha.")
    if alpha is not None and method != "ridge":
        raise UsageError("--alpha goes with --method ridge.")
    if (anchors is not None or anchor_ids is not None) and pairs == "none":
        raise UsageError("anchors are known pairs; --pairs none has none.")
    fixed = dataclasses.replace(inputs, layer=None, dims=None)  # TGT is one view
    with inputs.open(src) as a, fixed.open(tgt) as b:
        tmap, result = compute_translate_fit(
            a, b, method=method, pairs=pairs, normalize=normalize, alpha=alpha,
            train_fraction=train_fraction, seed=inputs.seed, seeds=seeds or 3,
            retrieval=retrieval, max_eval=eval_size, rank=rank or 128,
            max_items=max_items or 4000, anchors=anchors, anchor_ids=anchor_ids,
            memory=inputs.memory)
    tmap.save(out)
    log(f"geomkit: map written to {out}")
    output.emit(dataclasses.replace(result, map_file=out), source_label=f"{src} -> {tgt}")


@command.command("apply")
@click.argument("map_file", metavar="MAP")
@click.argument("input", metavar="INPUT")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Output HDF5 file (written atomically, metadata copied).")
@click.option("--side", type=click.Choice(["source", "target"]), default="source",
              show_default=True,
              help="source: map INPUT (a source-space dump) into the target space; target: "
                   "apply only the target's preprocessing to INPUT (a target-space dump), so "
                   "it can be searched with translated vectors.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]),
              help="Output dtype (default: float64 for float64 input, else float32).")
@input_options(sweep=False)
@output_options(per_item=False, outputs=(("out", "-o"),))
def apply_command(map_file, input, out, side, dtype, inputs, output):
    """Apply the map in MAP to every row of INPUT (streamed in row blocks) and write -o."""
    from geomkit.transforms.run import transform_file

    tmap = TranslationMap.load(map_file)
    pipeline = tmap.pipeline() if side == "source" else tmap.target
    if side == "target" and not pipeline.steps:
        raise UsageError(f"{map_file}: the map has no target preprocessing (normalize none); "
                         f"the target side is used as it is.")
    with inputs.open(input) as space:
        check_dims(tmap, space, map_file, side=side)
        result = transform_file(space, pipeline, out, dtype=dtype, fit_from=map_file,
                                progress="translate")
    output.emit(result, source_label=input)


@command.command("eval")
@click.argument("map_file", metavar="MAP")
@click.argument("src", metavar="SRC")
@click.argument("tgt", metavar="TGT")
@_pairs_option(["auto", "ids", "rows"])
@RETRIEVAL
@EVAL_SIZE
@input_options(metadata=("ids", "texts"), sweep=False)
@output_options
def eval_command(map_file, src, tgt, pairs, retrieval, eval_size, inputs, output):
    """Evaluate MAP on the paired items of SRC and TGT: mean cosine to the true target, top-1 /
    top-10 accuracy and mean rank among all evaluated targets."""
    tmap = TranslationMap.load(map_file)
    fixed = dataclasses.replace(inputs, layer=None, dims=None)
    with inputs.open(src) as a, fixed.open(tgt) as b:
        result = compute_translate_eval(tmap, a, b, pairs=pairs, retrieval=retrieval,
                                        max_eval=eval_size, seed=inputs.seed,
                                        memory=inputs.memory, map_file=map_file)
    output.emit(result, source_label=f"{src} -> {tgt}")
