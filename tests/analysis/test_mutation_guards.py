"""Computations that a wrong implementation used to survive, each pinned by an independent
computation written here (issue #12, "mutation-level checks"):

| code | a mutation this file catches |
|---|---|
| norms: median norm per log2 frequency bin | mean instead of median; bins by log10; bins off by one |
| norms: group mean ratio and imbalance | ratio to the median, or to the mean of the group means; min/max swapped |
| infogain: centred ‖u − ū‖² | ū unweighted (plain mean) instead of frequency-weighted |
| infogain: whitened (u − ū)ᵀG(u − ū) | G = identity; G unweighted; G from the word vectors |
| isotropy: per-item norms aligned to the conformity rows | the alignment step skipped or a no-op (`_align` alone, and whole results with a sample and dropped rows) |
| sweep per-item output | only the last view written; the layer column missing or wrong |
| HTML page: notes and summary table | a note dropped; the summary table left out |

Each mutation in this table was applied to a copy of the package and the named test failed
(session of 2026-11-24: median → mean, ratio to the median, unweighted ū, G = identity,
`_align` returning its input, per-item of the last view only, notes cut to the first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import run_cli, write_h5
from geomkit import Space
from geomkit.analysis.infogain import compute_infogain
from geomkit.analysis.isotropy import compute_isotropy
from geomkit.analysis.norms import compute_norms
from geomkit.io.cooccurrence import Cooccurrence


def test_frequency_bin_medians(rng):
    n = 400
    counts = np.exp(rng.uniform(0, np.log(5000), n)).round() + 1
    x = rng.standard_normal((n, 5)) * rng.uniform(0.5, 3, n)[:, None]
    r = compute_norms(Space.from_array(x), counts=counts, likelihood=False)
    norms = np.linalg.norm(x, axis=1)
    expect = {}
    for c, v in zip(counts, norms):
        expect.setdefault(int(np.floor(np.log2(c))), []).append(v)
    got = {b["log2_count"]: b for b in r.frequency["bins"]}
    assert set(got) == set(expect)
    for b, values in expect.items():
        assert got[b]["n"] == len(values)
        assert got[b]["median_norm"] == pytest.approx(np.median(values), rel=1e-12)
        assert got[b]["min_count"] == 2 ** b


def test_group_mean_ratios_and_imbalance(rng):
    x = np.vstack([rng.standard_normal((30, 4)) * 1.0, rng.standard_normal((50, 4)) * 3.0,
                   rng.standard_normal((20, 4)) * 0.5])
    groups = np.array(["a"] * 30 + ["b"] * 50 + ["c"] * 20)
    r = compute_norms(Space.from_array(x), groups=groups, likelihood=False)
    norms = np.linalg.norm(x, axis=1)
    overall = norms.mean()  # over all rows, not the mean of the group means
    by = {g["group"]: g for g in r.groups}
    for name in "abc":
        mean = norms[groups == name].mean()
        assert by[name]["mean"] == pytest.approx(mean)
        assert by[name]["mean_ratio"] == pytest.approx(mean / overall)
    means = [norms[groups == name].mean() for name in "abc"]
    assert r.imbalance == pytest.approx(max(means) / min(means))


def _cooccurrence(rng, v=60):
    counts = rng.integers(2000, 20000, v).astype(float)
    m = sp.random(v, v, density=0.5, random_state=1, format="csr") * 100
    m = sp.csr_matrix(m + m.T)
    return Cooccurrence(matrix=m, vocab=np.array([f"w{i}" for i in range(v)], dtype=object),
                        counts=counts, window=2, n_tokens=int(counts.sum()))


def test_infogain_centred_and_whitened_norms(rng):
    co = _cooccurrence(rng)
    v = co.vocab.size
    u = rng.standard_normal((v, 6)) + 2.0
    c = rng.standard_normal((v, 6)) * np.array([3, 1, 1, 0.2, 1, 1]) + 1.0
    res = compute_infogain(co, embeddings={"words": list(co.vocab), "vectors": u, "context": c},
                           fit_min_count=0)
    p = co.counts / co.counts.sum()
    ubar = p @ u  # frequency-weighted, not u.mean(0)
    centred = ((u - ubar) ** 2).sum(1)
    cc = c - p @ c
    g = (cc * p[:, None]).T @ cc  # frequency-weighted covariance of the context vectors
    whitened = np.einsum("ij,jk,ik->i", u - ubar, g, u - ubar)
    from scipy import stats
    for name, values in (("centred", centred), ("whitened", whitened)):
        fit = stats.linregress(res.kl, values)
        assert res.fits[name]["r2"] == pytest.approx(fit.rvalue ** 2, rel=1e-9), name
        assert res.fits[name]["slope"] == pytest.approx(fit.slope, rel=1e-9), name


def test_isotropy_per_item_norms_follow_their_rows(tmp_path, rng):
    x = rng.standard_normal((200, 6)) * rng.uniform(0.5, 4, 200)[:, None] + 1
    x[[7, 40]] = np.nan
    p = write_h5(tmp_path / "a.h5", x)
    for options in ({"sample": 90, "seed": 4, "drop_nonfinite": True}, {"drop_nonfinite": True}):
        r = compute_isotropy(Space.open(str(p), **options))
        frame = r.per_item()
        rows = frame["row"].to_numpy()
        np.testing.assert_allclose(frame["norm"], np.linalg.norm(x[rows], axis=1), rtol=1e-12)
        unit = x[rows] / np.linalg.norm(x[rows], axis=1, keepdims=True)
        n = rows.size
        expect = (unit @ unit.sum(0) - 1) / (n - 1)  # mean cosine to the others
        np.testing.assert_allclose(frame["conformity"], expect, rtol=1e-9, atol=1e-12)


def test_sweep_per_item_writes_every_view(tmp_path, rng):
    stack = rng.standard_normal((40, 3, 5)) * np.array([1.0, 2.0, 3.0])[None, :, None]
    p = write_h5(tmp_path / "s.h5", stack, dataset="h")
    out = tmp_path / "per_item.csv"
    run_cli("norms", f"{p}:/h", "--layer", "all", "--per-item", out, "--json", check_code=0)
    frame = pd.read_csv(out)
    assert list(frame.columns[:2]) == ["layer", "row"] and len(frame) == 3 * 40
    for layer in range(3):
        part = frame[frame["layer"] == layer]
        np.testing.assert_allclose(part["norm"], np.linalg.norm(stack[:, layer], axis=1),
                                   rtol=1e-12)


def test_html_page_carries_the_notes_and_the_summary_table(rng):
    import html as html_lib

    from geomkit.report.html import render_html

    x = rng.standard_normal((120, 10)) + 3.0  # a strong common direction: several notes
    result = compute_isotropy(Space.from_array(x))
    page = html_lib.unescape(render_html(result))
    notes = result.notes()
    assert len(notes) >= 2
    for note in notes:
        assert note in page, note
    assert f"{result.isoscore:.4g}"[:5] in page and "avg_cosine" in page


def test_alignment_reorders_values_to_the_conformity_rows():
    """The step that puts the first pass's norms in the order of the second pass's rows (they
    agree in every pass geomkit runs today; the step guards an executor that returns parts out
    of order): checked on its own, with a permutation and with the 0..n−1 shorthand."""
    from geomkit.analysis.isotropy import _align

    values = np.array([50.0, 20.0, 90.0])
    np.testing.assert_array_equal(_align(np.array([5, 2, 9]), values, np.array([2, 9, 5])),
                                  [20.0, 90.0, 50.0])
    np.testing.assert_array_equal(_align(None, values, np.array([2, 0, 1])), [90.0, 50.0, 20.0])
    np.testing.assert_array_equal(_align(np.array([1, 2, 0]), values, None), [90.0, 50.0, 20.0])
