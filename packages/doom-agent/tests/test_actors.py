"""The actors: the overlapped collector stores what the sequential one stores (real games);
the acting copy computes what the learner computes under autocast, refreshed after updates."""

import copy

import numpy as np
import pytest
import torch

from dldiy_core import resolve
from dldiy_doom_agent import actors as actors_module
from dldiy_doom_agent.actors import ActingNet, Actors
from dldiy_doom_agent.config import PRESETS, DoomConfig
from dldiy_doom_agent.models import Arnold
from dldiy_doom_agent.train import build_model, screen_shape


def _config(*sets):
    return resolve(DoomConfig, PRESETS, "tiny",
                   sets=["env.scenario=basic", "env.width=42", "env.height=24", "rl.actors=2",
                         *sets])


def _by_screen(model, screen, variables, state, epsilon, rng, device, features=True,
               autocast=None):
    """A policy that depends on the observation only (the same in both modes)."""
    actions = screen.reshape(len(screen), -1).sum(1, dtype=np.int64) % 3
    return actions, state, None


def _collect(overlap, steps, monkeypatch):
    monkeypatch.setattr(actors_module, "act", _by_screen)
    cfg = _config(f"rl.overlap={str(overlap).lower()}")
    model = build_model(cfg)
    actors = Actors(cfg, model, copy.deepcopy(model), screen_shape(cfg))
    try:
        actors._start()
        actors.collect(2 * steps + 1)  # the odd step carries over
        finished = list(actors.finished)
        return actors, finished
    finally:
        actors.close()


def test_overlapped_collector_stores_the_same_transitions(monkeypatch):
    """Two basic games, 90 steps each (an episode times out after 75 without a kill): the
    overlapped collector's rings hold the sequential collector's transitions exactly, the
    episode boundaries included."""
    seq, seq_finished = _collect(False, 90, monkeypatch)
    ovl, ovl_finished = _collect(True, 90, monkeypatch)
    assert ovl.overlap and not seq.overlap
    assert seq.env_steps == ovl.env_steps == 180 and seq.debt == ovl.debt == 1
    assert ovl.replay.count.tolist() == [90, 90] and ovl.replay.added == 180
    for k in ("screen", "variables", "features", "action", "reward", "nav_reward", "done"):
        np.testing.assert_array_equal(ovl.replay.data[k][:, :90], seq.replay.data[k][:, :90],
                                      err_msg=k)
    done = ovl.replay.data["done"][:, :90]
    assert done.any(axis=1).all()  # every actor crossed an episode end
    assert ovl.episodes == seq.episodes == int(done.sum())
    assert ovl_finished == seq_finished
    # the finished episodes come in the order of their last steps (step, then actor); the
    # first one of each actor lasted (its first done's slot + 1) steps of 4 tics
    order = sorted((t, i) for i, t in zip(*np.nonzero(done), strict=True))
    for i in (0, 1):
        t = int(np.flatnonzero(done[i])[0])
        assert ovl_finished[order.index((t, i))]["ep_tics"] == 4 * (t + 1)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_acting_copy_matches_the_learner_arithmetic(precision):
    torch.manual_seed(0)
    model = Arnold(3, 48, 84, 3, [0, 1], hidden=32)
    acting = ActingNet(model, precision, features=True)
    screen = torch.randint(0, 255, (2, 1, 3, 48, 84), dtype=torch.uint8)
    variables = torch.rand(2, 1, 2)
    if precision == "fp32":
        assert acting.net() is model and acting.dtype is None
        with torch.no_grad():
            full = model(screen, variables, None, None, False)
            q, state = model.action.step(screen[:, 0], variables[:, 0], None)
        torch.testing.assert_close(q, full["q"][:, 0], rtol=0, atol=0)
        torch.testing.assert_close(state, full["state"], rtol=0, atol=0)
        return

    def both():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(screen, variables), acting.net()(screen, variables)

    ref, out = both()
    for k in ("q", "features", "nav_q"):
        torch.testing.assert_close(out[k], ref[k], rtol=0, atol=0)
    assert out["q"].dtype == torch.float32  # the Q heads stay float32
    # the lean acting step computes the same as the forward on one step
    state = (torch.rand(1, 2, 32), torch.rand(1, 2, 32))
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            full = model(screen, variables, None, state, False)
        q, (h, c) = acting.net().action.step(screen[:, 0], variables[:, 0], state)
    torch.testing.assert_close(q, full["q"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close((h, c), full["state"], rtol=0, atol=0)
    net = acting.net()
    assert net.action.lstm.weight_ih_l0.dtype == torch.bfloat16
    assert net.action.q.weight is model.action.q.weight  # shared, not copied
    assert net.action.lstm.bias_ih_l0 is model.action.lstm.bias_ih_l0
    # a learner update: stale until told, then the same again
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(screen, variables)["q"].square().sum().backward()
    opt.step()
    ref, out = both()
    assert not torch.equal(out["q"], ref["q"])
    acting.updated()
    ref, out = both()
    torch.testing.assert_close(out["q"], ref["q"], rtol=0, atol=0)


@pytest.mark.parametrize("overlap", [False, True])
def test_training_batches_refresh_the_acting_copy(overlap):
    cfg = _config("train.precision=bf16", "rl.learning_starts=10",
                  f"rl.overlap={str(overlap).lower()}")
    model = build_model(cfg)
    actors = Actors(cfg, model, copy.deepcopy(model), screen_shape(cfg))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    source = actors.batches(0, 0)
    try:
        for _ in range(3):
            batch = next(source)
            assert batch["screen"].shape[1:] == (cfg.rl.seq_len + 1, 3, 24, 42)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                model(batch["screen"], batch["variables"])["q"].float().square().mean().backward()
            opt.step()
            opt.zero_grad()
        next(source)  # acts with the weights of the third update
        w = model.action.lstm.weight_ih_l0.detach().bfloat16()
        assert torch.equal(actors.acting.copy.action.lstm.weight_ih_l0, w)
        assert actors.env_steps >= 10 and actors.overlap == overlap
        assert actors.replay.count.tolist() == [actors.env_steps // 2] * 2
    finally:
        source.close()
        actors.close()
