"""Every option of every command acts: set where it can act, it changes what the command produces
(stdout as JSON and as a table, the --per-item file) or it is refused with exit 2. An option that
is accepted and changes nothing fails here.

The table ``ACTS`` must name every (command, option) pair the click objects declare (a new option
without an entry fails ``test_every_option_is_in_the_table``). Options about the output itself
(--format/--json/--per-item/--html/--quiet) and about resources (--memory, --device) cannot
change the numbers; ``test_output_and_resource_options`` checks what they do instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import h5py
import numpy as np
import pytest

from conftest import write_h5

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hardening"))
from badfiles import invoke  # noqa: E402  (the console script in-process, via CliRunner)

N, D = 60, 8
OUTPUT = {"--format", "--json", "--per-item", "--html", "--quiet"}
# --scheduler: where the passes run, never the numbers (tests/engine/test_dask_cli.py checks
# that it runs tasks on the cluster and gives the local numbers, and where it is refused)
RESOURCE = {"--memory", "--device", "--scheduler"}


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    rng = np.random.default_rng(3)
    tmp = tmp_path_factory.mktemp("opts")
    x = rng.standard_normal((N, D)) + np.linspace(0, 1, D)
    words = [f"w{i}" for i in range(N)]
    meta = dict(ids=words, texts=[f"text {i}" for i in range(N)],
                labels=[f"c{i % 3}" for i in range(N)], counts=rng.integers(1, 500, N),
                year=x[:, 0] + rng.normal(0, 0.2, N), ids2=[f"other{i}" for i in range(N)],
                texts2=[f"other text {i}" for i in range(N)], ids_rev=words[::-1],
                labels2=[f"d{i % 2}" for i in range(N)], counts2=rng.integers(1, 50, N))
    paths = {"x": write_h5(tmp / "x.h5", x, **meta)}
    meta_y = {k: v[:40] for k, v in meta.items()}
    paths["y"] = write_h5(tmp / "y.h5", rng.standard_normal((40, D)) + 0.5, **meta_y)
    paths["xrev"] = write_h5(tmp / "xrev.h5", x[::-1], ids=words[::-1],
                             ids2=[f"other{i}" for i in range(N)])
    paths["stack"] = write_h5(tmp / "stack.h5", np.stack([x, x[::-1] * 2], 1), dataset="h",
                              **meta)
    bad = x.copy()
    bad[4, 1] = np.nan
    bad[9] = 0.0
    paths["nan"] = write_h5(tmp / "nan.h5", bad, **meta)
    zero = x.copy()
    zero[9] = 0.0
    paths["zero"] = write_h5(tmp / "zero.h5", zero, **meta)
    with h5py.File(tmp / "ext.h5", "w") as h:
        h["embeddings"] = h5py.ExternalLink(str(paths["x"]), "/embeddings")
    paths["ext"] = tmp / "ext.h5"
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 30)) for _ in range(80)) + "\n")
    paths["corpus"] = corpus
    paths["doc"] = tmp / "doc.txt"
    paths["doc"].write_text("w1 w1 w1 w2\n")
    with h5py.File(tmp / "ctx.h5", "w") as h:
        h["embeddings"] = rng.standard_normal((N, D))
        h["ids"] = np.array(words, dtype=object)
    paths["ctx"] = tmp / "ctx.h5"
    invoke(["transform", paths["x"], "-o", tmp / "fitted.h5", "--center", "--whiten"])
    paths["fitted"] = tmp / "fitted.h5"
    invoke(["axes", "fit", paths["x"], "--attribute", "year", "-o", tmp / "axis.h5"])
    paths["axis"] = tmp / "axis.h5"
    invoke(["translate", "fit", paths["x"], paths["y"], "-o", tmp / "map.h5"])
    paths["map"] = tmp / "map.h5"
    invoke(["translate", "fit", paths["x"], paths["y"], "-o", tmp / "map4.h5", "--dims", "4"])
    paths["map4"] = tmp / "map4.h5"
    (tmp / "anchors.txt").write_text("w1\nw3\nw5\nw7\nw11\n")
    (tmp / "rules.toml").write_text('[min]\n"isotropy.n" = 1\n')
    paths["rules"] = tmp / "rules.toml"
    paths["anchors"] = tmp / "anchors.txt"
    paths["tmp"] = tmp
    return {k: str(v) for k, v in paths.items()}


def _all_pairs():
    from geomkit.cli.main import cli

    out = []

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), path + [name])
        else:
            for p in cmd.params:
                if isinstance(p, click.Option):
                    out.append((" ".join(path), p.opts[0]))
    for name in cli.list_commands(None):
        walk(cli.get_command(None, name), [name])
    return out


# command -> base argv ({x} etc. filled from the fixture); the option's argv is appended to it
BASE = {
    "info": ["info", "{x}"],
    "transform": ["transform", "{x}", "-o", "{tmp}/t.h5", "--center"],
    "isotropy": ["isotropy", "{x}"],
    "hubness": ["hubness", "{x}", "-k", "3"],
    "depth": ["depth", "{x}", "{y}"],
    "drift": ["drift", "{x}", "{y}", "--permutations", "30"],
    "norms": ["norms", "{x}"],
    "infogain": ["infogain", "{corpus}", "--window", "2", "--embeddings", "{x}",
                 "--fit-min-count", "0"],
    "axes fit": ["axes", "fit", "{x}", "--attribute", "year", "-o", "{tmp}/a.h5"],
    "axes score": ["axes", "score", "{x}", "--attribute", "year", "--folds", "3",
                   "--null-directions", "100", "--shots", "5", "--no-upper-bound"],
    "axes project": ["axes", "project", "{x}", "--axis", "{axis}"],
    "compare": ["compare", "{x}", "{x}", "-k", "3"],
    "translate fit": ["translate", "fit", "{x}", "{y}", "-o", "{tmp}/m.h5", "--train-fraction",
                      "0.7"],
    "translate apply": ["translate", "apply", "{map}", "{x}", "-o", "{tmp}/ta.h5"],
    "translate eval": ["translate", "eval", "{map}", "{x}", "{y}"],
    "report": ["report", "{x}", "-o", "{tmp}/r.html", "-k", "3"],
    "check": ["check", "{x}", "--max", "norms.mean=1000"],
    "intdim": ["intdim", "{x}", "-k", "5"],
}

_UNSUP = ["--method", "unsupervised", "--pairs", "rows"]

# options common to the reader: (argv added, or a replacement of the base via "base")
READER = {
    "--layer": {"base": lambda b: [a.replace("{x}", "{stack}:/h") for a in b],
                "ref": ["--layer", "0"], "add": ["--layer", "1"]},
    "--dims": ["--dims", "4"],
    "--sample": ["--sample", "30"],
    "--seed": {"add": ["--sample", "30", "--seed", "5"], "ref": ["--sample", "30"]},
    "--drop-nonfinite": {"base": lambda b: [a.replace("{x}", "{nan}") for a in b],
                         "add": ["--drop-nonfinite", "--drop-zero"]},
    "--drop-zero": {"base": lambda b: [a.replace("{x}", "{zero}") for a in b],
                    "add": ["--drop-zero"]},
    "--allow-external": {"base": lambda b: [a.replace("{x}", "{ext}") for a in b],
                         "add": ["--allow-external"]},
    "--ids": ["--ids", "ids2"],
    "--texts": ["--texts", "texts2"],
    "--labels": ["--labels", "labels2"],
    "--counts": ["--counts", "counts2"],
}

SPECIFIC = {
    ("intdim", "-k"): ["-k", "6"],
    ("intdim", "--estimators"): ["--estimators", "twonn,mle"],
    ("intdim", "--discard"): ["--discard", "0.3"],
    ("intdim", "--twonn-fit"): ["--twonn-fit", "mle"],
    ("intdim", "--mle-average"): ["--mle-average", "mean"],
    ("intdim", "--gride-n1"): ["--gride-n1", "2"],
    ("intdim", "--scales"): ["--scales", "8"],
    ("intdim", "--variance"): ["--variance", "0.5"],
    ("intdim", "--local-twonn"): ["--local-twonn", "10"],
    ("intdim", "--with-hubness"): ["--with-hubness"],
    ("intdim", "--approximate"): ["--approximate"],  # issue 17: knn.exact false, recall
    ("intdim", "--nprobe"): {"base": lambda b: b + ["--approximate"], "add": ["--nprobe", "1"]},
    # 60 rows: no tuning queries beyond the recall sample, every list searched: refused
    ("intdim", "--target-recall"): {"base": lambda b: b + ["--approximate"],
                                    "add": ["--target-recall", "0.5"]},
    ("hubness", "--target-recall"): {"base": lambda b: b + ["--approximate"],
                                     "add": ["--target-recall", "0.5"]},
    ("compare", "--target-recall"): ["--target-recall", "0.5"],  # 60 pairs: exact, refused
    ("info", "--scan"): ["--scan"],
    ("transform", "-o"): {"add": ["-o", "{tmp}/t2.h5"], "files": True},
    ("transform", "--center"): {"base": lambda b: b[:4] + ["--normalize"], "add": ["--center"]},
    ("transform", "--normalize"): ["--normalize"],
    ("transform", "--whiten"): ["--whiten"],
    ("transform", "--components"): {"base": lambda b: b + ["--whiten"], "add": ["--components", "3"]},
    ("transform", "--abtt"): ["--abtt", "1"],
    ("transform", "--fit-from"): {"base": lambda b: b[:4], "ref": ["--center"],
                                  "add": ["--fit-from", "{fitted}"]},
    ("transform", "--dtype"): {"add": ["--dtype", "float32"], "files": True},
    ("isotropy", "--zeta"): ["--zeta", "0.5"],
    ("isotropy", "--c0"): ["--c0", "{y}"],
    ("isotropy", "--transform"): ["--transform", "center"],
    ("isotropy", "--uniformity-max"): ["--uniformity-max", "10"],
    ("hubness", "-k"): ["-k", "5"],
    ("hubness", "--metric"): ["--metric", "euclidean"],
    ("hubness", "--reduce"): ["--reduce", "none,ls"],
    ("hubness", "--hub-size"): ["--hub-size", "1.2"],
    ("hubness", "--knn-error"): ["--knn-error"],
    ("hubness", "--approximate"): ["--approximate"],
    ("compare", "--nprobe"): ["--nprobe", "2"],  # 60 pairs: exact neighbours, refused
    ("hubness", "--nprobe"): {"base": lambda b: b + ["--approximate"], "add": ["--nprobe", "2"]},
    ("hubness", "--mp-candidates"): {"base": lambda b: b + ["--reduce", "mp"],
                                     "add": ["--mp-candidates", "8"]},
    ("hubness", "--querybank"): {"base": lambda b: b + ["--reduce", "dis"],
                                 "add": ["--querybank", "{y}"]},
    ("depth", "--depth"): ["--depth", "spatial"],
    ("depth", "--alternative"): ["--alternative", "less"],
    ("depth", "--split-by"): {"base": lambda b: b[:2], "add": ["--split-by", "labels", "--ref",
                                                              "c0", "--test", "c1"]},
    ("depth", "--ref"): {"base": lambda b: b[:2] + ["--split-by", "labels", "--ref", "c0",
                                                    "--test", "c1"],
                         "add": ["--ref", "c2"]},
    ("depth", "--test"): {"base": lambda b: b[:2] + ["--split-by", "labels", "--ref", "c0",
                                                     "--test", "c1"],
                          "add": ["--test", "c2"]},
    # labels act only in --split-by; without it --labels is refused
    ("depth", "--labels"): {"base": lambda b: b[:2] + ["--split-by", "labels", "--ref", "d0",
                                                      "--test", "d1"],
                            "add": ["--labels", "labels2"]},
    ("drift", "--tests"): ["--tests", "mmd,ks"],
    ("drift", "--alpha"): ["--alpha", "0.2"],
    ("drift", "--sigma"): ["--sigma", "2.5"],
    ("drift", "--permutations"): ["--permutations", "40"],
    ("drift", "--max-rows"): ["--max-rows", "30"],
    ("drift", "--ks-components"): ["--ks-components", "3"],
    # one view per side: both sides are the stack, at layer 0 (ref) or 1
    ("drift", "--layer"): {"base": lambda b: [a.replace("{x}", "{stack}:/h")
                                              .replace("{y}", "{stack}:/h") for a in b],
                           "ref": ["--layer", "0"], "add": ["--layer", "1"]},
    ("norms", "--group-by"): ["--group-by", "labels2"],
    ("norms", "--no-likelihood"): ["--no-likelihood"],
    ("infogain", "--ids"): ["--ids", "ids_rev"],  # the words of the embeddings' rows
    ("infogain", "--window"): ["--window", "4"],
    ("infogain", "--min-count"): ["--min-count", "45"],
    ("infogain", "--baseline"): ["--baseline", "shuffle", "--shuffles", "2"],
    ("infogain", "--shuffles"): {"base": lambda b: b + ["--baseline", "shuffle", "--shuffles", "2"],
                                 "add": ["--shuffles", "3"]},
    ("infogain", "--embeddings"): {"base": lambda b: b[:4],
                                   "add": ["--embeddings", "{x}", "--fit-min-count", "0"]},
    ("infogain", "--context-vectors"): ["--context-vectors", "{ctx}"],
    ("infogain", "--fit-min-count"): ["--fit-min-count", "60"],
    ("infogain", "--keywords"): ["--keywords", "3"],
    ("infogain", "--keywords-for"): ["--keywords-for", "{doc}"],
    ("infogain", "--save-cooccurrence"): {"add": ["--save-cooccurrence", "{tmp}/co.h5"],
                                          "files": True},
    ("axes fit", "--attribute"): {"base": lambda b: b, "add": ["--attribute", "counts"]},
    ("axes fit", "-o"): {"add": ["-o", "{tmp}/a2.h5"]},
    ("axes fit", "--method"): ["--method", "pca"],
    ("axes fit", "--low"): {"add": ["--method", "poles", "--low", "w1", "--high", "w2"],
                            "ref": ["--method", "poles"]},
    ("axes fit", "--high"): {"add": ["--method", "poles", "--low", "w1", "--high", "w3"],
                             "ref": ["--method", "poles", "--low", "w1", "--high", "w2"]},
    ("axes score", "--attribute"): {"add": ["--attribute", "counts"]},
    ("axes score", "--method"): ["--method", "poles"],
    ("axes score", "--folds"): ["--folds", "4"],
    ("axes score", "--shots"): ["--shots", "10"],
    ("axes score", "--null-directions"): ["--null-directions", "150"],
    ("axes score", "--no-upper-bound"): {"base": lambda b: b[:-1], "add": ["--no-upper-bound"]},
    ("axes project", "--axis"): {"add": ["--axis", "{axis}"]},
    ("compare", "-k"): ["-k", "5"],
    # B is A's rows reversed with their ids: by ids the same items pair, by rows others do
    ("compare", "--pairs"): {"base": lambda b: ["compare", "{x}", "{xrev}"],
                             "add": ["--pairs", "rows"]},
    ("axes project", "--attribute"): ["--attribute", "year"],
    ("compare", "--rsa-sample"): ["--rsa-sample", "10"],
    ("compare", "--knn-items"): ["--knn-items", "30"],
    ("compare", "--anchors"): ["--anchors", "5"],
    ("compare", "--anchor-ids"): {"add": ["--anchor-ids", "{anchors}"]},
    ("translate fit", "--anchors"): ["--anchors", "5"],
    # the anchors are training pairs: all pairs train here
    ("translate fit", "--anchor-ids"): {"base": lambda b: b[:-2],
                                        "add": ["--anchor-ids", "{anchors}"]},
    ("translate fit", "-o"): {"add": ["-o", "{tmp}/m2.h5"]},
    ("translate fit", "--method"): ["--method", "lstsq"],
    ("translate fit", "--alpha"): {"add": ["--method", "ridge", "--alpha", "50"],
                                   "ref": ["--method", "ridge", "--alpha", "0.5"]},
    ("translate fit", "--normalize"): ["--normalize", "none"],
    # B is A's rows reversed with their ids: by ids the same items pair, by rows others do
    ("translate fit", "--pairs"): {"base": lambda b: [a.replace("{y}", "{xrev}") for a in b],
                                   "add": ["--pairs", "rows"]},
    ("translate fit", "--train-fraction"): ["--train-fraction", "0.5"],
    ("translate fit", "--seeds"): {"base": lambda b: [a.replace("{y}", "{xrev}") for a in b]
                                   + _UNSUP, "add": ["--seeds", "2"]},
    ("translate fit", "--rank"): {"base": lambda b: [a.replace("{y}", "{xrev}") for a in b]
                                  + _UNSUP, "add": ["--rank", "3"]},
    ("translate fit", "--max-items"): {"base": lambda b: [a.replace("{y}", "{xrev}") for a in b]
                                       + _UNSUP, "add": ["--max-items", "25"]},
    ("translate fit", "--retrieval"): ["--retrieval", "nn"],
    ("translate fit", "--eval-size"): ["--eval-size", "5"],
    ("translate fit", "--ids"): ["--ids", "ids_rev"],
    ("translate apply", "-o"): {"add": ["-o", "{tmp}/ta2.h5"]},
    ("translate apply", "--side"): ["--side", "target"],
    ("translate apply", "--dtype"): {"add": ["--dtype", "float32"], "files": True},
    ("translate apply", "--dims"): {"base": lambda b: [a.replace("{map}", "{map4}") for a in b],
                                    "add": ["--dims", "4"]},
    ("translate eval", "--pairs"): {"base": lambda b: [a.replace("{y}", "{xrev}") for a in b],
                                    "add": ["--pairs", "rows"]},
    ("translate eval", "--retrieval"): ["--retrieval", "nn"],
    ("translate eval", "--eval-size"): ["--eval-size", "5"],
    ("translate eval", "--ids"): ["--ids", "ids_rev"],
    ("translate eval", "--dims"): {"base": lambda b: [a.replace("{map}", "{map4}") for a in b],
                                   "add": ["--dims", "4"]},
    ("report", "-o"): {"add": ["-o", "{tmp}/r2.html"]},
    ("report", "--vs"): ["--vs", "{y}"],
    ("report", "--quick"): {"add": ["--quick", "--quick-rows", "30"]},
    ("report", "--quick-rows"): {"base": lambda b: b + ["--quick"], "add": ["--quick-rows", "30"]},
    ("report", "-k"): ["-k", "5"],
    ("report", "--map-points"): ["--map-points", "20"],
    ("report", "--map"): ["--map", "umap"],  # refused (exit 2) where umap-learn is not installed
    ("check", "--max"): ["--max", "isotropy.n=1000"],
    ("check", "--min"): ["--min", "isotropy.n=1"],
    ("check", "--between"): ["--between", "isotropy.n=1,1000"],
    ("check", "--rules"): {"add": ["--rules", "{rules}"]},
    ("check", "--defaults"): ["--defaults"],
    ("check", "--vs"): {"add": ["--vs", "{y}", "--max", "compare.n=1000"],
                        "ref": ["--max", "compare.n=1000"]},
    ("check", "-k"): {"base": lambda b: b + ["--max", "hubness.k_skewness=100"],
                      "add": ["-k", "5"]},
    # ids pair the items of --vs: {xrev}'s ids2 are in row order, so --ids ids2 pairs x's row i
    # with the reversed item, --ids (default) with the same item
    ("check", "--ids"): {"base": lambda b: ["check", "{x}", "--vs", "{xrev}", "--max",
                                            "compare.cka_linear=2"], "add": ["--ids", "ids2"]},
    ("check", "--labels"): {"base": lambda b: b + ["--max", "hubness.knn_error=1"],
                            "add": ["--labels", "labels2"]},
    ("check", "--counts"): {"base": lambda b: b + ["--max", "norms.frequency.spearman=1"],
                            "add": ["--counts", "counts2"]},
}


def _entry(command, option):
    if option in OUTPUT or option in RESOURCE:
        return None
    if (command, option) in SPECIFIC:
        return SPECIFIC[(command, option)]
    return READER.get(option, "missing")


def _fill(args, f):
    return [a.format(**f) for a in args]


def _outputs(args, f, files):
    """(exit code, what the command produced): JSON, the table view, the --per-item CSV and,
    for commands whose product is a file, a digest of its datasets."""
    if args[0] == "report":  # its product: the page (plotly's random div ids set aside) and JSON
        import hashlib
        import re

        page = Path(args[len(args) - 1 - args[::-1].index("-o") + 1])
        doc = page.with_suffix(".json")
        code, out, err, tb = invoke(args + ["--json", doc, "-q"])
        assert not tb, tb
        if code != 0:
            return code, err
        text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "",
                      page.read_text())
        return code, [out, json.loads(doc.read_text()),
                      hashlib.sha1(text.encode()).hexdigest()]
    code, out, err, tb = invoke(args + ["--json", "--quiet"])
    assert not tb, tb
    if code != 0:
        return code, err
    produced = [out]
    code2, table, _, _ = invoke(args + ["--format", "table", "--quiet"])
    produced.append(table)
    if files:  # the files the command writes: every dataset's values
        import hashlib

        for flag, path in zip(args, args[1:]):
            if flag in ("-o", "--save-cooccurrence") and Path(path).exists():
                with h5py.File(path) as h:
                    names = []
                    h.visititems(lambda name, obj: names.append(name)
                                 if isinstance(obj, h5py.Dataset) else None)
                    produced.append([(n, hashlib.sha1(repr(h[n][()].tolist()).encode())
                                      .hexdigest()) for n in sorted(names)])
    return code, produced


PAIRS = [p for p in _all_pairs() if _entry(*p) is not None]


def test_every_option_is_in_the_table():
    missing = [p for p in _all_pairs() if _entry(*p) == "missing"]
    assert not missing, f"options with no entry in ACTS: {missing}"


@pytest.mark.parametrize("command,option", PAIRS, ids=[f"{c}:{o}" for c, o in PAIRS])
def test_option_changes_the_output_or_is_refused(f, command, option):
    entry = _entry(command, option)
    if isinstance(entry, list):
        entry = {"add": entry}
    base = entry.get("base", lambda b: b)(list(BASE[command]))
    ref = base + entry.get("ref", [])
    with_option = base + entry["add"]
    files = "-o" in base or entry.get("files", False)
    code_ref, ref_out = _outputs(_fill(ref, f), f, files)
    code_opt, opt_out = _outputs(_fill(with_option, f), f, files)
    if code_opt == 2:
        return  # refused: fine
    assert code_opt == 0, (command, option, opt_out)
    assert (code_ref, ref_out) != (code_opt, opt_out), (
        f"{command} {option}: accepted and nothing changed")


def test_output_and_resource_options(f, tmp_path):
    base = _fill(BASE["isotropy"], f)
    code, out_json, err, _ = invoke(base + ["--json"])
    code2, out_csv, _, _ = invoke(base + ["--format", "csv"])
    assert code == code2 == 0 and out_json != out_csv and json.loads(out_json)
    assert invoke(base + ["--json", "--format", "csv"])[0] == 2
    per_item = tmp_path / "p.csv"
    html = tmp_path / "p.html"
    assert invoke(base + ["--per-item", per_item, "--html", html, "--json"])[0] == 0
    assert per_item.read_text().startswith("row,") and "<html" in html.read_text().lower()
    # --quiet silences the log lines (the page written is logged otherwise)
    assert "HTML report written" in invoke(base + ["--html", html, "--json"])[2]
    assert invoke(base + ["--html", html, "--json", "--quiet"])[2] == ""
    # --memory bounds the row blocks, never the numbers: the same JSON with a tiny budget;
    # below 1MB it is refused
    small = invoke(base + ["--memory", "1MB", "--json"])[1]
    assert json.loads(small) == json.loads(out_json)
    assert invoke(base + ["--memory", "1KB"])[0] == 2
    # --device picks where the products run: cpu gives the same numbers, an absent one is refused
    hub = _fill(BASE["hubness"], f)
    assert invoke(hub + ["--device", "cpu", "--json"])[1] == invoke(hub + ["--json"])[1]
    assert invoke(hub + ["--device", "nonexistent"])[0] == 2
