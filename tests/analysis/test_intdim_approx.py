"""`geomkit intdim` on approximate neighbours (faiss IVF, geomkit/engine/ann.py), streamed.

With nprobe = every list the index search is exhaustive: every estimator, the per-item LID,
GRIDE's scales, local TwoNN and the k-occurrence equal the exact path's (and so
scikit-dimension's oracle values) to 1e-6. Duplicates follow the exact path's rule (the
distinct rows only, copies take their representative's LID). With few lists probed the measured
recall is below 1 and the estimates stay within the tolerances stated in docs/intdim.md. The
CLI flags act: --approximate turns knn.exact false, --nprobe without it is a usage error."""

import json

import h5py
import numpy as np
import pytest

from conftest import ORACLES, run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.intdim import compute_intdim
from geomkit.engine.ann import plan_index
from geomkit.errors import UsageError

G = json.loads((ORACLES / "intrinsic_dim.json").read_text())["global"]
TOL = 1e-6


def _data(name, n=2000):
    with h5py.File(ORACLES / "compare_data.h5") as f:
        return f[name][0:n]


def _all_lists(n, d, k, memory):
    return plan_index(n, d, k, memory).nlist


def _same(a, e, tol=TOL):
    for key in ("twonn", "mle", "gride"):
        assert getattr(a, key) == pytest.approx(getattr(e, key), rel=tol), key
    assert a.lpca == e.lpca
    for key in ("mean", "median", "p95"):
        assert a.lid[key] == pytest.approx(e.lid[key], rel=tol)
    np.testing.assert_allclose(a.lid_values, e.lid_values, rtol=tol)
    assert (a.n, a.n_distinct, a.n_duplicates) == (e.n, e.n_distinct, e.n_duplicates)


@pytest.mark.parametrize("name", ["id_gauss10", "id_swiss"])
def test_exhaustive_probe_equals_exact_path(name):
    x = _data(name)
    kw = dict(k=20, scales=8, with_hubness=True, local_twonn_n=12)
    e = compute_intdim(Space.from_array(x), **kw)
    space = Space.from_array(x)
    nlist = _all_lists(x.shape[0], x.shape[1], 20, space.memory)
    a = compute_intdim(space, approximate=True, nprobe=nlist, **kw)
    assert a.knn["exact"] is False and a.knn["nprobe"] == a.knn["nlist"] == nlist
    assert a.knn["recall"] == 1.0 and a.knn["k_searched"] == 20
    assert a.params["knn"] == "approximate" and e.knn["exact"] is True and e.knn["recall"] is None
    _same(a, e)
    # and so scikit-dimension's values
    assert a.twonn == pytest.approx(G["TwoNN_linear_discard0.1"][name]["value"], rel=TOL)
    assert a.mle == pytest.approx(G["MLE_k20_comb_mle"][name]["value"], rel=TOL)
    assert a.gride == pytest.approx(G["GRIDE_n1_1_n2_2"][name]["value"], rel=TOL)
    for sa, se in zip(a.gride_scales, e.gride_scales):
        assert sa["n1"] == se["n1"]
        for key in ("id", "error", "radius"):
            assert sa[key] == pytest.approx(se[key], rel=TOL)
    assert a.details["gride_ratios_used"] == e.details["gride_ratios_used"]
    np.testing.assert_allclose(a.local_twonn_values, e.local_twonn_values, rtol=TOL)
    np.testing.assert_array_equal(a.kocc, e.kocc)
    assert a.hubness["spearman"] == pytest.approx(e.hubness["spearman"], rel=TOL)


def test_duplicates_follow_the_exact_rule():
    """Copies (some in groups of three) are found by the row-hash pass and left out of the
    index: no neighbour at distance 0, the values of the data without the copies, each copy
    with its representative's LID, as the exact path."""
    x = _data("id_gauss10")
    rng = np.random.default_rng(3)
    pick = rng.choice(2000, 150, replace=False)
    xd = np.vstack([x, x[pick], x[pick[:40]]])
    xd = xd[rng.permutation(xd.shape[0])]
    nlist = _all_lists(2000, x.shape[1], 20, Space.from_array(xd).memory)
    e = compute_intdim(Space.from_array(xd), k=20, with_hubness=True)
    a = compute_intdim(Space.from_array(xd), k=20, with_hubness=True, approximate=True,
                       nprobe=nlist)
    assert (a.n, a.n_duplicates, a.n_distinct) == (2190, 190, 2000)
    _same(a, e)
    np.testing.assert_array_equal(a.representatives, e.representatives)
    np.testing.assert_array_equal(a.kocc, e.kocc)
    clean = compute_intdim(Space.from_array(x), k=20, approximate=True, nprobe=nlist)
    for key in ("twonn", "mle", "gride"):
        assert getattr(a, key) == pytest.approx(getattr(clean, key), rel=TOL)
    rep = a.representatives
    copies = np.flatnonzero(rep != np.arange(a.n))
    np.testing.assert_array_equal(a.lid_values[copies], a.lid_values[rep[copies]])
    assert np.isfinite(a.lid_values).all()  # a copy at distance 0 would give an infinite LID


def test_few_lists_probed_recall_below_one_estimates_within_tolerance():
    """nprobe 16 of 62 lists: recall measured < 1 (≥ 0.9); TwoNN and GRIDE within 1 %, MLE and
    the LID mean within 5 % of the exact values (the bias is downward: docs/intdim.md)."""
    x = _data("id_gauss10")
    e = compute_intdim(Space.from_array(x), k=20)
    a = compute_intdim(Space.from_array(x), k=20, approximate=True, nprobe=16)
    assert a.knn["nprobe"] == 16 and a.knn["nlist"] > 16
    assert 0.9 <= a.knn["recall"] < 1.0
    assert abs(a.twonn / e.twonn - 1) < 0.01
    assert abs(a.gride / e.gride - 1) < 0.01
    assert abs(a.mle / e.mle - 1) < 0.05 and a.mle < e.mle
    assert abs(a.lid["mean"] / e.lid["mean"] - 1) < 0.05
    # fewer lists: lower recall, larger error (the recall is what the estimates depend on)
    b = compute_intdim(Space.from_array(x), k=20, approximate=True, nprobe=4)
    assert b.knn["recall"] < a.knn["recall"]
    assert abs(b.mle / e.mle - 1) > abs(a.mle / e.mle - 1)


def test_streams_without_the_matrix(monkeypatch):
    """The approximate path never loads the N×d matrix (nor the exact kNN graph)."""
    x = _data("id_swiss", 1500)

    def refuse(*a, **k):
        raise AssertionError("the approximate path read the whole matrix")

    monkeypatch.setattr(Space, "matrix", refuse)
    monkeypatch.setattr(Space, "knn", refuse)
    r = compute_intdim(Space.from_array(x), k=10, scales=4, approximate=True)
    assert r.knn["exact"] is False and 0 < r.knn["recall"] <= 1 and r.n == 1500


def test_refusals():
    x = _data("id_gauss10")
    with pytest.raises(UsageError, match="nprobe acts on approximate"):
        compute_intdim(Space.from_array(x), nprobe=4)
    with pytest.raises(UsageError, match="device"):
        compute_intdim(Space.from_array(x), approximate=True, device="cpu")
    # a scale the budget cannot serve: one sentence naming the order and the memory needed
    small = 2 * 2**20
    r = compute_intdim(Space.from_array(x, memory=small), k=10, scales=8, approximate=True)
    assert len(r.gride_scales) == 3
    with pytest.raises(UsageError, match=r"neighbour order 512 .*--memory \d+MB"):
        compute_intdim(Space.from_array(x, memory=small), k=10, scales=512, approximate=True)
    with pytest.raises(UsageError, match="needs at least 2001 distinct rows"):
        compute_intdim(Space.from_array(x), k=10, scales=2000, approximate=True)


def test_cli_flags_act(tmp_path):
    x = _data("id_swiss", 1200).astype(np.float32)
    p = write_h5(tmp_path / "s.h5", x)
    exact = run_json("intdim", p, "-k", "10")
    assert exact["knn"]["exact"] is True and exact["knn"]["recall"] is None  # below: exact
    approx = run_json("intdim", p, "-k", "10", "--approximate", "--nprobe", "2")
    assert approx["knn"]["exact"] is False and approx["knn"]["nprobe"] == 2
    assert 0 < approx["knn"]["recall"] < 1
    assert {"index", "nlist", "recall_sample"} <= set(approx["knn"])
    assert approx["twonn"] != exact["twonn"]
    assert run_json("intdim", p, "-k", "10", "--exact")["twonn"] == exact["twonn"]
    table = run_cli("intdim", p, "-k", "10", "--approximate", "--nprobe", "2", check_code=0)
    assert "recall" in table.stdout
    for args in (["--nprobe", "4"], ["--exact", "--nprobe", "4"],
                 ["--approximate", "--nprobe", "100000"]):
        proc = run_cli("intdim", p, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "nprobe" in proc.stderr


def test_lpca_moments_share_the_row_hash_read(tmp_path, monkeypatch):
    """The approximate path reads the source for the row hashes; lPCA's moments come in the
    same pass (one read fewer), and its value is the one of a separate moments pass."""
    from geomkit.engine.executor import LocalExecutor

    x = _data("id_gauss10")
    path = write_h5(tmp_path / "g.h5", x.astype(np.float32))
    passes = []
    real = LocalExecutor.run

    def counting(self, source, consumers, **kw):
        passes.append(sorted(type(c).__name__ for c in consumers))
        return real(self, source, consumers, **kw)

    monkeypatch.setattr(LocalExecutor, "run", counting)
    r = compute_intdim(Space.open(str(path)), approximate=True, nprobe=4)
    assert passes[0] == ["MomentAccumulator", "RowHashAccumulator"]
    assert not any(p == ["MomentAccumulator"] for p in passes)
    assert r.lpca == compute_intdim(Space.from_array(x), estimators=("lpca",)).lpca
    passes.clear()
    compute_intdim(Space.open(str(path)), approximate=True, nprobe=4, estimators=("twonn",))
    assert passes[0] == ["RowHashAccumulator"]  # no moments when lPCA is not asked
