"""Hubness against scikit-hubness's own values (tests/data/oracles/hubness.json): identical
k-occurrence vectors and every measure to 1e-9; CSLS, DIS and k-NN error against brute force."""

import json

import h5py
import numpy as np
import pytest

from conftest import ORACLES
from geomkit.analysis.hubness import MEASURES, hubness_measures, k_occurrence, knn_error
from geomkit.transforms.hubness import reduced_knn

ORACLE = json.loads((ORACLES / "hubness.json").read_text())["values"]
VARIANTS = {
    "base_k5": ("none", 5, {}), "base_k10": ("none", 10, {}), "base_k50": ("none", 50, {}),
    "mp_normal_full_noself": ("mp", 10, {}),
    "mp_normal_c100_noself": ("mp", 10, {"candidates": 100}),
    "ls_k5_full": ("ls", 10, {"k_ls": 5}), "ls_k10_full": ("ls", 10, {"k_ls": 10}),
    "nicdm_k5_full": ("nicdm", 10, {"k_ls": 5}), "dsl_k5_full": ("dsl", 10, {"k_ls": 5}),
}
CASES = [(key, variant) for key, values in ORACLE.items() for variant in values
         if variant in VARIANTS]


def _data(name):
    with h5py.File(ORACLES / "hubness_data.h5") as f:
        return f[name][0:f[name].shape[0]]


@pytest.mark.parametrize("key,variant", CASES, ids=[f"{k}-{v}" for k, v in CASES])
def test_matches_scikit_hubness(key, variant):
    dataset, metric = key.rsplit("_", 1)
    method, k, options = VARIANTS[variant]
    oracle = ORACLE[key][variant]
    assert oracle["exact_oracle"]
    res = reduced_knn(_data(dataset), k, method, metric=metric, **options)
    kocc = k_occurrence(res.indices, 2000)
    np.testing.assert_array_equal(kocc, _data(f"kocc/{key}_{variant}"))
    measures = hubness_measures(kocc, k)
    for name in MEASURES:
        assert measures[name] == pytest.approx(oracle[name], abs=1e-9), name


def test_csls_and_dis_against_brute_force(rng):
    x = rng.standard_normal((300, 12))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    masked = cos.copy()
    np.fill_diagonal(masked, -np.inf)
    r = np.sort(masked, axis=1)[:, ::-1][:, :10].mean(1)
    score = 2 * cos - r[:, None] - r[None, :]
    np.fill_diagonal(score, -np.inf)
    expect = np.argsort(-score, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(reduced_knn(x, 5, "csls").indices, expect)
    beta = 20.0
    bank = masked.copy()  # querybank = dump, self excluded
    lse = np.log(np.exp(beta * bank).sum(0))
    activated = np.zeros(300, bool)
    activated[np.argmax(bank, axis=1)] = True
    dis = masked.copy()
    use = activated[np.argmax(masked, axis=1)]
    dis[use] = beta * masked[use] - lse[None, :]
    expect = np.argsort(-dis, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(reduced_knn(x, 5, "dis").indices, expect)


def test_closed_form_measures():
    m = hubness_measures(np.full(100, 5), 5)  # every item equally often: no hubness
    assert (m["robinhood"], m["gini"], m["n_hubs"], m["n_antihubs"]) == (0, 0, 0, 0)
    assert m["atkinson"] == pytest.approx(0, abs=1e-15)
    m = hubness_measures(np.r_[500, np.zeros(99, int)], 5)  # one item in every list
    assert m["n_hubs"] == 1 and m["antihub_occurrence"] == 0.99 and m["groupie_ratio"] == 1.0
    assert m["gini"] == pytest.approx(0.99)


def test_knn_error_majority_vote_and_ties():
    labels = np.array(["a", "a", "b", "b", "c"])
    idx = np.array([[1, 2, 3], [0, 2, 3], [3, 0, 4], [2, 1, 0], [0, 2, 4]])
    # row 0: a,b,b -> b (wrong); row 1: a,b,b -> b (wrong); row 2: b,a,c tie -> b (nearest) right;
    # row 3: b,a,a -> a wrong; row 4: a,b,c tie -> a wrong
    assert knn_error(idx, labels) == pytest.approx(4 / 5)
