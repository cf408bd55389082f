"""The networks (paper, "Model" and Figure 3).

* :class:`DRQN`, the action network: conv 32x8x8/4 -> conv 64x4x4/2 -> LSTM -> Q-values, with
  the game-feature head (a hidden layer of 512 on the convolutional features, one sigmoid per
  feature) trained jointly.
* :class:`NavigationDQN`: a feed-forward DQN with the same convolutions, for the navigation
  phase (no enemy in sight); the paper trains it on its own rewards.
* :class:`Arnold` holds both; one forward call serves the learner (DDP needs exactly one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_trunk(in_channels: int) -> nn.Sequential:
    """The paper's convolutions: ``[N, C, H, W]`` -> ``[N, 64 * h * w]``."""
    return nn.Sequential(nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(),
                         nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(), nn.Flatten())


def _flat_size(trunk: nn.Module, c: int, h: int, w: int) -> int:
    with torch.no_grad():
        return int(trunk(torch.zeros(1, c, h, w)).shape[1])


def _frames(screen: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, T, C, H, W]`` -> float ``[B * T, C, H, W]`` in [0, 1]."""
    b, t = screen.shape[:2]
    return screen.reshape(b * t, *screen.shape[2:]).float().div_(255.0)


def lstm_steps(lstm: nn.LSTM, x: torch.Tensor, resets: torch.Tensor | None,
               state: tuple[torch.Tensor, torch.Tensor] | None
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """One-layer ``lstm`` over ``x [B, T, D]`` -> ``[B, T, H]`` and ``(h, c)`` ``[1, B, H]``,
    zeroing the state before step t where ``resets[:, t]``.

    The input projection of all steps is one matmul; each step adds ``h W_hh`` and applies
    the gates (PyTorch's i, f, g, o order), the cell kept in float32. Same weights and result
    as ``lstm(x, state)``. On CPU, calling ``lstm`` step by step (needed for the resets) runs
    oneDNN's RNN backward once per step: 53 % of a quick-preset update in a profile here.
    """
    b, t, _ = x.shape
    gx = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)  # [B, T, 4H]
    if state is None:
        h = x.new_zeros(b, lstm.hidden_size, dtype=torch.float32)
        c = torch.zeros_like(h)
    else:
        h, c = state[0][0].float(), state[1][0].float()
    keep = None if resets is None else (~resets).to(torch.float32).unsqueeze(-1)
    outs = []
    for i in range(t):
        if keep is not None:
            h, c = h * keep[:, i], c * keep[:, i]
        g = (gx[:, i] + F.linear(h.to(gx.dtype), lstm.weight_hh_l0)).float()
        gi, gf, gg, go = g.chunk(4, -1)
        c = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
        h = torch.sigmoid(go) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1), (h[None], c[None])


class DRQN(nn.Module):
    """Action network. ``screen: [B, T, C, H, W]`` uint8, ``variables: [B, T, V]``.

    Returns Q-values ``[B, T, A]``, game-feature logits ``[B, T, F]`` (None without the head)
    and the LSTM state ``(h, c)``, each ``[1, B, hidden]``. ``resets: [B, T]`` zeroes the state
    before step t (a new episode starts there), so a sequence may span episodes.
    """

    def __init__(self, in_channels: int, height: int, width: int, n_actions: int, *,
                 n_features: int = 3, hidden: int = 512, n_variables: int = 2,
                 game_features: bool = True):
        super().__init__()
        self.conv = conv_trunk(in_channels)
        flat = _flat_size(self.conv, in_channels, height, width)
        self.n_variables = n_variables
        self.features = (nn.Sequential(nn.Linear(flat, 512), nn.ReLU(),
                                       nn.Linear(512, n_features)) if game_features else None)
        self.lstm = nn.LSTM(flat + n_variables, hidden, batch_first=True)
        self.q = nn.Linear(hidden, n_actions)

    def forward(self, screen: torch.Tensor, variables: torch.Tensor,
                resets: torch.Tensor | None = None,
                state: tuple[torch.Tensor, torch.Tensor] | None = None,
                features: bool = True):
        b, t = screen.shape[:2]
        z = self.conv(_frames(screen))
        feats = (self.features(z).view(b, t, -1) if self.features is not None and features
                 else None)
        x = torch.cat([z.view(b, t, -1), variables[..., :self.n_variables].to(z.dtype)], -1)
        out, state = lstm_steps(self.lstm, x, resets, state)
        with torch.autocast(out.device.type, enabled=False):  # Q-values in float32 (bf16
            q = self.q(out)  # keeps ~3 digits, coarser than early gaps between actions)
        return q, feats, state

    def step(self, screen: torch.Tensor, variables: torch.Tensor,
             state: tuple[torch.Tensor, torch.Tensor] | None
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One acting step without the feature head: ``screen [N, C, H, W]`` uint8,
        ``variables [N, V]`` -> Q-values ``[N, A]`` (float32) and the new ``(h, c)``.

        The same arithmetic as ``forward`` on one step (under autocast when the weights are
        bf16 or fp16: the convolutions and LSTM matrices in the weights' dtype, the cell and
        Q head in float32) with fewer calls: acting runs it once per environment step.
        """
        conv0, conv2, lstm = self.conv[0], self.conv[2], self.lstm
        dt = conv0.weight.dtype
        x = screen.float().div_(255.0).to(dt)
        z = F.relu(F.conv2d(x, conv0.weight, conv0.bias.to(dt), conv0.stride))
        z = F.relu(F.conv2d(z, conv2.weight, conv2.bias.to(dt), conv2.stride)).flatten(1)
        x = torch.cat([z, variables[:, :self.n_variables].to(dt)], -1)
        g = F.linear(x, lstm.weight_ih_l0, (lstm.bias_ih_l0 + lstm.bias_hh_l0).to(dt))
        if state is None:
            h = torch.zeros(x.shape[0], lstm.hidden_size, device=x.device)
            c = torch.zeros_like(h)
        else:
            h, c = state[0][0].float(), state[1][0].float()
        g = (g + F.linear(h.to(dt), lstm.weight_hh_l0)).float()
        gi, gf, gg, go = g.chunk(4, -1)
        c = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
        h = torch.sigmoid(go) * torch.tanh(c)
        q = F.linear(h, self.q.weight.float(), self.q.bias.float())
        return q, (h[None], c[None])


class NavigationDQN(nn.Module):
    """Navigation network: ``[B, T, C, H, W]`` frames -> Q-values ``[B, T, A_nav]``, each
    frame on its own (feed-forward, no memory)."""

    def __init__(self, in_channels: int, height: int, width: int, n_actions: int, *,
                 hidden: int = 512, n_variables: int = 2):
        super().__init__()
        self.conv = conv_trunk(in_channels)
        flat = _flat_size(self.conv, in_channels, height, width)
        self.n_variables = n_variables
        self.head = nn.Sequential(nn.Linear(flat + n_variables, hidden), nn.ReLU(),
                                  nn.Linear(hidden, n_actions))

    def forward(self, screen: torch.Tensor, variables: torch.Tensor) -> torch.Tensor:
        b, t = screen.shape[:2]
        z = self.conv(_frames(screen))
        v = variables[..., :self.n_variables].reshape(b * t, -1).to(z.dtype)
        hidden = self.head[:-1](torch.cat([z, v], -1))
        with torch.autocast(z.device.type, enabled=False):  # Q-values in float32, as DRQN's
            return self.head[-1](hidden.float()).view(b, t, -1)


FLOAT32_HEADS = ("action.q.", "navigation.head.2.")
"""Parameters (name prefixes in :class:`Arnold`) computed in float32 even under autocast."""


class Arnold(nn.Module):
    """Action network plus the optional navigation network."""

    def __init__(self, in_channels: int, height: int, width: int, n_actions: int,
                 nav_actions: list[int] | None, *, hidden: int = 512, n_features: int = 3,
                 game_features: bool = True, variables: bool = True):
        super().__init__()
        nv = 2 if variables else 0
        self.action = DRQN(in_channels, height, width, n_actions, n_features=n_features,
                           hidden=hidden, n_variables=nv, game_features=game_features)
        self.navigation = (NavigationDQN(in_channels, height, width, len(nav_actions),
                                         n_variables=nv) if nav_actions else None)
        self.register_buffer("nav_actions", torch.tensor(nav_actions or [], dtype=torch.long),
                             persistent=False)

    def forward(self, screen: torch.Tensor, variables: torch.Tensor,
                resets: torch.Tensor | None = None, state=None, features: bool = True) -> dict:
        """``{"q": [B, T, A], "features": [B, T, F] | None, "nav_q": [B, T, A_nav] | None,
        "state": (h, c)}``; ``features=False`` skips the game-feature head (acting needs it
        only to switch to the navigation network)."""
        q, feats, state = self.action(screen, variables, resets, state, features)
        nav = self.navigation(screen, variables) if self.navigation is not None else None
        return {"q": q, "features": feats, "nav_q": nav, "state": state}
