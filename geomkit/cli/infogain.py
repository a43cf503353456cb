"""``geomkit infogain CORPUS|COOC.h5``: information gain per word, baselines, norm–KL relation."""

import click
import h5py
import numpy as np

from geomkit.analysis.infogain import compute_infogain
from geomkit.cli.options import input_options, output_options
from geomkit.errors import InputError, UsageError
from geomkit.io.cooccurrence import (count_corpus, read_cooccurrence, shuffled_documents,
                                     word_counts, write_cooccurrence)
from geomkit.report.progress import log


@click.command("infogain")
@click.argument("corpus", metavar="CORPUS|COOC.h5")
@click.option("--window", type=click.IntRange(min=1), default=10, show_default=True,
              help="Co-occurrence window ±h (corpus input).")
@click.option("--min-count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Vocabulary: words occurring at least this often (corpus input).")
@click.option("--baseline", type=click.Choice(["percentile", "shuffle"]), default="percentile",
              show_default=True, help="KL̄ for ΔKL: lower 3rd percentile per frequency bin, or shuffled corpora.")
@click.option("--shuffles", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--embeddings", metavar="EMB.h5", help="Word embeddings whose ids are words.")
@click.option("--context-vectors", metavar="CTX.h5", help="Context (output) vectors, same ids, for the whitened fit.")
@click.option("--fit-min-count", type=float, default=1000, show_default=True,
              help="Fit ‖u‖² against KL on words with n_w above this (paper: 1000).")
@click.option("--keywords", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many keywords (ranked by n_w·KL) to list.")
@click.option("--keywords-for", type=click.Path(dir_okay=False), metavar="DOC.txt",
              help="Rank the keywords of this document: its counts n_w times the corpus KL(w).")
@click.option("--save-cooccurrence", type=click.Path(dir_okay=False), metavar="OUT.h5",
              help="Write the counted co-occurrence matrix (HDF5 CSR, docs/format.md).")
@input_options(metadata=("ids",), sweep=False)
@output_options(outputs=(("save_cooccurrence", "--save-cooccurrence"),))
def command(corpus, window, min_count, baseline, shuffles, embeddings, context_vectors,
            fit_min_count, keywords, keywords_for, save_cooccurrence, inputs, output):
    """KL(p(·|w) ‖ p(·)) per word from a tokenised corpus (one document per line) or a stored
    co-occurrence matrix; with --embeddings, how well ‖u‖² follows it."""
    # the reader's options select a view of --embeddings; without it they could not act
    given = [flag for flag, value in (("--layer", inputs.layer), ("--dims", inputs.dims),
                                      ("--sample", inputs.sample),
                                      ("--drop-nonfinite", inputs.drop_nonfinite),
                                      ("--drop-zero", inputs.drop_zero),
                                      ("--ids", inputs.metadata_names.get("ids")),
                                      ("--allow-external", inputs.allow_external))
             if value not in (None, False)]
    if given and not embeddings:
        raise UsageError(f"{', '.join(given)} select rows or a view of --embeddings; without "
                         f"--embeddings they cannot act.")
    is_h5 = h5py.is_hdf5(corpus) if _exists(corpus) else False
    shuffled = None
    if is_h5:
        if baseline == "shuffle":
            raise UsageError("--baseline shuffle recounts the corpus: give the corpus text, not a matrix.")
        co = read_cooccurrence(corpus)
    else:
        co = count_corpus(corpus, window=window, min_count=min_count, memory=inputs.memory)
        if baseline == "shuffle":
            shuffled = []
            for s in range(shuffles):
                log(f"geomkit: counting shuffled corpus {s + 1}/{shuffles}")
                shuffled.append(count_corpus(corpus, window=window, min_count=min_count,
                                             memory=inputs.memory,
                                             documents=shuffled_documents(corpus, inputs.seed + s)))
    if save_cooccurrence:
        write_cooccurrence(save_cooccurrence, co)
    emb = None
    if embeddings:
        emb = _word_vectors(inputs, embeddings)
        if context_vectors:
            ctx = _word_vectors(inputs, context_vectors)
            if ctx["vectors"].shape[1] != emb["vectors"].shape[1]:
                raise InputError(f"{ctx['label']}: context vectors have {ctx['vectors'].shape[1]} "
                                 f"dimensions, the --embeddings {emb['label']} "
                                 f"{emb['vectors'].shape[1]}.")
            pos = {w: i for i, w in enumerate(ctx["words"])}
            missing = [w for w in emb["words"] if w not in pos]
            if missing:
                raise InputError(f"{context_vectors}: {len(missing)} words of --embeddings have no "
                                 f"context vector (e.g. {missing[0]!r}).")
            emb["context"] = ctx["vectors"][[pos[w] for w in emb["words"]]]
    document = word_counts(keywords_for, co.vocab) if keywords_for and _exists(keywords_for) else None
    result = compute_infogain(co, baseline=baseline, shuffled=shuffled, embeddings=emb,
                              fit_min_count=fit_min_count, keywords=keywords, label=corpus,
                              document_counts=document)
    output.emit(result, source_label=corpus)


def _exists(path):
    import os
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file.")
    return True


def _word_vectors(inputs, spec):
    with inputs.open(spec) as space:
        if space.metadata.ids is None:
            raise InputError(f"{space.label}: needs an ids dataset holding the words.")
        rows, x = space.source.to_array(dtype=np.float64)
        return {"words": [str(w) for w in space.metadata.ids[rows]], "vectors": x,
                "label": space.label, **space.dropped()}
