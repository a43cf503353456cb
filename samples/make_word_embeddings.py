"""Skip-gram word vectors on a real public-domain corpus, for checking `geomkit infogain`.

Corpus: the King James Bible (Debian `bible-kjv`, public domain), one verse per line, lowercased,
letters and apostrophes only. Model: gensim 4 skip-gram with negative sampling (sample-generation
dependency only, samples/requirements-words.txt), fixed seed, one worker for reproducibility.

Writes samples/words_kjv.h5: `embeddings` (V, 100) float32 input vectors, `context` (V, 100) float32
output vectors (syn1neg), `ids` = words, `counts` = corpus frequencies; and samples/kjv_corpus.txt
is written to /tmp only (regenerate with --corpus-out).

    python samples/make_word_embeddings.py [--corpus-out /tmp/kjv_corpus.txt]
    geomkit infogain /tmp/kjv_corpus.txt --embeddings samples/words_kjv.h5 \
        --context-vectors samples/words_kjv.h5:/context --fit-min-count 1000
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent


def corpus_lines() -> list[list[str]]:
    import sys
    sys.path.insert(0, str(HERE))
    from make_samples import read_kjv
    lines = []
    for _, _, text in read_kjv():
        tokens = re.findall(r"[a-z']+", text.lower())
        if tokens:
            lines.append(tokens)
    return lines


def main() -> None:
    from gensim.models import Word2Vec

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus-out", default="/tmp/kjv_corpus.txt")
    args = ap.parse_args()
    lines = corpus_lines()
    Path(args.corpus_out).write_text("\n".join(" ".join(t) for t in lines) + "\n", encoding="utf-8")
    model = Word2Vec(lines, vector_size=100, window=10, min_count=5, sg=1, negative=5,
                     epochs=5, seed=0, workers=1)
    words = model.wv.index_to_key
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words])
    utf8 = h5py.string_dtype("utf-8")
    with h5py.File(HERE / "words_kjv.h5", "w") as f:
        f.create_dataset("embeddings", data=model.wv.vectors.astype(np.float32), compression="gzip")
        context = f.create_group("context")
        context.create_dataset("embeddings", data=model.syn1neg.astype(np.float32), compression="gzip")
        for group in (f, context):
            group.create_dataset("ids", data=np.array(words, dtype=object), dtype=utf8)
            group.create_dataset("counts", data=counts)
        f.attrs["model"] = "gensim Word2Vec skip-gram, d=100, window=10, negative=5, epochs=5, seed=0"
        f.attrs["source"] = "King James Bible (public domain), Debian package bible-kjv-text"
        f.attrs["created_by"] = "samples/make_word_embeddings.py"
    print(f"{len(words)} words, {sum(len(t) for t in lines)} tokens -> samples/words_kjv.h5")


if __name__ == "__main__":
    main()
