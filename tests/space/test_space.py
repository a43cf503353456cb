"""The Space: one view between input and analysis.

- ``Space.from_array`` and a ``.npy`` file give the same numbers as the HDF5 path, for every
  analysis;
- the Dask executor gives the same numbers as the local one (every accumulator merges), also
  when rows are sampled or dropped, and with worker processes (the source is pickled and
  reopened);
- shared products are computed once: the kNN graph for several reductions, the moments for
  isotropy and norms on one space;
- library errors name parameters, the CLI names flags.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import geomkit
from conftest import run_cli, run_json, write_h5
from geomkit import Space
from geomkit.analysis.depth import compute_depth
from geomkit.analysis.hubness import compute_hubness
from geomkit.analysis.isotropy import compute_isotropy
from geomkit.analysis.norms import compute_norms
from geomkit.engine import DaskExecutor, LocalExecutor
from geomkit.errors import InputError

N, D = 90, 12


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, D)) * np.linspace(0.5, 3, D) + 1.5
    y = rng.standard_normal((60, D)) * 1.2 + 1.0
    labels = np.array([f"c{i % 3}" for i in range(N)])
    counts = rng.integers(1, 5000, N)
    ids = np.array([f"id{i}" for i in range(N)])
    texts = np.array([f"text {i}" for i in range(N)])
    folder = tmp_path_factory.mktemp("space")
    h5 = write_h5(folder / "x.h5", x, ids=ids, texts=texts, labels=labels, counts=counts)
    h5y = write_h5(folder / "y.h5", y)
    npy = folder / "x.npy"
    np.save(npy, x)
    return dict(x=x, y=y, labels=labels, counts=counts, ids=ids, texts=texts, h5=str(h5),
                h5y=str(h5y), npy=str(npy), folder=folder)


def _array_space(d, **options):
    return Space.from_array(d["x"], ids=d["ids"], texts=d["texts"], labels=d["labels"],
                            counts=d["counts"], **options)


def _same(a: dict, b: dict, rtol=1e-12):
    assert a.keys() == b.keys()
    for key in a:
        va, vb = a[key], b[key]
        if isinstance(va, dict):
            _same(va, vb, rtol)
        elif isinstance(va, float) and va is not None and vb is not None:
            assert va == pytest.approx(vb, rel=rtol, abs=1e-14), key
        elif isinstance(va, list) and va and isinstance(va[0], dict):
            for ra, rb in zip(va, vb):
                _same(ra, rb, rtol)
        else:
            assert va == vb, key


# ----------------------------------------------------------------------------- same numbers
def _all_analyses(space, other):
    labels = space.metadata.class_labels("x")
    return {
        "isotropy": compute_isotropy(space, uniformity_max_n=50),
        "norms": compute_norms(space, groups=labels, counts=space.metadata.counts),
        "hubness": compute_hubness(space, k=5, reduce=("none", "ls", "csls"), labels=labels),
        "depth_cosine": compute_depth(space, other),
        "depth_chord": compute_depth(space, other, depth="chord"),
        "depth_spatial": compute_depth(space, other, depth="spatial"),
    }


@pytest.mark.parametrize("kind", ["array", "npy"])
def test_array_and_npy_give_the_numbers_of_the_hdf5_path(data, kind):
    h5 = _all_analyses(Space.open(data["h5"]), Space.open(data["h5y"]))
    space = _array_space(data) if kind == "array" else Space.open(data["npy"])
    other = Space.from_array(data["y"])
    if kind == "npy":  # a .npy file has no metadata (labels, counts): the numbers of the rows
        iso = compute_isotropy(space, uniformity_max_n=50)
        _same(iso.to_dict(), h5["isotropy"].to_dict())
        np.testing.assert_array_equal(iso.conformity, h5["isotropy"].conformity)
        _same(compute_depth(space, other, depth="chord").to_dict(), h5["depth_chord"].to_dict())
        assert space.label == data["npy"]
        return
    ours = _all_analyses(space, other)
    for name, result in ours.items():
        _same(result.to_dict(), h5[name].to_dict())
    np.testing.assert_array_equal(ours["isotropy"].conformity, h5["isotropy"].conformity)
    np.testing.assert_array_equal(ours["norms"].log_likelihood, h5["norms"].log_likelihood)
    for method in ("none", "ls", "csls"):
        np.testing.assert_array_equal(ours["hubness"].kocc[method], h5["hubness"].kocc[method])
    np.testing.assert_array_equal(ours["depth_spatial"].test_depth,
                                  h5["depth_spatial"].test_depth)
    # the metadata travels: ids and texts of the array reach the per-item tables
    assert list(ours["isotropy"].per_item()["id"][:3]) == ["id0", "id1", "id2"]


def test_transform_of_an_array_writes_what_the_hdf5_path_writes(data, tmp_path):
    import h5py

    from geomkit.transforms import Pipeline, Step
    from geomkit.transforms.run import transform_file

    outs = []
    for name, space in (("h5", Space.open(data["h5"])), ("array", _array_space(data))):
        out = tmp_path / f"{name}.h5"
        transform_file(space, Pipeline([Step("center"), Step("whiten")]), str(out))
        with h5py.File(out) as f:
            outs.append((f["embeddings"][:], [v.decode() if isinstance(v, bytes) else v
                                              for v in f["ids"][:3]]))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12, atol=1e-12)
    assert outs[0][1] == outs[1][1] == ["id0", "id1", "id2"]


def test_npy_from_the_command_line(data, tmp_path):
    h5 = run_json("isotropy", data["h5"])
    npy = run_json("isotropy", data["npy"])
    _same(npy, h5)
    info = run_json("info", data["npy"], "--scan")
    assert info["shape"] == [N, D] and info["tree"] == [] and info["nonfinite_rows"] == 0
    proc = run_cli("isotropy", data["npy"] + ":/embeddings")
    assert proc.returncode == 2 and ".npy" in proc.stderr
    proc = run_cli("isotropy", data["npy"], "--ids", "ids")
    assert proc.returncode == 2 and "HDF5" in proc.stderr
    bad = tmp_path / "cut.npy"
    bad.write_bytes(open(data["npy"], "rb").read()[:200])
    proc = run_cli("isotropy", bad)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_npy_layer_stack_and_prefix(tmp_path, rng):
    stack = rng.standard_normal((30, 3, 6))
    np.save(tmp_path / "s.npy", stack)
    write_h5(tmp_path / "s.h5", stack)
    for layer, dims in ((0, None), (-1, 4)):
        a = compute_norms(Space.open(str(tmp_path / "s.npy"), layer=layer, dims=dims))
        b = compute_norms(Space.open(str(tmp_path / "s.h5"), layer=layer, dims=dims))
        np.testing.assert_array_equal(a.norms, b.norms)
        np.testing.assert_allclose(a.norms, np.linalg.norm(stack[:, layer, :dims], axis=1))


# ----------------------------------------------------------------------------- Dask executor
def _dask(**options):
    return DaskExecutor(scheduler="synchronous", partitions=5, **options)


@pytest.mark.parametrize("options", [{}, {"sample": 70, "seed": 3}],
                         ids=["all rows", "sampled"])
def test_dask_executor_gives_the_local_numbers(data, options):
    from geomkit.transforms import Pipeline, Step

    local = Space.open(data["h5"], memory=2**20, **options)
    dask = Space.open(data["h5"], memory=2**20, executor=_dask(), **options)
    for space in (local, dask):
        space.result_iso = compute_isotropy(space, uniformity_max_n=40,
                                            transform=Pipeline([Step("center")]).fit(space),
                                            transform_name="center")
        space.result_norms = compute_norms(space, counts=space.metadata.counts)
        space.result_depth = compute_depth(space, Space.open(data["h5y"]), depth="chord")
    _same(dask.result_iso.to_dict(), local.result_iso.to_dict(), rtol=1e-9)
    np.testing.assert_allclose(dask.result_iso.conformity, local.result_iso.conformity, rtol=1e-9)
    _same(dask.result_norms.to_dict(), local.result_norms.to_dict(), rtol=1e-9)
    np.testing.assert_allclose(dask.result_norms.log_likelihood, local.result_norms.log_likelihood,
                               rtol=1e-9)
    np.testing.assert_allclose(dask.result_depth.ref_depth, local.result_depth.ref_depth, rtol=1e-9)


def test_dask_executor_drops_the_same_rows_and_counts_them(tmp_path, rng):
    x = rng.standard_normal((120, 5))
    x[[3, 50, 101]] = np.nan
    x[[7, 88]] = 0.0
    p = str(write_h5(tmp_path / "bad.h5", x))
    results = []
    for executor in (LocalExecutor(), _dask()):
        space = Space.open(p, drop_nonfinite=True, drop_zero=True, executor=executor)
        results.append(compute_isotropy(space))
        assert space.n_dropped == 5 and space.n_dropped_zero == 2
        assert list(np.setdiff1d(np.arange(120), space.rows)) == [3, 7, 50, 88, 101]
    _same(results[1].to_dict(), results[0].to_dict(), rtol=1e-9)
    assert results[0].to_dict()["n_dropped"] == 5


def test_dask_worker_processes_reopen_the_file(data):
    local = compute_isotropy(Space.open(data["h5"]), uniformity_max_n=40)
    remote = compute_isotropy(Space.open(data["h5"], executor=DaskExecutor(
        scheduler="processes", partitions=3)), uniformity_max_n=40)
    _same(remote.to_dict(), local.to_dict(), rtol=1e-9)


def _accumulator_classes():
    found = []
    for info in pkgutil.walk_packages(geomkit.__path__, "geomkit."):
        if ".cli" in info.name or info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and hasattr(cls, "consume"):
                found.append(cls)
    return found


def test_every_accumulator_can_run_on_dask():
    classes = _accumulator_classes()
    assert len(classes) >= 7  # moments, row stats, partition, conformity, likelihood, depth x2
    for cls in classes:
        assert callable(getattr(cls, "fresh", None)), f"{cls.__name__} has no fresh()"
        assert callable(getattr(cls, "merge", None)), f"{cls.__name__} has no merge()"


# ----------------------------------------------------------------------------- computed once
def test_the_knn_graph_is_searched_once_for_several_reductions(data, monkeypatch):
    import geomkit.engine.knn as knn
    import geomkit.transforms.hubness as hub

    calls = []
    real = knn.exact_knn

    def counting(x, k, **kw):
        calls.append((k, kw.get("metric")))
        return real(x, k, **kw)

    monkeypatch.setattr(knn, "exact_knn", counting)
    monkeypatch.setattr(hub, "exact_knn", counting)
    shared = compute_hubness(Space.open(data["h5"]), k=4, reduce=("none", "ls", "nicdm", "csls"))
    assert calls == [(10, "cosine")]  # csls reads 10 neighbours: the largest graph, sliced
    calls.clear()
    alone = {m: compute_hubness(Space.open(data["h5"]), k=4, reduce=(m,))
             for m in ("none", "ls", "nicdm", "csls")}
    for m, result in alone.items():  # slicing the shared graph changes nothing
        np.testing.assert_array_equal(shared.kocc[m], result.kocc[m])
        assert shared.methods[m] == result.methods[m]


def test_moments_are_computed_once_per_space(data, monkeypatch):
    passes = []
    real = LocalExecutor.run

    def counting(self, source, consumers, **kw):
        passes.append([type(c).__name__ for c in consumers])
        return real(self, source, consumers, **kw)

    monkeypatch.setattr(LocalExecutor, "run", counting)
    space = Space.open(data["h5"])
    compute_isotropy(space)
    assert passes[0] == ["MomentAccumulator", "RowStatAccumulator"]  # one fused read
    passes.clear()
    compute_norms(space)  # moments and norms come from the cache: only the likelihood pass
    assert passes == [["LogLikelihoodAccumulator"]]
    passes.clear()
    compute_depth(space)  # Σx̂ from the cached row statistics: only the projection pass
    assert passes == [["ProjectionAccumulator"]]


# ----------------------------------------------------------------------------- errors
def test_library_errors_name_parameters_and_the_cli_names_flags(tmp_path, rng):
    x = rng.standard_normal((20, 4))
    x[2] = np.nan
    p = str(write_h5(tmp_path / "nan.h5", x))
    with pytest.raises(InputError) as err:
        Space.open(p).moments()
    assert "drop_nonfinite=True" in str(err.value) and "--" not in str(err.value)
    proc = run_cli("norms", p)
    assert proc.returncode == 3 and "--drop-nonfinite" in proc.stderr
    assert "drop_nonfinite=True" not in proc.stderr
    x[2] = 0.0
    q = str(write_h5(tmp_path / "zero.h5", x))
    with pytest.raises(InputError, match=r"drop_zero=True"):
        compute_isotropy(Space.open(q))
    assert "--drop-zero" in run_cli("isotropy", q).stderr


def test_results_are_frozen(data):
    import dataclasses

    result = compute_norms(Space.open(data["h5"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.d = 3
