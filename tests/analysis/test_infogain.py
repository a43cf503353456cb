"""Information gain on hand-computable corpora; corpus and matrix paths agree; baselines."""

import numpy as np
import pytest

from geomkit.analysis.infogain import compute_infogain, kl_per_word
from geomkit.io.cooccurrence import (count_corpus, read_cooccurrence, shuffled_documents,
                                     write_cooccurrence)


def _corpus(tmp_path, text):
    p = tmp_path / "c.txt"
    p.write_text(text)
    return str(p)


def test_kl_by_hand(tmp_path):
    # window 1, both directions: a:{b:2, c:1}, b:{a:2, c:1}, c:{a:1, b:1}; p(w) = 2/6 each
    co = count_corpus(_corpus(tmp_path, "a b a c\nb c\n"), window=1)
    assert list(co.vocab) == ["a", "b", "c"] and co.n_tokens == 6
    np.testing.assert_array_equal(co.matrix.toarray(), [[0, 2, 1], [2, 0, 1], [1, 1, 0]])
    kl = kl_per_word(co)
    assert kl == pytest.approx([2 / 3 * np.log(2), 2 / 3 * np.log(2), np.log(1.5)])
    res = compute_infogain(co)
    assert res.mutual_information == pytest.approx(kl.mean())


def test_window_and_min_count_keep_positions(tmp_path):
    # "x" is below min_count: it leaves the vocabulary but still separates a and b
    co = count_corpus(_corpus(tmp_path, "a x b\na b\n"), window=1, min_count=2)
    assert list(co.vocab) == ["a", "b"]
    np.testing.assert_array_equal(co.matrix.toarray(), [[0, 1], [1, 0]])
    co2 = count_corpus(_corpus(tmp_path, "a x b\na b\n"), window=2, min_count=2)
    np.testing.assert_array_equal(co2.matrix.toarray(), [[0, 2], [2, 0]])


def test_corpus_and_matrix_paths_agree(tmp_path, rng):
    words = [f"w{i}" for i in range(40)]
    text = "\n".join(" ".join(rng.choice(words, size=rng.integers(5, 30), p=None)) for _ in range(200))
    co = count_corpus(_corpus(tmp_path, text), window=3, memory=1 << 12)
    write_cooccurrence(str(tmp_path / "co.h5"), co)
    back = read_cooccurrence(str(tmp_path / "co.h5"))
    assert (back.matrix != co.matrix).nnz == 0 and back.window == 3 and back.n_tokens == co.n_tokens
    np.testing.assert_allclose(kl_per_word(back), kl_per_word(co))


def test_shuffle_baseline_is_kl_of_shuffled_corpus(tmp_path, rng):
    text = "\n".join(" ".join(rng.choice(list("abcdefg"), size=20)) for _ in range(50))
    path = _corpus(tmp_path, text)
    co = count_corpus(path, window=2)
    shuffled = [count_corpus(path, window=2, documents=shuffled_documents(path, s)) for s in range(2)]
    res = compute_infogain(co, baseline="shuffle", shuffled=shuffled)
    expect = (kl_per_word(shuffled[0]) + kl_per_word(shuffled[1])) / 2
    np.testing.assert_allclose(res.kl_baseline, expect)
    assert sorted(sum(shuffled_documents(path, 0), [])) == sorted(text.split())


def test_norm_fit_recovers_a_planted_relation(tmp_path, rng):
    words = [f"w{i}" for i in range(30)]
    text = "\n".join(" ".join(rng.choice(words, size=25, p=np.r_[np.full(10, 0.07), np.full(20, 0.015)]))
                     for _ in range(400))
    co = count_corpus(_corpus(tmp_path, text), window=2)
    kl = kl_per_word(co)
    directions = rng.standard_normal((co.vocab.size, 8))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    vectors = directions * np.sqrt(2 * kl)[:, None]  # ‖u‖² = 2·KL exactly
    res = compute_infogain(co, embeddings={"words": list(co.vocab), "vectors": vectors},
                           fit_min_count=0)
    assert res.fits["raw"]["r2"] == pytest.approx(1.0) and res.fits["raw"]["slope"] == pytest.approx(2.0)
    assert res.to_dict()["spearman"]["raw"] == pytest.approx(1.0)
    assert set(res.per_item().columns) >= {"word", "count", "kl", "kl_baseline", "delta_kl",
                                           "norm_sq", "delta_norm_sq"}
