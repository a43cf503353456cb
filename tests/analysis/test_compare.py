"""``geomkit compare`` against the reference code's values (tests/data/oracles/compare.json:
platonic-rep AlignmentMetrics run unmodified) and against the N×N formulas.

- linear CKA = platonic-rep ``cka`` without its +1e-6 (``value_no_eps``, raw float64 inputs; it
  centres the kernels, i.e. the features); unbiased CKA = its ``unbiased_cka`` (raw inputs);
- mutual k-NN, CKNNA and cycle k-NN on cosine neighbours = its values on L2-normalised inputs
  (``l2_f64``: there its raw inner products are cosines);
- the streamed CKAs equal the N×N kernel formulas to 1e-10; rotated and scaled copies give 1.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.compare import compute_compare

OTHERS = ["A_rot", "A_indep", "B_diffdim", "A_scaled"]
KEYS = ["n", "cka_linear", "cka_unbiased", "cknna", "mutual_knn", "cycle_knn",
        "similarity_spearman", "k", "knn_jaccard_mean", "lcs_knn", "edit_distance_knn",
        "rsa_sample", "knn_items", "anchors", "pairs", "unmatched", "d", "n_dropped", "n_dropped_zero",
        "knn"]


@pytest.fixture(scope="module")
def oracle():
    return json.loads((ORACLES / "compare.json").read_text())["platonic_rep"]


@pytest.fixture(scope="module")
def data():
    with h5py.File(ORACLES / "compare_data.h5") as f:
        return {name: f[name][:] for name in ["A"] + OTHERS}


@pytest.mark.parametrize("other", OTHERS)
def test_metrics_equal_the_reference(oracle, data, other):
    r = compute_compare(Space.from_array(data["A"]), Space.from_array(data[other]), k=10,
                        pairs="rows")
    raw, l2 = oracle[f"A__{other}"]["raw_f64"], oracle[f"A__{other}"]["l2_f64"]
    assert r.cka_linear == pytest.approx(raw["cka"]["value_no_eps"], abs=1e-10)
    assert r.cka_unbiased == pytest.approx(raw["unbiased_cka"]["value_no_eps"], abs=1e-10)
    assert r.cknna == pytest.approx(l2["cknna"]["value_no_eps"], abs=1e-10)
    assert r.mutual_knn == pytest.approx(l2["mutual_knn"]["value"], abs=1e-6)
    assert r.cycle_knn == pytest.approx(l2["cycle_knn"]["value"], abs=1e-6)
    assert r.lcs_knn == pytest.approx(l2["lcs_knn"]["value"], abs=1e-6)
    assert r.edit_distance_knn == pytest.approx(l2["edit_distance_knn"]["value"], abs=1e-6)


def _kernel_formulas(x, y):
    n = x.shape[0]
    h = np.eye(n) - 1.0 / n
    k, l = x @ x.T, y @ y.T

    def biased(a, b):
        return np.trace(a @ h @ b @ h)

    def unbiased(a, b):
        a, b = a.copy(), b.copy()
        np.fill_diagonal(a, 0)
        np.fill_diagonal(b, 0)
        one = np.ones(n)
        return ((a * b.T).sum() + a.sum() * b.sum() / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))
    return (biased(k, l) / np.sqrt(biased(k, k) * biased(l, l)),
            unbiased(k, l) / np.sqrt(unbiased(k, k) * unbiased(l, l)))


def test_streamed_cka_equals_the_kernel_formulas(rng):
    x = rng.standard_normal((150, 7)) + 2.0
    y = x @ rng.standard_normal((7, 11)) + rng.standard_normal((150, 11))
    lin, unb = _kernel_formulas(x, y)
    r = compute_compare(Space.from_array(x), Space.from_array(y), k=5, pairs="rows")
    assert r.cka_linear == pytest.approx(lin, abs=1e-10)
    assert r.cka_unbiased == pytest.approx(unb, abs=1e-10)
    q, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    same = compute_compare(Space.from_array(x), Space.from_array(3.0 * x @ q), k=5, pairs="rows")
    assert same.cka_linear == pytest.approx(1.0, abs=1e-12) and same.mutual_knn == 1.0


def test_per_item_overlap_and_brute_force_knn(rng):
    x = rng.standard_normal((80, 5))
    y = x + 0.3 * rng.standard_normal((80, 5))
    r = compute_compare(Space.from_array(x), Space.from_array(y), k=4, pairs="rows")

    def knn(m):
        u = m / np.linalg.norm(m, axis=1, keepdims=True)
        s = u @ u.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1, kind="stable")[:, :4]
    nx, ny = knn(x), knn(y)
    shared = np.array([len(set(a) & set(b)) for a, b in zip(nx, ny)])
    np.testing.assert_array_equal(r.shared, shared)
    np.testing.assert_allclose(r.jaccard, shared / (8 - shared))
    assert r.mutual_knn == pytest.approx(shared.mean() / 4)


def test_pairing_by_ids_counts_the_unmatched(tmp_path, rng):
    x = rng.standard_normal((50, 4))
    ids = np.array([f"i{j}" for j in range(50)])
    perm = rng.permutation(50)[:40]  # B holds 40 of the items, shuffled, plus 5 others
    y = np.vstack([2 * x[perm], rng.standard_normal((5, 4))])
    ids_b = np.r_[ids[perm], [f"other{j}" for j in range(5)]]
    a = write_h5(tmp_path / "a.h5", x, ids=ids, texts=[f"t{j}" for j in range(50)])
    b = write_h5(tmp_path / "b.h5", y, ids=ids_b)
    out = run_json("compare", a, b, "-k", "3")
    assert list(out) == KEYS
    assert out["n"] == 40 and out["pairs"] == "ids" and out["unmatched"] == {"a": 10, "b": 5}
    assert out["cka_linear"] == pytest.approx(1.0, abs=1e-12) and out["mutual_knn"] == 1.0
    proc = run_cli("compare", a, b, "--pairs", "rows")
    assert proc.returncode == 3 and "same number" in proc.stderr


def test_layer_sweep_of_a_against_b(tmp_path, rng):
    x = rng.standard_normal((60, 6))
    stack = np.stack([rng.standard_normal((60, 6)), x @ np.linalg.qr(rng.standard_normal((6, 6)))[0]], 1)
    a = write_h5(tmp_path / "s.h5", stack, dataset="h")
    b = write_h5(tmp_path / "b.h5", x)
    out = run_json("compare", f"{a}:/h", b, "--layer", "all", "-k", "5")
    ckas = [layer["cka_linear"] for layer in out["layers"]]
    assert ckas[1] == pytest.approx(1.0, abs=1e-10) and ckas[0] < 0.5


def test_similarity_spearman_is_rsa_over_the_sample_and_spectra_are_the_covariances(data):
    from scipy.stats import spearmanr

    a, b = data["A"][:200], data["B_diffdim"][:200]
    r = compute_compare(Space.from_array(a), Space.from_array(b), k=5, pairs="rows",
                        rsa_sample=500)
    ua = a / np.linalg.norm(a, axis=1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=1, keepdims=True)
    iu = np.triu_indices(200, 1)
    expect = spearmanr((ua @ ua.T)[iu], (ub @ ub.T)[iu]).statistic
    assert r.rsa_sample == 200 and r.similarity_spearman == pytest.approx(expect, abs=1e-12)
    # a seeded sample of 50 items: the same value as the brute force on those 50
    s = compute_compare(Space.from_array(a), Space.from_array(b), k=5, pairs="rows",
                        rsa_sample=50, seed=3)
    pick = np.sort(np.random.default_rng(3).choice(200, 50, replace=False))
    iu = np.triu_indices(50, 1)
    expect = spearmanr((ua[pick] @ ua[pick].T)[iu], (ub[pick] @ ub[pick].T)[iu]).statistic
    assert s.rsa_sample == 50 and s.similarity_spearman == pytest.approx(expect, abs=1e-12)
    # a rotated, scaled copy has the same similarities: rho = 1
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((a.shape[1],) * 2))
    rot = compute_compare(Space.from_array(a), Space.from_array(3 * a @ q), k=5, pairs="rows")
    assert rot.similarity_spearman == pytest.approx(1.0, abs=1e-9)
    for x, spec in ((a, r.spectrum_a), (b, r.spectrum_b)):
        np.testing.assert_allclose(spec, np.linalg.eigvalsh(np.cov(x.T))[::-1], rtol=1e-8,
                                   atol=1e-10)


def test_large_inputs_stream_the_ckas_and_search_all_pairs_approximately(tmp_path, data):
    a, b = data["A"], data["B_diffdim"]
    pa, pb = write_h5(tmp_path / "a.h5", a), write_h5(tmp_path / "b.h5", b)
    full = compute_compare(Space.from_array(a), Space.from_array(b), k=5, pairs="rows")
    # beyond knn_items: approximate neighbours over all 600 pairs; every list probed (IVF-Flat,
    # nprobe = nlist) is an exhaustive search, so the lists are the exact ones
    from geomkit.engine.ann import plan_index

    nlist = plan_index(600, a.shape[1], 5, 256 * 2**20).nlist
    part = compute_compare(Space.open(str(pa)), Space.open(str(pb)), k=5, pairs="rows",
                           knn_items=200, seed=4, block_rows=64, nprobe=nlist)
    # CKA and the spectra: every pair, streamed from the files in blocks of 64
    assert part.n == 600 and part.knn_items == 600
    assert part.cka_linear == pytest.approx(full.cka_linear, abs=1e-12)
    assert part.cka_unbiased == pytest.approx(full.cka_unbiased, abs=1e-12)
    np.testing.assert_allclose(part.spectrum_b, full.spectrum_b, rtol=1e-10, atol=1e-12)
    assert not part.knn["exact"] and part.knn["a"]["recall"] == part.knn["b"]["recall"] == 1.0
    for key in ("mutual_knn", "cycle_knn", "knn_jaccard_mean", "lcs_knn", "edit_distance_knn",
                "similarity_spearman"):
        assert getattr(part, key) == pytest.approx(getattr(full, key), abs=1e-12), key
    # CKNNA from the searches' float32 similarities: the exact value to float32 precision
    assert part.cknna == pytest.approx(full.cknna, abs=1e-5)
    np.testing.assert_array_equal(part.jaccard, full.jaccard)
    np.testing.assert_array_equal(part.rows_a, np.arange(600))
    # fewer lists probed: approximate lists, recall below 1 reported per space
    few = compute_compare(Space.open(str(pa)), Space.open(str(pb)), k=5, pairs="rows",
                          knn_items=200, nprobe=1)
    assert few.knn["a"]["recall"] < 1.0 and few.knn["a"]["nprobe"] == 1
    assert few.cka_linear == pytest.approx(full.cka_linear, abs=1e-12)


def test_cknna_from_the_search_lists_equals_the_kernel_form(data, rng):
    """cknna_from_lists (similarities as the search returns them) = cknna (kernels from the
    vectors, the reference's value on the oracle data) on the same exact lists."""
    from geomkit.analysis.compare import cknna, cknna_from_lists
    from geomkit.engine.knn import exact_knn

    ux = data["A"] / np.linalg.norm(data["A"], axis=1, keepdims=True)
    for other in OTHERS:
        uy = data[other] / np.linalg.norm(data[other], axis=1, keepdims=True)
        ex, ey = exact_knn(ux, 10), exact_knn(uy, 10)
        assert cknna_from_lists(ex.indices, 1 - ex.distances, ey.indices, 1 - ey.distances) == \
            pytest.approx(cknna(ux, uy, ex.indices, ey.indices), abs=1e-10), other


def test_item_chunks_give_the_whole_arrays_values(rng):
    """Beyond 65 536 items the k-NN metrics run in chunks of items: the same per-item values
    as the direct formulas over all items at once."""
    from geomkit.analysis.compare import cycle_knn, edit_distances, lcs_lengths

    n, k = 70_000, 3
    nx, ny = rng.integers(0, n, (n, k)), rng.integers(0, n, (n, k))
    ny[:500] = nx[:500, ::-1]  # some shared neighbours
    ny[::7, 0] = np.arange(0, n, 7)  # some cycles back to the item
    nx[::5, 1] = np.arange(0, n, 5)
    tail = slice(65_000, n)  # rows on both sides of the chunk boundary, computed alone
    np.testing.assert_array_equal(lcs_lengths(nx, ny)[tail], lcs_lengths(nx[tail], ny[tail]))
    np.testing.assert_array_equal(edit_distances(nx, ny)[tail],
                                  edit_distances(nx[tail], ny[tail]))
    direct = (nx[ny] == np.arange(n)[:, None, None]).any(axis=(1, 2)).mean()
    assert cycle_knn(nx, ny) == pytest.approx(direct, abs=1e-15)
