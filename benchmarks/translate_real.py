"""Translation between two real sentence models of the same 3000 verses (docs/translate.md).

    python benchmarks/translate_real.py [--seeds 5] [--smoke] [--markdown PATH]

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

Prints markdown tables (--markdown: the section of docs/performance.md). --smoke: one seed,
(a) on 800 items, no (b), no 3-seed defaults, every method one way and procrustes the other;
checks that the supervised maps and the unsupervised map of (a) find >= 99% of the held-out
partners and that (a) says `converged`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import Checks, add_record_args, machine, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    add_record_args(ap)
    args = ap.parse_args()
    checks = Checks()
    if args.smoke:
        args.seeds = 1

    from geomkit import Space
    from geomkit.analysis.compare import compute_compare
    from geomkit.analysis.translate import evaluate_map, fit_map
    from geomkit.engine.pairs import pair_rows

    a = Space.open(str(ROOT / "samples/minilm_kjv.h5"))
    b = Space.open(str(ROOT / "samples/mpnet_kjv.h5"))
    pairs = pair_rows(a, b)
    perm = np.random.default_rng(0).permutation(pairs.n)
    train, test = pairs.take(perm[:2400]), pairs.take(perm[2400:])
    md: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        md.append(line)

    c = compute_compare(a, b, k=10)
    emit(f"Compare metrics of the two models (3000 items): CKA {c.cka_linear:.3f}, unbiased "
         f"{c.cka_unbiased:.3f}, CKNNA {c.cknna:.3f}, mutual 10-NN {c.mutual_knn:.3f}, cycle "
         f"{c.cycle_knn:.3f}, similarity Spearman {c.similarity_spearman:.3f}, k-NN Jaccard "
         f"{c.knn_jaccard_mean:.3f}.")
    emit()

    def row(name, tmap, src, tgt, held, seconds):
        ev = evaluate_map(tmap, src, tgt, held, retrieval="csls")
        conf = tmap.info.get("confidence") or {}
        agree = conf.get("seed_agreement")
        emit(f"| {name} | {ev['top1']:.3f} | {ev['top10']:.3f} | {ev['mean_rank']:.1f} | "
             f"{ev['mean_cosine']:.3f} | "
             + (f"{conf['mutual_share']:.3f} | {'-' if agree is None else f'{agree:.3f}'} | "
                f"{conf['verdict']} | " if conf else "- | - | - | ")
             + f"{seconds:.1f} s |")
        return ev, conf

    header = ("| map | top-1 | top-10 | mean rank (random 300.5) | mean cos | mutual share | "
              "seed agreement | verdict | fit |\n|---|---|---|---|---|---|---|---|---|")
    emit("Supervised, 2400 training pairs, 600 held-out pairs:")
    emit()
    emit(header)
    for src, tgt, tr, held, way in ((a, b, train, test, "MiniLM 384 → mpnet 768"),
                                    (b, a, _swap(train), _swap(test), "mpnet 768 → MiniLM 384")):
        for method, alpha in (("procrustes", None), ("lstsq", None), ("ridge", 1.0),
                              ("affine", None)):
            if args.smoke and src is b and method != "procrustes":
                continue  # smoke: every method one way, procrustes the other way
            t = time.perf_counter()
            tmap = fit_map(src, tgt, tr, method=method, alpha=alpha)
            ev, _ = row(f"{way}, {method}" + (f" α={alpha:g}" if alpha else ""), tmap, src, tgt,
                        held, time.perf_counter() - t)
            checks(ev["top1"] >= 0.99, f"{way}, {method}: held-out top-1 {ev['top1']:.3f} >= 0.99")

    emit()
    emit("Unsupervised (no pairs used), evaluated on the same 600 held-out pairs:")
    emit()
    emit(header)
    chance = 1 / test.n
    n_a = 800 if args.smoke else train.n  # smoke: (a) on 800 of the training items, quicker
    for seed in range(args.seeds):
        t = time.perf_counter()
        tmap = fit_map(a, b, None, method="unsupervised", seed=seed, seeds=1,
                       source_rows=np.sort(train.a[:n_a]), target_rows=np.sort(train.b[:n_a]))
        ev, conf = row(f"(a) same {n_a} items, correspondence unknown, seed {seed}", tmap, a, b,
                       test, time.perf_counter() - t)
        checks(ev["top1"] >= 0.99 and conf.get("verdict") == "converged",
               f"(a) seed {seed}: top-1 {ev['top1']:.3f} >= 0.99, verdict {conf.get('verdict')}")
    half = perm[:2400]
    s1, s2 = np.sort(pairs.a[half[:1200]]), np.sort(pairs.b[half[1200:]])
    for seed in range(0 if args.smoke else args.seeds):
        t = time.perf_counter()
        tmap = fit_map(a, b, None, method="unsupervised", seed=seed, seeds=1,
                       source_rows=s1, target_rows=s2)
        row(f"(b) disjoint 1200 + 1200 items, seed {seed}", tmap, a, b, test,
            time.perf_counter() - t)
    recovered = None
    if not args.smoke:
        for label, rows_s, rows_t in (("(a)", np.sort(train.a), np.sort(train.b)), ("(b)", s1, s2)):
            t = time.perf_counter()
            tmap = fit_map(a, b, None, method="unsupervised", seed=0, seeds=3,
                           source_rows=rows_s, target_rows=rows_t)
            _, conf = row(f"{label} default: 3 seeds, best objective", tmap, a, b, test,
                          time.perf_counter() - t)
            if label == "(a)":
                ev = evaluate_map(tmap, a, b, train, retrieval="nn")
                recovered = ev["top1"]
            else:
                checks(conf.get("verdict") == "unreliable",
                       f"(b) default: verdict {conf.get('verdict')} (disjoint items: unreliable)")
    emit()
    if recovered is not None:
        emit(f"(a): the unsupervised map finds the true partner of {recovered:.3f} of the 2400 "
             "items it was fitted on (nearest neighbour among the 2400).")
    emit(f"Chance top-1 = {chance:.4f}, top-10 = {10 * chance:.4f}. Retrieval is CSLS; each true "
         "target is ranked among the 600 held-out targets, ties count against (one verse text "
         "occurs three times among them). (b) is vec2vec's setting with 1200 items a side and no "
         "neural adapters: the label-free confidence is what should say `unreliable` there.")
    if args.markdown:
        section = [
            "## translate_real — `benchmarks/translate_real.py` (MiniLM 384-d ↔ mpnet 768-d, "
            "3000 real verses; accuracy and fit time)",
            "",
            f"{machine()}. `samples/minilm_kjv.h5` (all-MiniLM-L6-v2) and `samples/mpnet_kjv.h5` "
            "(all-mpnet-base-v2), the same verses under the same ids; one seeded split: 2400 items "
            "to fit, 600 held-out pairs. No peer: the quality reference is the truth of the pairs "
            "(docs/translate.md discusses it).",
            "",
            *md,
        ]
        write_section(args.markdown, "\n".join(section))
    checks.exit()


def _swap(p):
    from geomkit.engine.pairs import Pairs

    order = np.argsort(p.b, kind="stable")
    return Pairs(p.b[order], p.a[order], p.unmatched_b, p.unmatched_a, p.how)


if __name__ == "__main__":
    main()
