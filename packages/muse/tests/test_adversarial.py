"""Adversarial initialisation on planted pairs: a known rotation, noise, partial overlap."""

import numpy as np
import pytest
import torch

from dldiy_muse.adversarial import adversarial, orthogonalize
from dldiy_muse.align import refine
from dldiy_muse.config import AdversarialConfig
from dldiy_muse.csls import unit
from dldiy_muse.dictionary import precision_at_k
from dldiy_muse.models import Discriminator


def planted_skewed(n=2000, d=8, max_angle=1.2, noise=0.02, overlap=0.8, seed=0):
    """Target = rotated source + noise for the first ``overlap`` words, independent words
    after; ``pairs`` are the true (source, target) ids.

    The distribution must have no symmetry a discriminator could not see through: a Gaussian
    cloud is unchanged by a sign flip of any principal axis, so those maps would fool it as
    well as the right one. Here each coordinate is skewed (a centred exponential) with its own
    scale. The rotation is ``exp(A)`` for a random antisymmetric ``A``, its largest angle
    ``max_angle``: adversarial training starts from ``W = I`` and follows gradients; here
    rotations with a largest angle of 1.5 rad were recovered, one of 3.0 rad (near a
    half-turn) was not. Real pairs make no such promise (see the README's seed study).
    """
    rng = np.random.default_rng(seed)
    scale = np.linspace(2, 0.5, d)

    def draw(m):
        return (rng.exponential(size=(m, d)) - 1) * scale

    src = draw(n)
    A = rng.normal(size=(d, d))
    A = (A - A.T) / 2
    A *= max_angle / np.linalg.norm(A, 2)  # the largest rotation angle of exp(A)
    R = torch.linalg.matrix_exp(torch.from_numpy(A)).numpy()
    shared = int(n * overlap)
    tgt = np.vstack([src[:shared] + noise * rng.normal(size=(shared, d)), draw(n - shared)])
    tgt = tgt @ R.T
    perm = rng.permutation(n)
    where = np.argsort(perm)
    pairs = np.stack([np.arange(shared), where[:shared]], axis=1)
    return unit(src), unit(tgt[perm]), R.astype(np.float32), pairs


SMALL = AdversarialConfig(hidden=128, epochs=3, epoch_size=500, dis_most_frequent=2000,
                          log_every=50)


def test_adversarial_then_refinement_recovers_a_planted_rotation():
    src, tgt, R, pairs = planted_skewed()
    init = adversarial(src, tgt, SMALL, seed=0, show_progress=False)
    crits = [h["criterion"] for h in init.history if "criterion" in h]
    assert len(crits) == SMALL.epochs + 1  # identity, then one per epoch
    assert max(crits[1:]) > crits[0] + 0.05  # the criterion rises over training
    assert np.linalg.norm(init.W - R) < 0.5 * np.linalg.norm(np.eye(len(R)) - R)
    refined = refine(src, tgt, init, iterations=2, max_rank=2000, show_progress=False)
    assert precision_at_k(refined.map(src), tgt, pairs, "csls")["p@1"] >= 0.99
    np.testing.assert_allclose(refined.W, R, atol=0.05)
    logged = [h for h in init.history if h["step"] == "adversarial"]
    assert len(logged) == SMALL.epochs * SMALL.epoch_size // SMALL.log_every
    assert all(0 <= h["dis_acc"] <= 1 and h["dis_loss"] > 0 for h in logged)


def test_adversarial_is_deterministic_and_keeps_the_best_criterion():
    src, tgt, _, _ = planted_skewed(n=500, seed=1)
    cfg = AdversarialConfig(hidden=32, epochs=2, epoch_size=30, dis_most_frequent=500,
                            log_every=10)
    state = torch.get_rng_state()
    a = adversarial(src, tgt, cfg, seed=3, show_progress=False)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    b = adversarial(src, tgt, cfg, seed=3, show_progress=False)
    c = adversarial(src, tgt, cfg, seed=4, show_progress=False)
    np.testing.assert_array_equal(a.W, b.W)
    def timeless(history):
        return [{k: v for k, v in h.items() if k != "game_seconds"} for h in history]

    assert timeless(a.history) == timeless(b.history) and not np.array_equal(a.W, c.W)
    epochs = [h for h in a.history if "criterion" in h]
    assert [h["epoch"] for h in epochs] == [0, 1, 2]
    from dldiy_muse.dictionary import mean_csls_cosine

    kept = mean_csls_cosine(a.map(src), tgt)  # the identity (epoch 0) is never selected
    assert abs(kept - max(h["criterion"] for h in epochs[1:])) < 1e-5


def test_learning_rate_follows_muse_schedule():
    """Decay every epoch (floored at min_lr); shrink only from the second epoch whose criterion
    is below the best; the best starts empty, so the first epoch is always kept."""
    from dldiy_muse.adversarial import LearningRate

    cfg = AdversarialConfig(lr=0.1, decay=0.9, shrink=0.5, min_lr=1e-3)
    s = LearningRate(cfg)
    assert s.epoch_end(-0.5)  # first epoch: kept whatever its value (no identity baseline)
    assert abs(s.lr - 0.09) < 1e-12
    assert s.epoch_end(0.3) and abs(s.lr - 0.081) < 1e-12
    assert not s.epoch_end(0.2) and abs(s.lr - 0.0729) < 1e-12  # first drop: only armed
    assert not s.epoch_end(0.25) and abs(s.lr - 0.0729 * 0.9 * 0.5) < 1e-12  # second: halved
    assert not s.epoch_end(0.3) and abs(s.lr - 0.0729 * 0.81 * 0.5) < 1e-12  # equal: no shrink
    low = LearningRate(AdversarialConfig(lr=0.1, decay=0.5, min_lr=0.06))
    low.epoch_end(1.0)
    assert low.lr == 0.06 and not low.stop  # floored at min_lr, as MUSE
    low.epoch_end(0.5)
    low.epoch_end(0.4)
    assert low.lr == 0.03 and low.stop  # a shrink below min_lr stops training


def test_adversarial_history_follows_the_schedule():
    src, tgt, _, _ = planted_skewed(n=300, seed=2)
    cfg = AdversarialConfig(hidden=16, epochs=4, epoch_size=5, dis_most_frequent=300,
                            lr=0.5, decay=0.9, shrink=0.5)
    from dldiy_muse.adversarial import LearningRate

    hist = [h for h in adversarial(src, tgt, cfg, show_progress=False).history
            if "criterion" in h and h["epoch"] > 0]
    s = LearningRate(cfg)
    for h in hist:
        assert abs(h["lr"] - s.lr) < 1e-12
        s.epoch_end(h["criterion"])


def test_discriminator_limit_is_checked_against_both_vocabularies(caplog):
    from dldiy_muse.adversarial import discriminator_words

    assert discriminator_words(50_000, 200_000, 60_000) == 50_000
    with caplog.at_level("WARNING"):
        assert discriminator_words(50_000, 200_000, 20_000) == 20_000
    assert "exceeds the vocabularies" in caplog.text and "20000" in caplog.text
    src, tgt, _, _ = planted_skewed(n=300, seed=2)
    cfg = AdversarialConfig(hidden=8, epochs=1, epoch_size=3, log_every=1)
    out = adversarial(src, tgt[:250], cfg, show_progress=False)
    assert out.history[0] == {"step": "adversarial setup", "dis_words": 250,
                              "dis_most_frequent": 50_000}


def test_bf16_precision_trains_too():
    src, tgt, _, _ = planted_skewed(n=300, seed=2)
    cfg = AdversarialConfig(hidden=16, epochs=1, epoch_size=20, dis_most_frequent=300,
                            log_every=10, precision="bf16")
    out = adversarial(src, tgt, cfg, show_progress=False)
    assert np.isfinite(out.W).all()
    assert all(np.isfinite(h["dis_loss"]) for h in out.history if "dis_loss" in h)


def test_cuda_without_a_device_is_one_line():
    from dldiy_core import UserError

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UserError, match="no CUDA device"):
        adversarial(*planted_skewed(n=50)[:2], AdversarialConfig(device="cuda"),
                    show_progress=False)


@pytest.mark.gpu
def test_cuda_adversarial_matches_the_cpu_schedule():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    src, tgt, R, pairs = planted_skewed()
    cfg = AdversarialConfig(hidden=128, epochs=3, epoch_size=500, dis_most_frequent=2000,
                            log_every=50, device="cuda")
    init = adversarial(src, tgt, cfg, seed=0, show_progress=False)
    refined = refine(src, tgt, init, iterations=2, max_rank=2000, show_progress=False)
    assert precision_at_k(refined.map(src), tgt, pairs, "csls")["p@1"] >= 0.99


def test_orthogonalize_pulls_towards_the_orthogonal_manifold():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    W = torch.tensor(Q, dtype=torch.float64)
    orthogonalize(W, 0.01)
    torch.testing.assert_close(W, torch.tensor(Q), atol=1e-12, rtol=0)  # a fixed point
    W = torch.tensor(Q * 1.05 + 0.01 * rng.normal(size=(6, 6)))
    eye = torch.eye(6, dtype=torch.float64)
    before = torch.linalg.norm(W @ W.T - eye)
    for _ in range(200):
        orthogonalize(W, 0.01)
    assert torch.linalg.norm(W @ W.T - eye) < 0.1 * before


def test_discriminator_shapes():
    dis = Discriminator(12, hidden=64, layers=2, input_dropout=0.1)
    assert dis(torch.zeros(5, 12)).shape == (5,)
    linear = [m for m in dis.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(12, 64), (64, 64), (64, 1)]


def test_study_reports_seeds_against_supervised(tmp_path):
    import json

    from dldiy_muse.config import MuseConfig, RefineConfig
    from dldiy_muse.embeddings import Embeddings
    from dldiy_muse.pipeline import Pair
    from dldiy_muse.study import study

    src, tgt, _, pairs = planted_skewed(n=600, seed=3)
    sw, tw = [f"s{i}" for i in range(len(src))], [f"t{i}" for i in range(len(tgt))]
    words = [(sw[s], tw[t]) for s, t in pairs]
    pair = Pair(Embeddings(sw, src), Embeddings(tw, tgt), words[:300], words[300:])
    cfg = MuseConfig(init="adversarial", refine=RefineConfig(iterations=1, max_rank=600),
                     adversarial=AdversarialConfig(hidden=16, epochs=1, epoch_size=20,
                                                   dis_most_frequent=600, log_every=10,
                                                   criterion_words=600))
    out = study(cfg, 2, tmp_path / "s.json", show_progress=False, pair=pair)
    assert json.loads((tmp_path / "s.json").read_text())["figures"] == out
    assert out["supervised"]["csls_p@1"] == 1.0 and out["success_threshold_csls_p@1"] == 0.9
    assert [r["seed"] for r in out["runs"]] == [0, 1]
    for r in out["runs"]:
        assert r["success"] == (r["csls_p@1"] >= 0.9)
        assert r["criterion"] >= r["init"]["criterion"] - 1e-6  # refinement kept the best
    assert out["successes"] == sum(r["success"] for r in out["runs"])
    best = max(out["runs"], key=lambda r: r["criterion"])
    assert out["selected_by_criterion"] == best["seed"]
