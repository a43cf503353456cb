"""``geomkit translate``: every map against scipy / numpy / the closed form, retrieval against its
brute-force definition, the unsupervised route on data with known truth, and the map file.

Oracle: tests/data/oracles/compare.json ``procrustes_scipy`` — scipy.linalg.orthogonal_procrustes
on compare_data.h5 (A -> A_rot: a rotation plus noise; A -> A_indep: unrelated), with its residual
and top-1 cosine retrieval over all 600 rows.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.linalg

from conftest import ORACLES, run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.translate import (TranslationMap, compute_translate_eval,
                                        compute_translate_fit, fit_map, retrieval_ranks)
from geomkit.engine.pairs import pair_rows


@pytest.fixture(scope="module")
def oracle():
    return json.loads((ORACLES / "compare.json").read_text())["procrustes_scipy"]


@pytest.fixture(scope="module")
def data():
    with h5py.File(ORACLES / "compare_data.h5") as f:
        return {name: f[name][:] for name in ("A", "A_rot", "A_indep", "B_diffdim")}


def _fit(x, y, **kw):
    return compute_translate_fit(Space.from_array(x), Space.from_array(y), pairs="rows", **kw)


@pytest.mark.parametrize("target,centred", [("A_rot", False), ("A_rot", True),
                                            ("A_indep", False), ("A_indep", True)])
def test_procrustes_equals_scipy_and_the_oracle(oracle, data, target, centred):
    x, y = data["A"], data[target]
    ref = oracle[f"A_to_{target}" + ("_centred" if centred else "")]
    tmap, r = _fit(x, y, method="procrustes", normalize="center" if centred else "none",
                   retrieval="nn")
    xc, yc = (x - x.mean(0), y - y.mean(0)) if centred else (x, y)
    rot, scale = scipy.linalg.orthogonal_procrustes(xc, yc)
    np.testing.assert_allclose(tmap.matrix, rot, rtol=0, atol=1e-10)
    residual = np.linalg.norm(tmap.apply(x) - tmap.target.apply(y))
    assert residual == pytest.approx(ref["residual_fro"], rel=1e-9)
    assert scale == pytest.approx(ref["scale_sum_singular_values"], rel=1e-9)
    assert r.top1 == ref["top1_retrieval_cosine"]  # exact: a count over the 600 rows
    assert r.n_eval == 600 and r.evaluated_on.startswith("training pairs (in-sample")


def test_procrustes_recovers_a_rotation_and_different_dimensions_keep_norms():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20))
    q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    tmap, r = _fit(x, x @ q + 0.01 * rng.standard_normal(x.shape), method="procrustes",
                   normalize="none", train_fraction=0.8)
    assert r.top1 == 1.0 and r.n_test == 100 and r.evaluated_on == "held-out pairs"
    assert np.abs(tmap.matrix - q).max() < 0.01
    # 20 -> 35 dimensions: the source isometrically embedded (W has orthonormal rows)
    basis, _ = np.linalg.qr(rng.standard_normal((35, 35)))
    wide = x @ basis[:20]
    tmap, r = _fit(x, wide, method="procrustes", normalize="none")
    np.testing.assert_allclose(tmap.matrix @ tmap.matrix.T, np.eye(20), atol=1e-10)
    np.testing.assert_allclose(tmap.matrix, basis[:20], atol=1e-9)
    assert r.top1 == 1.0 and "zero-padded" in r.dims
    # 35 -> 20: a projection onto 20 orthonormal directions, then a rotation
    tmap, r = _fit(wide, x, method="procrustes", normalize="none")
    np.testing.assert_allclose(tmap.matrix.T @ tmap.matrix, np.eye(20), atol=1e-10)
    assert r.top1 == 1.0 and "projected" in r.dims


def test_lstsq_ridge_affine_equal_their_closed_forms(data):
    x, y = data["A"], data["B_diffdim"]  # 64 -> different dimensions
    n = x.shape[0]
    tmap, _ = _fit(x, y, method="lstsq", normalize="none")
    np.testing.assert_allclose(tmap.matrix, np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-8,
                               atol=1e-10)
    assert not tmap.bias.any()
    tmap, _ = _fit(x, y, method="ridge", alpha=7.5, normalize="none")
    np.testing.assert_allclose(tmap.matrix,
                               np.linalg.solve(x.T @ x + 7.5 * np.eye(x.shape[1]), x.T @ y),
                               rtol=1e-9, atol=1e-12)
    tmap, _ = _fit(x, y, method="affine", normalize="none")
    full = np.linalg.lstsq(np.c_[x, np.ones(n)], y, rcond=None)[0]
    np.testing.assert_allclose(tmap.matrix, full[:-1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(tmap.bias, full[-1], rtol=1e-7, atol=1e-9)
    # fewer pairs than dimensions: the minimum-norm solution, as numpy's lstsq
    tmap, _ = _fit(x[:30], y[:30], method="lstsq", normalize="none")
    np.testing.assert_allclose(tmap.matrix, np.linalg.lstsq(x[:30], y[:30], rcond=None)[0],
                               rtol=1e-6, atol=1e-8)


def test_preprocessing_is_fitted_on_the_training_rows_and_stored(data):
    x, y = data["A"], data["A_rot"]
    tmap, r = _fit(x, y, method="lstsq", normalize="unit,center,unit", train_fraction=0.5,
                   seed=4)
    train = pair_rows(Space.from_array(x), Space.from_array(y), "rows")
    perm = np.random.default_rng(4).permutation(600)[:300]
    ux = x[np.sort(perm)] / np.linalg.norm(x[np.sort(perm)], axis=1, keepdims=True)
    assert train.n == 600
    np.testing.assert_allclose(tmap.source.steps[1].params["mean"], ux.mean(0), atol=1e-12)
    step = x / np.linalg.norm(x, axis=1, keepdims=True) - ux.mean(0)
    expect = step / np.linalg.norm(step, axis=1, keepdims=True) @ tmap.matrix
    np.testing.assert_allclose(tmap.apply(x), expect, atol=1e-12)
    assert r.normalize == "unit,center,unit" and r.n_train == 300 and r.n_test == 300


def test_streamed_fit_equals_one_block(data):
    a, b = Space.from_array(data["A"]), Space.from_array(data["B_diffdim"])
    pairs = pair_rows(a, b, "rows")
    for method in ("procrustes", "lstsq", "affine"):
        one = fit_map(a, b, pairs, method=method, block_rows=10_000)
        many = fit_map(a, b, pairs, method=method, block_rows=7)
        np.testing.assert_allclose(many.matrix, one.matrix, atol=1e-10)
        np.testing.assert_allclose(many.bias, one.bias, atol=1e-10)


def test_retrieval_ranks_equal_the_brute_force_definitions():
    rng = np.random.default_rng(5)
    t = rng.standard_normal((150, 12))
    q = t + 0.9 * rng.standard_normal(t.shape)
    uq = q / np.linalg.norm(q, axis=1, keepdims=True)
    ut = t / np.linalg.norm(t, axis=1, keepdims=True)
    cos = uq @ ut.T
    r_q = np.sort(cos, axis=1)[:, -10:].mean(1)   # each query's 10 nearest targets
    r_t = np.sort(cos, axis=0)[-10:].mean(0)      # each target's 10 nearest queries
    for retrieval, scores in (("nn", cos), ("csls", 2 * cos - r_q[:, None] - r_t[None, :])):
        expect = np.array([(scores[i] >= scores[i, i]).sum() for i in range(150)])
        got = retrieval_ranks(q, t, retrieval=retrieval, memory=150 * 16 * 7)  # small blocks
        np.testing.assert_array_equal(got, expect)
    assert (retrieval_ranks(q, t, retrieval="csls") != retrieval_ranks(q, t, retrieval="nn")).any()


def _clustered(rng, n, d, clusters=25):
    centres = 3 * rng.standard_normal((clusters, d))
    return centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, d))


def test_unsupervised_recovers_a_rotation_without_pairs_and_says_it_converged(tmp_path):
    rng = np.random.default_rng(1)
    x = _clustered(rng, 900, 24)
    q, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    y = x @ q + 0.01 * rng.standard_normal(x.shape)
    # the target's rows are shuffled and its ids say which is which: only evaluation uses them
    perm = rng.permutation(900)
    ids = np.array([f"item{i}" for i in range(900)])
    src = write_h5(tmp_path / "src.h5", x, ids=ids)
    tgt = write_h5(tmp_path / "tgt.h5", y[perm], ids=ids[perm])
    tmap, r = compute_translate_fit(Space.open(str(src)), Space.open(str(tgt)),
                                    method="unsupervised", train_fraction=0.8, seeds=2)
    assert r.pairs_used is False and r.pairs == "ids"
    assert r.top1 >= 0.95 and r.n_test == 180
    c = r.confidence
    assert c["verdict"] == "converged" and c["seed_agreement"] > 0.9 and c["mutual_share"] > 0.9
    assert np.abs(tmap.matrix.T @ tmap.matrix - np.eye(24)).max() < 1e-10


def test_unsupervised_on_unrelated_spaces_says_it_is_unreliable():
    rng = np.random.default_rng(2)
    x, y = _clustered(rng, 600, 16), _clustered(rng, 600, 16)
    tmap, r = _fit(x, y, method="unsupervised", train_fraction=0.8, seeds=3)
    assert r.confidence["verdict"] == "unreliable" and r.confidence["seed_agreement"] < 0.3
    assert r.top1 < 0.1


def test_map_file_round_trip_and_cli(tmp_path, data):
    x, y = data["A"], data["B_diffdim"]
    ids = [f"i{k}" for k in range(600)]
    src = write_h5(tmp_path / "src.h5", x.astype("f4"), ids=ids, texts=[f"t{k}" for k in ids])
    tgt = write_h5(tmp_path / "tgt.h5", y.astype("f4"), ids=ids)
    out = run_json("translate", "fit", src, tgt, "-o", tmp_path / "map.h5", "--method", "affine",
                   "--train-fraction", "0.75", "--seed", "2")
    assert out["method"] == "affine" and out["n_train"] == 450 and out["n_test"] == 150
    assert out["d_src"] == 64 and out["d_tgt"] == y.shape[1] and out["unmatched"] == {"a": 0, "b": 0}
    tmap = TranslationMap.load(str(tmp_path / "map.h5"))
    assert tmap.method == "affine" and tmap.normalize == ("unit", "center", "unit")
    # the library fit on the same split gives the same map
    ref, _ = compute_translate_fit(Space.open(str(src)), Space.open(str(tgt)), method="affine",
                                   train_fraction=0.75, seed=2)
    np.testing.assert_allclose(tmap.matrix, ref.matrix, atol=1e-12)
    # apply streams every row through the map; metadata copied
    run_cli("translate", "apply", tmp_path / "map.h5", src, "-o", tmp_path / "out.h5",
            "--memory", "1MB", "--dtype", "float64", check_code=0)
    with h5py.File(tmp_path / "out.h5") as f:
        np.testing.assert_allclose(f["embeddings"][:], tmap.apply(x.astype("f4")), atol=1e-6)  # f32 blocks
        assert [v.decode() for v in f["ids"][:3]] == ids[:3]
    # target side: its stored preprocessing only
    run_cli("translate", "apply", tmp_path / "map.h5", tgt, "-o", tmp_path / "tout.h5",
            "--side", "target", "--dtype", "float64", check_code=0)
    with h5py.File(tmp_path / "tout.h5") as f:
        np.testing.assert_allclose(f["embeddings"][:], tmap.target.apply(y.astype("f4").astype("f8")),
                                   atol=1e-6)
    # eval of the stored map equals the library evaluation
    ev = run_json("translate", "eval", tmp_path / "map.h5", src, tgt, "--retrieval", "nn")
    lib = compute_translate_eval(tmap, Space.open(str(src)), Space.open(str(tgt)),
                                 retrieval="nn")
    assert ev["top1"] == lib.top1 and ev["mean_rank"] == lib.mean_rank and ev["n_test"] == 600
    # a map applied to the wrong dimension, or a file that is no map: one sentence, exit 3
    for argv in (["translate", "apply", tmp_path / "map.h5", tgt, "-o", tmp_path / "bad.h5"],
                 ["translate", "eval", tmp_path / "map.h5", tgt, src],
                 ["translate", "apply", src, src, "-o", tmp_path / "bad.h5"]):
        proc = run_cli(*argv)
        assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
        assert not (tmp_path / "bad.h5").exists()
    # options that cannot act here are refused
    for extra in (["--alpha", "1"], ["--method", "ridge"], ["--seeds", "2"],
                  ["--pairs", "none"]):
        assert run_cli("translate", "fit", src, tgt, "-o", tmp_path / "m2.h5",
                       *extra).returncode == 2


def test_unmatched_ids_are_counted_and_no_pairs_means_no_evaluation(tmp_path):
    rng = np.random.default_rng(8)
    x = _clustered(rng, 300, 10)
    ids = np.array([f"w{i}" for i in range(300)])
    src = write_h5(tmp_path / "s.h5", x, ids=ids)
    keep = rng.permutation(300)[:250]
    tgt = write_h5(tmp_path / "t.h5", np.r_[x[keep], rng.standard_normal((20, 10))],
                   ids=np.r_[ids[keep], [f"new{i}" for i in range(20)]])
    out = run_json("translate", "fit", src, tgt, "-o", tmp_path / "m.h5", "--normalize", "none")
    assert out["unmatched"] == {"a": 50, "b": 20} and out["n_train"] == 250
    assert out["top1"] == 1.0 and out["mean_cosine"] == pytest.approx(1.0)
    none = run_json("translate", "fit", src, tgt, "-o", tmp_path / "u.h5", "--method",
                    "unsupervised", "--pairs", "none", "--seeds", "1")
    assert none["top1"] is None and none["pairs"] == "none" and none["n_test"] == 0
    assert none["pairs_used"] is False and none["confidence"]["n_target"] == 270


def test_relative_representations_agree_by_their_definition(tmp_path):
    from geomkit.analysis.compare import compute_compare
    from geomkit.analysis.translate import anchor_agreement

    rng = np.random.default_rng(9)
    x = _clustered(rng, 200, 12)
    y = np.tanh(x @ rng.standard_normal((12, 20))) + 0.3 * rng.standard_normal((200, 20))
    anchors = np.array([3, 17, 40, 41, 90, 150])
    rest = np.setdiff1d(np.arange(200), anchors)
    got = anchor_agreement(x[rest], y[rest], x[anchors], y[anchors])
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    rx = unit(x[rest]) @ unit(x[anchors]).T
    ry = unit(y[rest]) @ unit(y[anchors]).T
    cos = unit(rx) @ unit(ry).T
    ranks = np.array([(cos[i] >= cos[i, i]).sum() for i in range(rest.size)])
    assert got["anchors"] == 6 and got["items"] == 194
    assert got["mean_cosine"] == pytest.approx(np.diag(cos).mean(), abs=1e-12)
    assert got["top1"] == pytest.approx((ranks == 1).mean())
    assert got["mean_rank"] == pytest.approx(ranks.mean())
    # a rotated, scaled copy has the same relative representation: perfect agreement
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    same = anchor_agreement(x[rest], 2 * x[rest] @ q, x[anchors], 2 * x[anchors] @ q)
    assert same["mean_cosine"] == pytest.approx(1.0) and same["top1"] == 1.0
    # compare --anchor-ids takes exactly those items as anchors
    ids = [f"i{k}" for k in range(200)]
    r = compute_compare(Space.from_array(x, ids=ids), Space.from_array(y, ids=ids), k=5,
                        anchor_ids=[ids[i] for i in anchors])
    assert r.anchors == pytest.approx(got)
    with pytest.raises(Exception, match="no item with id .nope. for the anchors"):
        compute_compare(Space.from_array(x, ids=ids), Space.from_array(y, ids=ids), k=5,
                        anchor_ids=["nope"])
    # translate fit: the relative baseline is reported next to the map, on the same items
    tmap, fit = _fit(x, y, method="lstsq", train_fraction=0.7, anchors=20, normalize="none")
    assert fit.anchors["anchors"] == 20 and fit.anchors["items"] == fit.n_eval == 60
