"""``geomkit check`` (rules on the analyses' JSON contracts) and ``geomkit report`` (every analysis
in one page): the values they read are the analyses' own, every section's command line reproduces
its numbers, a failing section keeps the others, and the exit codes of a gate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.check import (Rule, contract_keys, evaluate_rules, parse_rule, resolve,
                                    rules_from_toml)
from geomkit.errors import UsageError


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    rng = np.random.default_rng(4)
    tmp = tmp_path_factory.mktemp("check")
    n, d = 300, 16
    centres = 3 * rng.standard_normal((4, d))
    lab = rng.integers(0, 4, n)
    x = centres[lab] + rng.standard_normal((n, d)) + 2.0
    x[7] = x[3]  # one exact duplicate
    meta = dict(ids=[f"id{i}" for i in range(n)], texts=[f"text {i}" for i in range(n)],
                labels=[f"c{v}" for v in lab])
    other = x[:, ::-1] * 1.5 + rng.standard_normal((n, d))
    return {"x": str(write_h5(tmp / "x.h5", x, **meta)),
            "other": str(write_h5(tmp / "o.h5", other, **meta)),
            "wide": str(write_h5(tmp / "w.h5", rng.standard_normal((n, d + 4)), **meta)),
            "tmp": tmp}


def test_rules_parse_and_keys_resolve_against_the_contracts():
    assert parse_rule("max", "hubness.k_skewness=3") == Rule("hubness", "k_skewness", None, 3.0)
    assert parse_rule("min", "isotropy.isoscore=0.05") == Rule("isotropy", "isoscore", 0.05, None)
    assert parse_rule("between", "norms.cv=0,0.5") == Rule("norms", "cv", 0.0, 0.5)
    for kind, text in (("max", "k_skewness=3"), ("max", "hubness.k=x"), ("between", "norms.cv=1"),
                       ("between", "norms.cv=2,1"), ("min", "nosuch.key=1")):
        with pytest.raises(UsageError):
            parse_rule(kind, text)
    assert resolve("hubness", "k_skewness") == "methods.none.k_skewness"
    assert resolve("hubness", "mp.k_skewness") == "methods.mp.k_skewness"
    assert resolve("isotropy", "top_pc_share.top1") == "top_pc_share.top1"
    with pytest.raises(UsageError, match="valid keys: .*avg_cosine.*isoscore"):
        resolve("isotropy", "isoscor")
    assert "cka_linear" in contract_keys("compare") and "p" in contract_keys("depth")
    rule = Rule("x", "y", 0, 1)
    assert rule.holds(0.5) and not rule.holds(1.5) and not rule.holds(None)
    assert not rule.holds(float("nan"))


def test_values_are_the_analyses_own_and_only_the_needed_ones_run(dump):
    from geomkit.analysis.hubness import compute_hubness
    from geomkit.analysis.isotropy import compute_isotropy

    space = Space.open(dump["x"])
    ran = []
    r = evaluate_rules([parse_rule("min", "isotropy.isoscore=0.01"),
                        parse_rule("max", "hubness.csls.k_skewness=100")], space,
                       progress=ran.append)
    assert ran == ["geomkit: check: isotropy", "geomkit: check: hubness"]
    iso = compute_isotropy(Space.open(dump["x"]))
    hub = compute_hubness(Space.open(dump["x"]), k=10, reduce=("none", "csls"))
    assert r.values == (iso.isoscore, hub.methods["csls"]["k_skewness"])
    assert r.passed
    r = evaluate_rules([parse_rule("max", f"isotropy.isoscore={iso.isoscore * 0.99}")], space)
    assert not r.passed and r.to_dict()["n_failed"] == 1
    # a key the input leaves null fails: IsoScore* needs a C0
    r = evaluate_rules([parse_rule("max", "isotropy.isoscore_star=1")], space)
    assert r.values == (None,) and not r.passed


def test_check_cli_exit_codes_json_toml_and_defaults(dump):
    x = dump["x"]
    out = run_json("check", x, "--max", "hubness.k_skewness=100", "--min", "isotropy.isoscore=0")
    assert out["passed"] is True and out["n_rules"] == 2
    proc = run_cli("check", x, "--max", "norms.mean=0.1", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["passed"] is False
    proc = run_cli("check", x, "--max", "norms.meen=1")
    assert proc.returncode == 2 and "valid keys:" in proc.stderr and "mean" in proc.stderr
    assert run_cli("check", x).returncode == 2                       # no rules
    assert run_cli("check", x, "--max", "depth.p=1").returncode == 2  # needs --vs
    assert run_cli("check", dump["tmp"] / "missing.h5", "--max",
                   "norms.mean=1").returncode == 3
    rules = dump["tmp"] / "rules.toml"
    rules.write_text('[max]\n"hubness.k_skewness" = 100\n[between]\n"norms.cv" = [0.0, 5.0]\n')
    out = run_json("check", x, "--rules", rules)
    assert [r["key"] for r in out["rules"]] == ["hubness.methods.none.k_skewness", "norms.cv"]
    (dump["tmp"] / "bad.toml").write_text("[maximum]\nx = 1\n")
    assert run_cli("check", x, "--rules", dump["tmp"] / "bad.toml").returncode == 2
    (dump["tmp"] / "broken.toml").write_text("[max\n")
    assert run_cli("check", x, "--rules", dump["tmp"] / "broken.toml").returncode == 3
    out = json.loads(run_cli("check", x, "--defaults", "--vs", dump["other"], "--json").stdout)
    assert {r["key"] for r in out["rules"]} == {
        "isotropy.avg_cosine", "isotropy.top_pc_share.top1", "hubness.methods.none.k_skewness",
        "norms.n_zero", "depth.p"}


def test_report_sections_reproduce_their_numbers(dump):
    tmp = dump["tmp"]
    proc = run_cli("report", dump["x"], "-o", tmp / "r.html", "--json", tmp / "r.json",
                   "--vs", dump["other"], "-k", "5", "--quick", "--quick-rows", "200", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp / "r.json").read_text())
    assert {"norms", "isotropy", "hubness", "intdim", "depth", "compare", "translate"} <= set(doc)
    assert doc["hubness"]["sample"] == 200 and doc["hubness"]["n"] == 200
    assert doc["intdim"]["sample"] == 200 and doc["intdim"]["n"] == 200  # hubness's sample rule
    assert doc["isotropy"]["sample"] is None and doc["isotropy"]["n"] == 300
    for name in ("norms", "isotropy", "hubness", "intdim", "depth", "compare"):
        argv = doc[name]["command_line"].split()[1:]
        again = run_json(*argv)
        for key, value in again.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert doc[name][key] == pytest.approx(value, rel=1e-12, abs=1e-12), (name, key)
        if name == "intdim":
            assert doc[name]["lid"] == pytest.approx(again["lid"], rel=1e-12)
    lights = {v["concern"]: v["light"] for v in doc["summary"]}
    assert lights["zero vectors"] == "green" and "hubness" in lights and "anisotropy" in lights
    page = (tmp / "r.html").read_text()
    assert page.count("<section>") >= 6 and "geomkit hubness" in page
    assert "[" in proc.stdout and "hubness" in proc.stdout  # the summary lines on stdout


def test_a_section_that_cannot_run_keeps_the_others(dump):
    tmp = dump["tmp"]
    proc = run_cli("report", dump["x"], "-o", tmp / "w.html", "--json", tmp / "w.json",
                   "--vs", dump["wide"], "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp / "w.json").read_text())
    assert "20" in doc["depth"]["error"] and "16" in doc["depth"]["error"]
    assert doc["compare"]["n"] == 300 and doc["isotropy"]["n"] == 300
    lights = {v["concern"]: v["light"] for v in doc["summary"]}
    assert lights["duplicate rows"] == "amber"  # row 7 copies row 3 (all rows: no --quick)
    assert "Not computed" in (tmp / "w.html").read_text() and "[skip] depth" in proc.stdout
    # outputs never overwrite an input; --quick-rows without --quick is refused
    assert run_cli("report", dump["x"], "-o", dump["x"]).returncode == 2
    assert run_cli("report", dump["x"], "-o", tmp / "z.html", "--quick-rows", "500").returncode == 2


def test_rules_file_is_documented_example(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "check.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "geomkit.toml").write_text(example)
    rules = rules_from_toml(str(tmp_path / "geomkit.toml"))
    assert len(rules) >= 4


INTDIM_KEYS = ("n", "d", "k", "twonn", "mle", "gride", "lpca", "n_duplicates")


def _same_intdim(got, expect):
    for key in INTDIM_KEYS:
        assert getattr(got, key) == pytest.approx(getattr(expect, key), rel=1e-12), key
    assert got.lid == pytest.approx(expect.lid, rel=1e-12)
    assert np.array_equal(got.lid_values, expect.lid_values, equal_nan=True)


def test_report_intdim_section_is_compute_intdim_on_the_same_rows(dump):
    """The intrinsic-geometry section holds compute_intdim's values on the report's Space (all
    rows; with --quick the seeded sample hubness uses, drawn here independently), and the page
    draws intdim's own LID histogram for it."""
    from geomkit.analysis.intdim import compute_intdim
    from geomkit.analysis.suite import run_report
    from geomkit.report.report_page import render_report

    x = np.asarray(Space.open(dump["x"]).read_rows(np.arange(300)), dtype=np.float64)
    r = run_report(Space.open(dump["x"]), dump["x"], k=5)
    s = r.section("intdim")
    assert s.error is None and s.sample is None
    assert s.argv == ["geomkit", "intdim", dump["x"], "-k", "20"]
    expect = compute_intdim(Space.from_array(x), k=20)
    assert expect.n_duplicates == 1 and expect.twonn is not None and expect.lpca is not None
    _same_intdim(s.result, expect)
    assert r.to_dict()["intdim"]["twonn"] == expect.twonn
    page = render_report(r)
    assert "Intrinsic geometry" in page
    assert f"Local intrinsic dimension (MLE, k = 20) of {expect.n_distinct} distinct items" in page

    q = run_report(Space.open(dump["x"]), dump["x"], k=5, quick=True, quick_rows=120, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(300, 120, replace=False))
    s = q.section("intdim")
    assert s.sample == 120 and s.argv[-4:] == ["--sample", "120", "--seed", "3"]
    assert s.result.rows.tolist() == rows.tolist() == q.section("hubness").result.rows.tolist()
    _same_intdim(s.result, compute_intdim(Space.from_array(x[rows]), k=20))


def test_report_intdim_failure_is_an_error_section(tmp_path, monkeypatch):
    """intdim refusing the input (too few distinct rows for k = 20), or running out of memory,
    leaves an error section like any other; the rest of the report runs."""
    import geomkit.analysis.intdim as intdim
    from geomkit.analysis.suite import run_report

    rng = np.random.default_rng(1)
    small = write_h5(tmp_path / "small.h5", rng.standard_normal((15, 5)) + 1.0)
    proc = run_cli("report", small, "-o", tmp_path / "s.html", "--json", tmp_path / "s.json",
                   "-k", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    assert set(doc["intdim"]) == {"error", "command_line", "sample"}
    assert "needs at least 21 distinct rows" in doc["intdim"]["error"]
    assert doc["intdim"]["command_line"] == f"geomkit intdim {small} -k 20"
    assert doc["hubness"]["n"] == 15 and doc["norms"]["n"] == 15
    assert "[skip] intdim: neighbour order 20" in proc.stdout
    assert "Not computed: neighbour order 20" in (tmp_path / "s.html").read_text()

    def oom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(intdim, "compute_intdim", oom)
    r = run_report(Space.open(str(small)), str(small), k=3)
    assert r.section("intdim").error.startswith("out of memory")
    assert r.section("intdim").result is None and r.section("hubness").error is None


def test_report_row_policy(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 6)) + 0.5
    nan, zero = x.copy(), x.copy()
    nan[[4, 17], 1] = np.nan
    zero[[9, 30]] = 0.0
    pn, pz = write_h5(tmp_path / "nan.h5", nan), write_h5(tmp_path / "zero.h5", zero)
    proc = run_cli("report", pn, "-o", tmp_path / "r.html", "-k", "3", "-q")
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1
    assert "--drop-nonfinite" in proc.stderr and "rows 4, 17" in proc.stderr
    assert not (tmp_path / "r.html").exists()
    assert run_cli("report", pn, "-o", tmp_path / "r.html", "-k", "3", "--drop-nonfinite",
                   "--json", tmp_path / "r.json").returncode == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["norms"]["n_dropped"] == 2 and doc["hubness"]["n"] == 38
    assert "--drop-nonfinite" in doc["hubness"]["command_line"]
    # zero rows: norms counts them (red light); the cosine sections say why they did not run
    proc = run_cli("report", pz, "-o", tmp_path / "z.html", "-k", "3", "--json",
                   tmp_path / "z.json")
    assert proc.returncode == 0
    doc = json.loads((tmp_path / "z.json").read_text())
    assert doc["norms"]["n_zero"] == 2 and "--drop-zero" in doc["isotropy"]["error"]
    assert {v["concern"]: v["light"] for v in doc["summary"]}["zero vectors"] == "red"
    assert run_cli("report", pz, "-o", tmp_path / "z.html", "-k", "3", "--drop-zero", "--json",
                   tmp_path / "z.json").returncode == 0
    doc = json.loads((tmp_path / "z.json").read_text())
    assert doc["isotropy"]["n_dropped_zero"] == 2 and doc["isotropy"]["n"] == 38


def test_umap_map_is_the_optional_extra(dump):
    from geomkit.analysis.suite import umap_available

    tmp = dump["tmp"]
    args = ["report", dump["x"], "-o", tmp / "u.html", "--json", tmp / "u.json", "-q", "--map",
            "umap"]
    proc = run_cli(*args)
    if not umap_available():
        assert proc.returncode == 2 and "geomkit[umap]" in proc.stderr
        assert not (tmp / "u.html").exists()
        return
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp / "u.json").read_text())
    assert doc["map"]["method"] == "umap" and doc["map"]["explained"] is None
    assert doc["map"]["points"] == 300
    # a real UMAP, not the PCA plane under another name: it keeps the cosine neighbourhoods
    from sklearn.manifold import trustworthiness

    from geomkit.analysis.suite import project

    space = Space.open(dump["x"])
    x = np.asarray(space.read_rows(np.arange(300)), dtype=np.float64)
    um, pca = project(space, method="umap"), project(space)
    assert not np.allclose(np.abs(um.xy), np.abs(pca.xy))
    assert trustworthiness(x, um.xy, n_neighbors=5, metric="cosine") > 0.9


def test_map_is_the_pca_plane_and_colours_are_the_analyses_values(dump):
    """The map's points are the rows projected on the top two principal axes, and each colour is
    the value its analysis gives the row, checked against brute force: norm, conformity (mean
    cosine to the others) and k-occurrence (exact k-NN on the cosine)."""
    from geomkit.analysis.suite import run_report

    x = np.asarray(Space.open(dump["x"]).read_rows(np.arange(300)), dtype=np.float64)
    r = run_report(Space.open(dump["x"]), dump["x"], k=5)
    m = r.space_map
    assert m.method == "pca" and m.rows.tolist() == list(range(300))
    c = x - x.mean(0)
    w, v = np.linalg.eigh(c.T @ c / (len(x) - 1))
    expect = c @ v[:, ::-1][:, :2]
    for j in range(2):  # an eigenvector's sign is arbitrary
        assert np.allclose(np.abs(m.xy[:, j]), np.abs(expect[:, j]), atol=1e-9)
    assert m.explained == pytest.approx(tuple(w[::-1][:2] / w.sum()), rel=1e-9)
    colours = {name.split(" ")[0]: values for name, (values, _) in m.colours.items()}
    assert set(colours) == {"label", "norm", "k-occurrence", "conformity"}
    assert np.allclose(colours["norm"], np.linalg.norm(x, axis=1), rtol=1e-12)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    assert np.allclose(colours["conformity"], (cos.sum(1) - 1) / 299, atol=1e-12)
    np.fill_diagonal(cos, -np.inf)
    knn = np.argsort(-cos, axis=1, kind="stable")[:, :5]
    kocc = np.bincount(knn.ravel(), minlength=300)
    assert colours["k-occurrence"].tolist() == kocc.tolist()
    assert list(colours["label"][:3]) == [str(v) for v in Space.open(dump["x"]).metadata
                                          .labels[:3]]


def test_report_lines_say_exact_where_the_commands_would_approximate(dump, monkeypatch):
    """The sections search exactly; from APPROXIMATE_FROM rows hubness and intdim default to the
    approximate search, so the printed lines add --exact and still reproduce the numbers."""
    import geomkit.engine.ann as ann
    from geomkit import Space
    from geomkit.analysis.suite import run_report

    monkeypatch.setattr(ann, "APPROXIMATE_FROM", 100)  # the dump has 300 rows
    r = run_report(Space.open(dump["x"]), dump["x"], k=5)
    sections = {s.name: s for s in r.sections}
    for name in ("hubness", "intdim"):
        argv = sections[name].argv
        assert argv[-1] == "--exact", argv
        again = run_json(*argv[1:])
        assert again["knn"]["exact"] is True
    assert run_json(*sections["intdim"].argv[1:])["twonn"] == pytest.approx(
        sections["intdim"].result.twonn, rel=1e-12)
    monkeypatch.setattr(ann, "APPROXIMATE_FROM", 1_000_000)
    r = run_report(Space.open(dump["x"]), dump["x"], k=5)
    assert all("--exact" not in s.argv for s in r.sections)
