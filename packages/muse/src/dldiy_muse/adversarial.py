"""The adversarial initialisation (Conneau et al., section 3.1; ``--init adversarial``).

A linear map ``W [d, d]`` (identity at the start) and a discriminator play a two-player game:
the discriminator learns to tell mapped source vectors ``W x`` from target vectors ``y``
(eq. 3), the map learns to fool it (eq. 4: the same loss with the labels flipped). Both are
trained by SGD on batches drawn from each language's most frequent words, ``dis_steps``
discriminator steps per map step. After each map step ``W`` is pulled towards the orthogonal
manifold (section 3.3): ``W <- (1 + b) W - b (W W^T) W``. After each epoch the unsupervised
criterion (mean CSLS cosine of the top source words' translations, section 3.5) is computed and
the best ``W`` kept; the map's learning rate decays each epoch and is halved when the criterion
falls below its best.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from dldiy_core import progress

from .align import Alignment, check_same_dim
from .config import AdversarialConfig
from .dictionary import mean_csls_cosine
from .models import Discriminator

log = logging.getLogger(__name__)


def orthogonalize(W: torch.Tensor, beta: float) -> None:
    """In place: ``W <- (1 + b) W - b (W W^T) W`` (section 3.3), one step of an iteration
    whose fixed points are the orthogonal matrices; keeps ``W`` close to orthogonal."""
    with torch.no_grad():
        W.copy_((1 + beta) * W - beta * (W @ W.T) @ W)


def _criterion(src: np.ndarray, tgt: np.ndarray, W: np.ndarray, words: int) -> float:
    return mean_csls_cosine(src @ W.T, tgt, words)


def adversarial(src: np.ndarray, tgt: np.ndarray, cfg: AdversarialConfig | None = None,
                seed: int = 0, show_progress: bool = True) -> Alignment:
    """Adversarial training of ``W`` on ``src [n, d]`` and ``tgt [m, d]`` (normalised rows,
    most frequent first); returns the best-criterion ``W`` and one history record per
    ``log_every`` steps (``dis_loss``, ``dis_acc``) and per epoch (``criterion``, ``lr``).

    Deterministic given ``seed`` (and the number of torch threads): batches come from a
    seeded generator, and dropout and the discriminator's initialisation from torch's global
    generator, seeded here inside ``fork_rng`` so the caller's state is left untouched.
    """
    cfg = cfg or AdversarialConfig()
    check_same_dim(src, tgt)
    d = src.shape[1]
    x = torch.from_numpy(np.ascontiguousarray(src[:cfg.dis_most_frequent], np.float32))
    y = torch.from_numpy(np.ascontiguousarray(tgt[:cfg.dis_most_frequent], np.float32))
    bs = cfg.batch_size
    labels = torch.cat([torch.full((bs,), 1 - cfg.smooth), torch.full((bs,), cfg.smooth)])
    bce = nn.BCEWithLogitsLoss()
    history: list[dict] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        dis = Discriminator(d, cfg.hidden, cfg.layers, cfg.input_dropout)
        W = nn.Parameter(torch.eye(d))
        dis_opt = torch.optim.SGD(dis.parameters(), lr=cfg.dis_lr)
        map_opt = torch.optim.SGD([W], lr=cfg.lr)

        def batch(mapped_grad: bool) -> torch.Tensor:
            """``[2B, d]``: B mapped source rows, then B target rows."""
            i = torch.randint(len(x), (bs,), generator=gen)
            j = torch.randint(len(y), (bs,), generator=gen)
            with torch.set_grad_enabled(mapped_grad):
                mapped = x[i] @ W.T
            return torch.cat([mapped, y[j]])

        best_W = W.detach().numpy().copy()
        best = _criterion(src, tgt, best_W, cfg.criterion_words)
        history.append({"step": "adversarial 0", "epoch": 0, "iteration": 0,
                        "criterion": best, "lr": cfg.lr})
        step = 0
        for epoch in range(1, cfg.epochs + 1):
            losses, accs = [], []
            bar = progress(range(cfg.epoch_size), desc=f"adversarial {epoch}/{cfg.epochs}",
                           enabled=show_progress)
            for _ in bar:
                dis.train()  # input dropout on for the discriminator's own steps
                for _ in range(cfg.dis_steps):
                    logits = dis(batch(False))
                    loss = bce(logits, labels)
                    dis_opt.zero_grad(set_to_none=True)
                    loss.backward()
                    dis_opt.step()
                    losses.append(loss.item())
                    accs.append(((logits > 0) == (labels > 0.5)).float().mean().item())
                dis.eval()
                loss = bce(dis(batch(True)), 1 - labels)  # eq. 4: fool the discriminator
                map_opt.zero_grad(set_to_none=True)
                loss.backward()
                map_opt.step()
                orthogonalize(W, cfg.beta)
                step += 1
                if step % cfg.log_every == 0:
                    history.append({"step": "adversarial", "epoch": epoch, "iteration": step,
                                    "dis_loss": float(np.mean(losses[-cfg.log_every:])),
                                    "dis_acc": float(np.mean(accs[-cfg.log_every:])),
                                    "map_loss": float(loss.item())})
            current = W.detach().numpy().copy()
            crit = _criterion(src, tgt, current, cfg.criterion_words)
            lr = map_opt.param_groups[0]["lr"]
            history.append({"step": f"adversarial {epoch}", "epoch": epoch, "iteration": step,
                            "criterion": crit, "lr": lr,
                            "dis_loss": float(np.mean(losses)), "dis_acc": float(np.mean(accs))})
            log.info("adversarial epoch %d: criterion %.4f (best %.4f), discriminator loss "
                     "%.4f accuracy %.3f, lr %.4g", epoch, crit, max(best, crit),
                     np.mean(losses), np.mean(accs), lr)
            new_lr = lr * cfg.decay
            if crit > best:
                best, best_W = crit, current
            else:
                new_lr *= cfg.shrink
            for g in map_opt.param_groups:
                g["lr"] = new_lr
            if new_lr < cfg.min_lr:
                log.info("adversarial: learning rate below %g, stopping", cfg.min_lr)
                break
    return Alignment(best_W.astype(np.float32), history)
