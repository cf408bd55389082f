"""The adversarial initialisation (Conneau et al., section 3.1; ``--init adversarial``).

A linear map ``W [d, d]`` (identity at the start) and a discriminator play a two-player game:
the discriminator learns to tell mapped source vectors ``W x`` from target vectors ``y``
(eq. 3), the map learns to fool it (eq. 4: the same loss with the labels flipped). Both are
trained by SGD on batches drawn from each language's most frequent words, ``dis_steps``
discriminator steps per map step. After each map step ``W`` is pulled towards the orthogonal
manifold (section 3.3): ``W <- (1 + b) W - b (W W^T) W``. After each epoch the unsupervised
criterion (mean CSLS cosine of the top source words' translations, section 3.5) is computed and
the best ``W`` kept; the map's learning rate decays each epoch and is halved when the criterion
falls below its best (MUSE's schedule: see :class:`AdversarialConfig`).

Speed: one iteration is ``dis_steps`` discriminator steps and one map step, sequential SGD
steps that cannot be merged without changing the method. What is saved is everything around
them: batch indices are drawn ``chunk`` iterations at a time, the ``dis_steps`` batches of an
iteration are mapped by one product (``W`` does not change between them), gradients are taken
only for what is updated (the map step never computes the discriminator's weight gradients),
updates are in-place ``foreach`` SGD, and losses and accuracies stay on the device until the
end of the epoch: no host synchronisation per step.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from dldiy_core import UserError, progress

from .align import Alignment, check_same_dim
from .config import AdversarialConfig
from .dictionary import mean_csls_cosine
from .models import Discriminator

log = logging.getLogger(__name__)


def orthogonalize(W: torch.Tensor, beta: float) -> None:
    """In place: ``W <- (1 + b) W - b (W W^T) W`` (section 3.3), one step of an iteration
    whose fixed points are the orthogonal matrices; keeps ``W`` close to orthogonal."""
    with torch.no_grad():
        W.copy_(torch.addmm(W, W @ W.T, W, beta=1 + beta, alpha=-beta))


def _criterion(src: np.ndarray, tgt: np.ndarray, W: np.ndarray, words: int) -> float:
    return mean_csls_cosine(src @ W.T, tgt, words)


def discriminator_words(limit: int, n_src: int, n_tgt: int) -> int:
    """The ``dis_most_frequent`` actually used: ``limit``, lowered with a warning to the
    smaller vocabulary (MUSE asserts ``limit <= min(n_src, n_tgt)``)."""
    words = min(limit, n_src, n_tgt)
    if words < limit:
        log.warning("adversarial.dis_most_frequent=%d exceeds the vocabularies (%d source, "
                    "%d target words): the discriminator draws from the %d most frequent of "
                    "each", limit, n_src, n_tgt, words)
    return words


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; one line when CUDA is asked for and absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda (adversarial.device): no CUDA device is available here")
    return torch.device(name)


class LearningRate:
    """MUSE's schedule for the map (``Trainer.update_lr`` after ``save_best``): after each
    epoch ``lr <- max(min_lr, lr * decay)``; if the epoch's criterion is below the best so far,
    ``lr <- lr * shrink`` from the second such epoch on. The best starts empty."""

    def __init__(self, cfg: AdversarialConfig):
        self.cfg, self.lr, self.best, self.armed = cfg, cfg.lr, -np.inf, False

    def epoch_end(self, criterion: float) -> bool:
        """Record the epoch's criterion; True when it is the best so far (keep the map)."""
        improved = criterion > self.best
        self.best = max(self.best, criterion)
        self.lr = max(self.cfg.min_lr, self.lr * self.cfg.decay)
        if criterion < self.best:
            if self.armed:
                self.lr *= self.cfg.shrink
            self.armed = True
        return improved

    @property
    def stop(self) -> bool:
        return self.lr < self.cfg.min_lr


def adversarial(src: np.ndarray, tgt: np.ndarray, cfg: AdversarialConfig | None = None,
                seed: int = 0, show_progress: bool = True,
                start: np.ndarray | None = None) -> Alignment:
    """Adversarial training of ``W`` on ``src [n, d]`` and ``tgt [m, d]`` (normalised rows,
    most frequent first); returns the best-criterion ``W`` and one history record per
    ``log_every`` steps (``dis_loss``, ``dis_acc``) and per epoch (``criterion``, ``lr``; the
    identity map's criterion is recorded as epoch 0 for reference, never selected).

    Deterministic given ``seed``, the device and the number of threads: batches come from a
    seeded generator, and dropout and the discriminator's initialisation from torch's global
    generator, seeded here inside ``fork_rng`` so the caller's state is left untouched.
    ``start [d, d]``: the map the game starts from (default the identity, as the paper; another
    start is a diagnosis, ``dldiy-muse ablate``).
    """
    cfg = cfg or AdversarialConfig()
    check_same_dim(src, tgt)
    device = resolve_device(cfg.device)
    d, bs, k = src.shape[1], cfg.batch_size, cfg.dis_steps
    words = discriminator_words(cfg.dis_most_frequent, len(src), len(tgt))
    x = torch.from_numpy(np.ascontiguousarray(src[:words], np.float32)).to(device)
    y = torch.from_numpy(np.ascontiguousarray(tgt[:words], np.float32)).to(device)
    labels = torch.cat([torch.full((bs,), 1 - cfg.smooth), torch.full((bs,), cfg.smooth)]
                       ).to(device)
    fooled = 1 - labels
    truth = labels > 0.5
    bce = nn.functional.binary_cross_entropy_with_logits
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=cfg.precision == "bf16")
    history: list[dict] = [{"step": "adversarial setup", "dis_words": words,
                            "dis_most_frequent": cfg.dis_most_frequent}]
    schedule = LearningRate(cfg)
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        gen = torch.Generator(device).manual_seed(seed)
        dis = Discriminator(d, cfg.hidden, cfg.layers, cfg.input_dropout).to(device)
        params = list(dis.parameters())
        W0 = np.eye(d, dtype=np.float32) if start is None else np.asarray(start, np.float32)
        W = torch.tensor(W0, device=device, requires_grad=True)
        history.append({"step": "adversarial 0", "epoch": 0, "iteration": 0,
                        "criterion": _criterion(src, tgt, W0, cfg.criterion_words),
                        "lr": cfg.lr})
        best_W = W0.copy()
        step = 0
        for epoch in range(1, cfg.epochs + 1):
            lr = schedule.lr
            n_logs = -(-cfg.epoch_size // cfg.log_every)
            stats = torch.zeros(n_logs, 3, device=device)  # loss sum, accuracy sum, map loss
            bar = progress(range(cfg.epoch_size), desc=f"adversarial {epoch}/{cfg.epochs}",
                           enabled=show_progress)
            t0 = time.perf_counter()
            for it in bar:
                c = it % cfg.chunk
                if c == 0:  # the batches of the next `chunk` iterations, drawn at once
                    n = min(cfg.chunk, cfg.epoch_size - it)
                    src_ids = torch.randint(words, (n, k + 1, bs), generator=gen,
                                            device=device)
                    tgt_ids = torch.randint(words, (n, k + 1, bs), generator=gen,
                                            device=device)
                with torch.no_grad():  # W is fixed during the discriminator's steps
                    mapped = (x[src_ids[c, :k].reshape(-1)] @ W.T).view(k, bs, d)
                    real = y[tgt_ids[c, :k]]
                row = stats[it // cfg.log_every]
                dis.train()  # input dropout on for the discriminator's own steps
                for s in range(k):
                    with autocast:
                        logits = dis(torch.cat([mapped[s], real[s]])).float()
                    loss = bce(logits, labels)
                    grads = torch.autograd.grad(loss, params)
                    with torch.no_grad():
                        torch._foreach_add_(params, grads, alpha=-cfg.dis_lr)
                        row[0] += loss.detach()
                        row[1] += ((logits > 0) == truth).float().mean()
                dis.eval()
                with autocast:  # eq. 4: fool the discriminator
                    logits = dis(torch.cat([x[src_ids[c, k]] @ W.T, y[tgt_ids[c, k]]])).float()
                loss = bce(logits, fooled)
                (grad,) = torch.autograd.grad(loss, [W])
                with torch.no_grad():
                    W -= lr * grad
                    orthogonalize(W, cfg.beta)
                    row[2] += loss.detach()
                step += 1
            per_log = stats.cpu().numpy()  # the epoch's only synchronisation
            game_seconds = time.perf_counter() - t0
            counts = np.minimum(cfg.log_every, cfg.epoch_size - cfg.log_every *
                                np.arange(n_logs))
            for i in range(n_logs):
                if counts[i] == cfg.log_every:
                    history.append({"step": "adversarial", "epoch": epoch,
                                    "iteration": step - cfg.epoch_size + (i + 1) * counts[i],
                                    "dis_loss": float(per_log[i, 0] / (k * counts[i])),
                                    "dis_acc": float(per_log[i, 1] / (k * counts[i])),
                                    "map_loss": float(per_log[i, 2] / counts[i])})
            current = W.detach().cpu().numpy().copy()
            crit = _criterion(src, tgt, current, cfg.criterion_words)
            dis_loss = float(per_log[:, 0].sum() / (k * cfg.epoch_size))
            dis_acc = float(per_log[:, 1].sum() / (k * cfg.epoch_size))
            history.append({"step": f"adversarial {epoch}", "epoch": epoch, "iteration": step,
                            "criterion": crit, "lr": lr, "dis_loss": dis_loss,
                            "dis_acc": dis_acc, "game_seconds": round(game_seconds, 3)})
            if schedule.epoch_end(crit):
                best_W = current
            log.info("adversarial epoch %d: criterion %.4f (best %.4f), discriminator loss "
                     "%.4f accuracy %.3f, lr %.4g", epoch, crit, schedule.best, dis_loss,
                     dis_acc, lr)
            if schedule.stop:
                log.info("adversarial: learning rate below %g, stopping", cfg.min_lr)
                break
    return Alignment(best_W.astype(np.float32), history)
