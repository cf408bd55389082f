"""MUSE's defaults and definitions, pinned: the refinement dictionary, CSLS over the whole
vocabularies, the unsupervised criterion, inverted softmax, the paper preset's settings."""

import numpy as np
import pytest

from dldiy_muse.config import PRESETS, AdversarialConfig, MuseConfig, RefineConfig
from dldiy_muse.csls import unit
from dldiy_muse.dictionary import best_two, candidates, induce, mean_csls_cosine


def spaces(n=700, m=600, d=12, seed=0):
    rng = np.random.default_rng(seed)
    src = unit(rng.normal(size=(n, d)) * np.linspace(2, 0.5, d))
    tgt = unit(src[:m] @ np.linalg.qr(rng.normal(size=(d, d)))[0].T
               + 0.3 * rng.normal(size=(m, d)))
    return src, tgt


def csls_matrix(src, tgt, k=10):
    """CSLS straight from eq. 6 over the WHOLE vocabularies: ``[n, m]``."""
    sim = src @ tgt.T
    r_t = np.sort(sim, axis=1)[:, -k:].mean(axis=1)
    r_s = np.sort(sim, axis=0)[-k:, :].mean(axis=0)
    return 2 * sim - r_t[:, None] - r_s[None, :]


def test_paper_defaults_are_pinned():
    r, a = RefineConfig(), AdversarialConfig()
    assert (r.iterations, r.mode, r.max_rank, r.method, r.knn, r.threshold) == (
        5, "S2T&T2S", 15_000, "csls", 10, None)
    assert (a.hidden, a.layers, a.input_dropout, a.dis_steps, a.batch_size) == (
        2048, 2, 0.1, 5, 32)
    assert (a.lr, a.dis_lr, a.decay, a.shrink, a.min_lr, a.beta) == (
        0.1, 0.1, 0.98, 0.5, 1e-6, 0.001)
    assert (a.epochs, a.epoch_size, a.dis_most_frequent, a.criterion_words, a.smooth) == (
        5, 1_000_000 // 32, 50_000, 10_000, 0.2)
    assert PRESETS["paper"] == {} and MuseConfig().restarts == 1


def test_candidates_search_the_whole_vocabulary_then_drop_ranks():
    src, tgt = spaces()
    full = csls_matrix(src, tgt)
    rank = 300
    pairs, conf = candidates(src, tgt, "csls", rank)
    best = full[:rank].argmax(axis=1)  # neighbourhoods and search over all words...
    expect = np.stack([np.arange(rank), best], 1)[best < rank]  # ...then ranks dropped
    np.testing.assert_array_equal(pairs, expect)
    top2 = np.sort(full[:rank], axis=1)[:, -2:]
    np.testing.assert_allclose(conf, (top2[:, 1] - top2[:, 0])[best < rank], atol=1e-5)
    # not the same as restricting everything to the top words first
    inside = csls_matrix(src[:rank], tgt[:rank]).argmax(axis=1)
    assert (inside != best).any()


def test_refinement_dictionary_is_mutual_by_default():
    src, tgt = spaces()
    s2t = {tuple(p) for p in induce(src, tgt, "S2T", 400).tolist()}
    t2s = {tuple(p) for p in induce(src, tgt, "T2S", 400).tolist()}
    assert s2t and t2s and s2t != t2s
    assert {tuple(p) for p in induce(src, tgt, max_rank=400).tolist()} == s2t & t2s
    assert {tuple(p) for p in induce(src, tgt, "union", 400).tolist()} == s2t | t2s
    full = csls_matrix(src, tgt)
    for s, t in induce(src, tgt, max_rank=400):
        assert full[s].argmax() == t and full[:, t].argmax() == s
    confident = induce(src, tgt, "S2T", 400, threshold=0.05)
    assert 0 < len(confident) < len(s2t)


def test_criterion_is_muse_mean_cosine():
    src, tgt = spaces()
    full = csls_matrix(src, tgt)
    words, rank = 500, 250
    best = full[:words].argmax(axis=1)
    keep = best < rank
    expect = (src[:words][keep] * tgt[best[keep]]).sum(axis=1).mean()
    assert mean_csls_cosine(src, tgt, words, rank) == pytest.approx(expect, abs=1e-5)
    assert mean_csls_cosine(src, -tgt[:5], 3, 1) <= 1  # few candidates: still defined


def test_inverted_softmax_normalises_over_all_sources():
    src, tgt = spaces()
    beta = 30.0
    logits = beta * src @ tgt.T
    log_p = logits - np.log(np.exp(logits - logits.max(0)).sum(0)) - logits.max(0)
    _, ids = best_two(src[:100], tgt, "invsm", beta=beta,
                      r_src=np.log(np.exp(logits - logits.max(0)).sum(0)) + logits.max(0))
    np.testing.assert_array_equal(ids[:, 0], log_p[:100].argmax(axis=1))
    pairs, _ = candidates(src, tgt, "invsm", 200, beta=beta)
    best = log_p[:200].argmax(axis=1)
    np.testing.assert_array_equal(pairs[:, 1], best[best < 200])
    nn_pairs, _ = candidates(src, tgt, "nn", 200)
    cos = (src @ tgt.T)[:200].argmax(axis=1)
    np.testing.assert_array_equal(nn_pairs[:, 1], cos[cos < 200])
    with pytest.raises(ValueError, match="retrieval 'knn'"):
        induce(src, tgt, method="knn")
