"""Sequence replay, the warm-up mask, network shapes, the loss on a fixed batch."""

import copy

import numpy as np
import torch

from dldiy_core import resolve
from dldiy_doom_agent.config import PRESETS, DoomConfig
from dldiy_doom_agent.loss import ArnoldLoss, n_step_targets
from dldiy_doom_agent.models import DRQN, Arnold, lstm_steps
from dldiy_doom_agent.replay import SequenceReplay


def filled_replay(actors=2, per=10, steps=25, done_every=7):
    """Each actor writes its step number into the screen and variables."""
    rb = SequenceReplay(actors * per, actors, (1, 2, 2), 2, 3)
    for t in range(steps):
        rb.add(screen=np.full((actors, 1, 2, 2), t, np.uint8),
               variables=np.stack([np.full(2, t + 100 * a, np.float32) for a in range(actors)]),
               features=np.zeros((actors, 3), np.uint8), action=np.full(actors, t % 3),
               reward=np.full(actors, t, np.float32), nav_reward=np.zeros(actors, np.float32),
               done=np.full(actors, t % done_every == done_every - 1))
    return rb


def test_sequences_are_consecutive_steps_of_one_actor():
    rb = filled_replay()
    assert len(rb) == 20  # the ring keeps the last 10 steps per actor
    s = rb.sample(64, 4, np.random.default_rng(0))
    assert s["screen"].shape == (64, 5, 1, 2, 2) and s["action"].shape == (64, 4)
    t = s["screen"][:, :, 0, 0, 0].astype(int)
    assert (np.diff(t, axis=1) == 1).all()  # consecutive, across the ring's wrap
    assert t.min() >= 15 and t.max() <= 24  # only what the ring still holds
    actor = (s["variables"][:, :, 0] - t) // 100
    assert (actor == actor[:, :1]).all()  # one actor per sequence
    # a reset marks the step after an episode's last one
    assert (s["resets"][:, 1:] == (t[:, :-1] % 7 == 6)).all() and not s["resets"][:, 0].any()
    assert (s["reward"] == t[:, :-1]).all()


def test_replay_positions_round_trip():
    rb = filled_replay()
    state = rb.state_dict(arrays=True)
    other = filled_replay(steps=3)
    other.load_state_dict(state)
    a = rb.sample(8, 3, np.random.default_rng(1))
    b = other.sample(8, 3, np.random.default_rng(1))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    empty = filled_replay(steps=3)
    empty.load_state_dict(rb.state_dict(arrays=False))
    assert len(empty) == 0 and empty.added == rb.added


def test_drqn_shapes_and_resets():
    torch.manual_seed(0)
    net = DRQN(3, 60, 108, 5, hidden=32)
    screen = torch.randint(0, 255, (2, 6, 3, 60, 108), dtype=torch.uint8)
    variables = torch.rand(2, 6, 2)
    q, feats, (h, c) = net(screen, variables)
    assert q.shape == (2, 6, 5) and feats.shape == (2, 6, 3) and h.shape == (1, 2, 32)
    # a reset at step 3 equals starting the LSTM from zero there
    resets = torch.zeros(2, 6, dtype=torch.bool)
    resets[:, 3] = True
    q_reset, _, _ = net(screen, variables, resets)
    q_fresh, _, _ = net(screen[:, 3:], variables[:, 3:])
    torch.testing.assert_close(q_reset[:, 3:], q_fresh)
    torch.testing.assert_close(q_reset[:, :3], q[:, :3])
    assert DRQN(1, 48, 84, 3, hidden=16, game_features=False)(
        screen[:, :2, :1, :48, :84], variables[:, :2])[1] is None


def test_lstm_steps_equal_torch_lstm_with_gradients():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(20, 16, batch_first=True)
    x = torch.randn(3, 5, 20, requires_grad=True)
    state = (torch.randn(1, 3, 16), torch.randn(1, 3, 16))
    ref, (h, c) = lstm(x, state)
    out, (h2, c2) = lstm_steps(lstm, x, None, state)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close((h2, c2), (h, c))
    g_ref = torch.autograd.grad(ref.square().sum(), [x, lstm.weight_hh_l0])
    g = torch.autograd.grad(lstm_steps(lstm, x, None, state)[0].square().sum(),
                            [x, lstm.weight_hh_l0])
    torch.testing.assert_close(g, g_ref)


def test_n_step_targets_by_hand():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    v = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    d = torch.zeros(1, 4)
    g = 0.5
    torch.testing.assert_close(n_step_targets(r, d, v, g, 1, 0), r + g * v)
    # n = 2 from step 1: r1 + g r2 + g^2 v(s3); the last step has one reward left
    torch.testing.assert_close(n_step_targets(r, d, v, g, 2, 1),
                               torch.tensor([[2 + g * 3 + g * g * 30, 3 + g * 4 + g * g * 40,
                                              4 + g * 40]]))
    d[0, 1] = 1.0  # the episode ends at step 1: nothing after it counts
    torch.testing.assert_close(n_step_targets(r, d, v, g, 3, 0)[0, :2],
                               torch.tensor([1 + g * 2, 2.0]))


def _batch(b=6, t=5, n_actions=3):
    g = torch.Generator().manual_seed(0)
    return {"screen": torch.randint(0, 255, (b, t + 1, 3, 48, 84), dtype=torch.uint8,
                                    generator=g),
            "variables": torch.rand(b, t + 1, 2, generator=g),
            "features": torch.randint(0, 2, (b, t + 1, 3), generator=g).to(torch.uint8),
            "resets": torch.zeros(b, t + 1, dtype=torch.bool),
            "action": torch.randint(0, n_actions, (b, t), generator=g),
            "reward": torch.randn(b, t, generator=g),
            "nav_reward": torch.randn(b, t, generator=g),
            "done": torch.zeros(b, t, dtype=torch.bool)}


def test_loss_decreases_on_a_fixed_batch():
    cfg = resolve(DoomConfig, PRESETS, "tiny", sets=["env.scenario=deathmatch", "rl.seq_len=5",
                                                     "rl.burn_in=2"])
    torch.manual_seed(0)
    model = Arnold(3, 48, 84, 12, [0, 1, 2, 3], hidden=32)
    target = copy.deepcopy(model).requires_grad_(False)
    loss_fn = ArnoldLoss(target, cfg, [0, 1, 2, 3], 12)
    batch = _batch(n_actions=12)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss, metrics = loss_fn(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert {"td", "feature_bce", "nav_td"} <= set(metrics)
    assert losses[-1] < 0.6 * losses[0]


def test_burn_in_steps_carry_no_loss():
    """Changing the rewards of the warm-up steps changes nothing; later ones do."""
    cfg = resolve(DoomConfig, PRESETS, "tiny", sets=["rl.seq_len=5", "rl.burn_in=2"])
    torch.manual_seed(0)
    model = Arnold(3, 48, 84, 3, None, hidden=16, game_features=False)
    loss_fn = ArnoldLoss(copy.deepcopy(model), cfg, None, 3)
    batch = _batch()
    base = loss_fn(model, batch)[0]
    warm = dict(batch, reward=batch["reward"].clone())
    warm["reward"][:, :2] += 100
    assert loss_fn(model, warm)[0] == base
    late = dict(batch, reward=batch["reward"].clone())
    late["reward"][:, 2] += 100
    assert loss_fn(model, late)[0] > base
