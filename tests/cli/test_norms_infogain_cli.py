"""`geomkit norms` and `geomkit infogain` through the installed command."""

import numpy as np

from conftest import run_cli, run_json, write_h5


def test_norms_json_contract_and_sweep(tmp_path, rng):
    x = rng.standard_normal((100, 2, 6))
    p = write_h5(tmp_path / "s.h5", x, dataset="hidden", labels=["a"] * 50 + ["b"] * 50)
    out = run_json("norms", p, "--layer", "all", "--labels", "labels")
    for key in ("n", "d", "mean", "std", "cv", "min", "max", "quantiles", "n_outliers", "n_zero",
                "groups", "layers"):
        assert key in out
    assert [e["layer"] for e in out["layers"]] == [0, 1]
    assert out["mean"] == np.linalg.norm(x[:, 1], axis=1).mean()
    assert out["max_id"] == str(np.argmax(np.linalg.norm(x[:, 1], axis=1)))
    html = tmp_path / "n.html"
    run_cli("norms", p, "--layer", "0", "--html", html, "--json", check_code=0)
    assert "Norm distribution" in html.read_text()


def test_infogain_corpus_and_embeddings(tmp_path, rng):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b a c\nb c\n")
    out = run_json("infogain", corpus, "--window", "1", "--save-cooccurrence", tmp_path / "co.h5")
    assert (out["n_words"], out["n_tokens"], out["window"]) == (3, 6, 1)
    again = run_json("infogain", tmp_path / "co.h5")
    assert again["mutual_information"] == out["mutual_information"]
    emb = write_h5(tmp_path / "e.h5", rng.standard_normal((3, 4)), ids=["a", "b", "c"])
    res = run_json("infogain", corpus, "--window", "1", "--embeddings", emb, "--fit-min-count", "0")
    assert set(res["r2"]) == {"raw", "centred"}
    bad = run_cli("infogain", tmp_path / "co.h5", "--baseline", "shuffle")
    assert bad.returncode == 2


def test_infogain_memory_budget_acts_and_keeps_the_counts(tmp_path, rng):
    # --memory bounds the counting's pair runs: 1MB spills this corpus's runs to disk and merges
    # them back; the counts are the same
    import h5py
    words = [f"w{i}" for i in range(3000)]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, size=40)) for _ in range(3000)))
    run_cli("infogain", corpus, "--save-cooccurrence", tmp_path / "big.h5", "--json", check_code=0)
    run_cli("infogain", corpus, "--memory", "1MB", "--save-cooccurrence", tmp_path / "small.h5",
            "--json", check_code=0)
    with h5py.File(tmp_path / "big.h5") as a, h5py.File(tmp_path / "small.h5") as b:
        for key in ("data", "indices", "indptr", "counts"):
            np.testing.assert_array_equal(a[key][:], b[key][:])


def test_document_keywords(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b a c\nb c\n")
    doc = tmp_path / "d.txt"
    doc.write_text("c c c a\n")
    table = run_cli("infogain", corpus, "--window", "1", "--keywords-for", doc, "--format", "table",
                    check_code=0).stdout
    section = table.split("document keywords")[1].splitlines()
    rows = [line.split() for line in section[2:4]]
    # keyness = n_w(doc) * KL: c = 3 * log 1.5 = 1.216 > a = 1 * (2/3) log 2 = 0.462; b absent
    assert rows[0][0] == "c" and rows[1][0] == "a"


def test_infogain_refuses_reader_options_that_cannot_act(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c a b\nb c a c\n")
    for extra in (["--sample", "5"], ["--layer", "1"], ["--dims", "4"], ["--drop-nonfinite"],
                  ["--drop-zero"], ["--ids", "words"], ["--allow-external"]):
        proc = run_cli("infogain", corpus, *extra)
        assert proc.returncode == 2 and extra[0] in proc.stderr and "--embeddings" in proc.stderr
    # one view of --embeddings: a layer or prefix sweep is not an option here
    proc = run_cli("infogain", corpus, "--layer", "all", "--embeddings", corpus)
    assert proc.returncode == 2 and "one layer" in proc.stderr
    proc = run_cli("infogain", corpus, "--dims", "2,4", "--embeddings", corpus)
    assert proc.returncode == 2 and "one prefix" in proc.stderr
