"""Translation between two real sentence models of the same 3000 verses (docs/translate.md).

    python benchmarks/translate_real.py [--seeds 5]

Source: samples/minilm_kjv.h5 (all-MiniLM-L6-v2, 384-d); target: samples/mpnet_kjv.h5
(all-mpnet-base-v2, 768-d), the same verses under the same ids. One seeded split of the 3000
items: 600 held-out pairs that every method is evaluated on (each true target ranked among the
600, CSLS retrieval), the rest to fit on.

- supervised: procrustes, lstsq, ridge, affine on the 2400 training pairs (both directions);
- unsupervised (a): the 2400 training items of both models, each side shuffled on its own and no
  ids given (the correspondence is unknown), for several seeds;
- unsupervised (b): disjoint items, vec2vec's setting: 1200 training items from MiniLM and the
  other 1200 from mpnet;
- the label-free confidence of every unsupervised map (mutual best matches, seed agreement) next
  to its real accuracy, and the compare metrics between the two models.

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()

    from geomkit import Space
    from geomkit.analysis.compare import compute_compare
    from geomkit.analysis.translate import evaluate_map, fit_map
    from geomkit.engine.pairs import pair_rows

    a = Space.open(str(ROOT / "samples/minilm_kjv.h5"))
    b = Space.open(str(ROOT / "samples/mpnet_kjv.h5"))
    pairs = pair_rows(a, b)
    perm = np.random.default_rng(0).permutation(pairs.n)
    train, test = pairs.take(perm[:2400]), pairs.take(perm[2400:])

    c = compute_compare(a, b, k=10)
    print("## compare minilm_kjv vs mpnet_kjv (3000 items)\n")
    print("| cka_linear | cka_unbiased | cknna | mutual_knn | cycle_knn | similarity_spearman | "
          "knn_jaccard_mean |\n|---|---|---|---|---|---|---|")
    print(f"| {c.cka_linear:.3f} | {c.cka_unbiased:.3f} | {c.cknna:.3f} | {c.mutual_knn:.3f} | "
          f"{c.cycle_knn:.3f} | {c.similarity_spearman:.3f} | {c.knn_jaccard_mean:.3f} |\n")

    def row(name, tmap, src, tgt, held, seconds):
        ev = evaluate_map(tmap, src, tgt, held, retrieval="csls")
        conf = tmap.info.get("confidence") or {}
        agree = conf.get("seed_agreement")
        print(f"| {name} | {ev['top1']:.3f} | {ev['top10']:.3f} | {ev['mean_rank']:.1f} | "
              f"{ev['mean_cosine']:.3f} | "
              + (f"{conf['mutual_share']:.3f} | {'-' if agree is None else f'{agree:.3f}'} | "
                 f"{conf['verdict']} | " if conf else "- | - | - | ")
              + f"{seconds:.1f} |")

    header = ("| map | top-1 | top-10 | mean rank (random 300.5) | mean cos | mutual share | "
              "seed agreement | verdict | fit s |\n|---|---|---|---|---|---|---|---|---|")
    print("## supervised, 2400 training pairs, 600 held-out pairs\n")
    print(header)
    for src, tgt, tr, held, way in ((a, b, train, test, "MiniLM 384 -> mpnet 768"),
                                    (b, a, _swap(train), _swap(test), "mpnet 768 -> MiniLM 384")):
        for method, alpha in (("procrustes", None), ("lstsq", None), ("ridge", 1.0),
                              ("affine", None)):
            t = time.perf_counter()
            tmap = fit_map(src, tgt, tr, method=method, alpha=alpha)
            row(f"{way}, {method}" + (f" α={alpha:g}" if alpha else ""), tmap, src, tgt, held,
                time.perf_counter() - t)

    print("\n## unsupervised (no pairs used), evaluated on the same 600 held-out pairs\n")
    print(header)
    chance = 1 / test.n
    for seed in range(args.seeds):
        t = time.perf_counter()
        tmap = fit_map(a, b, None, method="unsupervised", seed=seed, seeds=1,
                       source_rows=np.sort(train.a), target_rows=np.sort(train.b))
        row(f"(a) same 2400 items, correspondence unknown, seed {seed}", tmap, a, b, test,
            time.perf_counter() - t)
    half = perm[:2400]
    s1, s2 = np.sort(pairs.a[half[:1200]]), np.sort(pairs.b[half[1200:]])
    for seed in range(args.seeds):
        t = time.perf_counter()
        tmap = fit_map(a, b, None, method="unsupervised", seed=seed, seeds=1,
                       source_rows=s1, target_rows=s2)
        row(f"(b) disjoint 1200 + 1200 items, seed {seed}", tmap, a, b, test,
            time.perf_counter() - t)
    for label, rows_s, rows_t in (("(a)", np.sort(train.a), np.sort(train.b)), ("(b)", s1, s2)):
        t = time.perf_counter()
        tmap = fit_map(a, b, None, method="unsupervised", seed=0, seeds=3,
                       source_rows=rows_s, target_rows=rows_t)
        row(f"{label} default: 3 seeds, best objective", tmap, a, b, test,
            time.perf_counter() - t)
        if label == "(a)":
            ev = evaluate_map(tmap, a, b, train, retrieval="nn")
            recovered = f"{ev['top1']:.3f}"
    print(f"\n(a): the unsupervised map finds the true partner of {recovered} of the 2400 "
          f"items it was fitted on (nearest neighbour among the 2400)")
    print(f"\nchance top-1 = {chance:.4f}, top-10 = {10 * chance:.4f}")


def _swap(p):
    from geomkit.engine.pairs import Pairs

    order = np.argsort(p.b, kind="stable")
    return Pairs(p.b[order], p.a[order], p.unmatched_b, p.unmatched_a, p.how)


if __name__ == "__main__":
    main()
