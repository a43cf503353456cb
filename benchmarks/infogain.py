"""Counting co-occurrences of a large corpus in bounded memory (tokens per second, peak RSS).

    python benchmarks/infogain.py [--tokens 50000000] [--vocab 50000] [--window 10]

Generates a Zipfian corpus (s = 1.1 over --vocab word types, documents of 5–60 tokens; no real corpus
of this size is available offline) in /tmp, then runs `count_corpus` + KL in a child process and
reports wall time, tokens/s and peak RSS. The file is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from _child import run_child

CHILD = """
import json, time
from geomkit.io.cooccurrence import count_corpus
from geomkit.analysis.infogain import kl_per_word
t = time.perf_counter()
co = count_corpus(PATH, window=WINDOW)
kl = kl_per_word(co)
print(json.dumps({"seconds": time.perf_counter() - t, "n_tokens": co.n_tokens,
                  "n_words": int(co.vocab.size), "nnz": int(co.matrix.nnz)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=50_000_000)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--path", default="/tmp/geomkit_bench_corpus.txt")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ranks = np.arange(1, args.vocab + 1)
    p = ranks ** -1.1
    p /= p.sum()
    words = np.array([f"w{i}" for i in range(args.vocab)])
    t = time.perf_counter()
    written = 0
    with open(args.path, "w") as fh:
        while written < args.tokens:
            ids = rng.choice(args.vocab, size=1_000_000, p=p)
            lengths = rng.integers(5, 61, size=40_000)
            pos = 0
            lines = []
            for n in lengths:
                if pos + n > ids.size:
                    break
                lines.append(" ".join(words[ids[pos:pos + n]]))
                pos += n
            fh.write("\n".join(lines) + "\n")
            written += pos
    print(f"generated {written} tokens in {time.perf_counter() - t:.0f} s", flush=True)
    code = f"PATH = {args.path!r}\nWINDOW = {args.window}\n" + CHILD
    text, rss = run_child(code, "infogain")
    out = json.loads(text)
    out["peak_rss_mib"] = rss
    out["tokens_per_second"] = out["n_tokens"] / out["seconds"]
    out["window"] = args.window
    print(json.dumps(out, indent=2))
    os.remove(args.path)


if __name__ == "__main__":
    main()
