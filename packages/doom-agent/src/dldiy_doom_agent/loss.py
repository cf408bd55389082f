"""The joint objective (paper, equations 1-3 and "Game feature augmentation").

Action network, on steps ``burn_in..T-1`` of each sequence (the first ones only warm the LSTM):

    y_t = r_t + gamma * (1 - done_t) * Q_target(s_{t+1}, a*)   (n-step: see n_step_targets),
    a* = argmax_a Q(s_{t+1}, a)  (Double DQN)  or  argmax_a Q_target(s_{t+1}, a)
    L_Q = Huber(Q(s_t, a_t) - y_t)          (or the squared error, as in the paper)

plus ``feature_weight`` x binary cross-entropy of the game-feature logits against the labels
buffer, and for the navigation DQN the same Q-learning on its own reward, on the transitions
where no enemy was visible and the action was a navigation action.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import DoomConfig


def n_step_targets(reward: torch.Tensor, done: torch.Tensor, value: torch.Tensor, gamma: float,
                   n: int, start: int) -> torch.Tensor:
    """Q-learning targets of steps ``start..T-1`` from ``reward, done [B, T]`` and
    ``value [B, T]``, the bootstrap value of the observation after step t:

        y_t = sum_{k<m} gamma^k r_{t+k} + gamma^m Q'(s_{t+m}),  m = min(n, T - t),

    cut at the end of an episode (no reward or value after a ``done``). ``n = 1`` is the
    paper's one-step target (eq. 3); larger n carries rewards back faster. -> ``[B, T - start]``.
    """
    t_len = reward.shape[1]
    out = []
    for t in range(start, t_len):
        g = torch.zeros_like(value[:, 0])
        alive, disc = torch.ones_like(g), 1.0
        m = min(n, t_len - t)
        for k in range(m):
            g = g + alive * disc * reward[:, t + k]
            alive = alive * (1 - done[:, t + k])
            disc *= gamma
        out.append(g + alive * disc * value[:, t + m - 1])
    return torch.stack(out, 1)


def _td(q: torch.Tensor, y: torch.Tensor, huber: bool) -> torch.Tensor:
    return F.smooth_l1_loss(q, y, reduction="none") if huber else 0.5 * (q - y) ** 2


class ArnoldLoss:
    """``loss_fn(model, batch) -> (loss, metrics)`` for the core Trainer.

    ``batch``: ``screen [B, T+1, C, H, W]`` uint8, ``variables [B, T+1, V]``,
    ``features [B, T+1, F]``, ``resets [B, T+1]``, and ``action, reward, nav_reward, done
    [B, T]``. ``target`` is the target network (same class as the model, no gradients).
    """

    def __init__(self, target: nn.Module, cfg: DoomConfig, nav_actions: list[int] | None,
                 n_actions: int):
        self.target, self.cfg = target, cfg
        table = torch.full((n_actions,), -1, dtype=torch.long)
        if nav_actions:
            table[torch.tensor(nav_actions)] = torch.arange(len(nav_actions))
        self.nav_index = table

    def __call__(self, model: nn.Module, batch: Mapping[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
        rl = self.cfg.rl
        screen, variables, resets = batch["screen"], batch["variables"], batch["resets"]
        out = model(screen, variables, resets)  # under the Trainer's autocast (train.precision)
        with torch.no_grad():
            tgt = self.target(screen, variables, resets)
        q_all = out["q"].float()
        b = rl.burn_in
        action, reward, done = batch["action"], batch["reward"], batch["done"].float()
        q = q_all[:, :-1].gather(-1, action.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            q_next = tgt["q"].float()[:, 1:]
            pick = q_all[:, 1:].argmax(-1, keepdim=True) if rl.double else \
                q_next.argmax(-1, keepdim=True)
            y = n_step_targets(reward, done, q_next.gather(-1, pick).squeeze(-1), rl.gamma,
                               rl.n_step, b)
        td = _td(q[:, b:], y, rl.huber).mean()
        loss = td
        metrics: dict[str, Any] = {"td": td.detach(), "q": q[:, b:].detach().mean()}
        if out["features"] is not None:
            logits = out["features"].float()[:, b:]
            labels = batch["features"][:, b:].float()
            bce = F.binary_cross_entropy_with_logits(logits, labels)
            loss = loss + rl.feature_weight * bce
            metrics["feature_bce"] = bce.detach()
            metrics["feature_acc"] = ((logits > 0).float() == labels).float().mean()
        if out["nav_q"] is not None:
            nav_td = self._navigation(out["nav_q"].float(), tgt["nav_q"].float(), batch)
            loss = loss + nav_td
            metrics["nav_td"] = nav_td.detach()
        return loss, metrics

    def _navigation(self, nav_q: torch.Tensor, nav_target: torch.Tensor,
                    batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        rl = self.cfg.rl
        idx = self.nav_index.to(nav_q.device)[batch["action"]]
        mask = (idx >= 0) & (batch["features"][:, :-1, 0] == 0)
        q = nav_q[:, :-1].gather(-1, idx.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            nxt = nav_target[:, 1:]
            pick = nav_q[:, 1:].argmax(-1, keepdim=True) if rl.double else \
                nxt.argmax(-1, keepdim=True)
            y = batch["nav_reward"] + rl.gamma * (1 - batch["done"].float()) * \
                nxt.gather(-1, pick).squeeze(-1)
        per = _td(q, y, rl.huber) * mask
        return per.sum() / mask.sum().clamp(min=1)
