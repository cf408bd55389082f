"""Adversarial examples (Stock & Cissé sec. 4): FGSM, PGD (L-inf and L2) and DeepFool, and
robustness curves (accuracy vs epsilon).

Images ``x: [B, 3, H, W]`` are in ``[0, 1]``; epsilons are in the same units (``4/255`` is four
grey levels). Untargeted attacks raise the cross-entropy of the label ``y: [B]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from dldiy_core import UserError

log = logging.getLogger(__name__)

Model = Callable[[torch.Tensor], torch.Tensor]


def check_eps(eps: float, norm: str = "linf") -> float:
    """A finite epsilon >= 0 (L-inf at most 1: the whole pixel range)."""
    import math

    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0 or \
            (norm == "linf" and eps > 1):
        raise UserError(f"epsilon {eps!r}: must be a number in [0, 1] for L-inf "
                        f"(pixel range 0..1; 4/255 = 0.0157), >= 0 for L2")
    return float(eps)


def _grad(model: Model, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
    return g, loss.detach()


def fgsm(model: Model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign (Goodfellow et al. 2015): ``x + eps * sign(grad_x loss)``."""
    check_eps(eps)
    g, _ = _grad(model, x, y)
    return (x + eps * g.sign()).clamp(0, 1).detach()


def _l2_normalise(v: torch.Tensor) -> torch.Tensor:
    return v / v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return delta * (eps / n.clamp_min(1e-12)).clamp(max=1.0)


def pgd(model: Model, x: torch.Tensor, y: torch.Tensor, eps: float, *, norm: str = "linf",
        steps: int = 10, step_size: float | None = None, random_start: bool = True,
        seed: int = 0) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) in the ``norm`` ball of radius ``eps``:
    ``steps`` signed (L-inf) or normalised (L2) gradient steps of ``step_size`` (default
    ``2.5 * eps / steps``), each projected back to the ball and to ``[0, 1]``."""
    if norm not in ("linf", "l2"):
        raise UserError(f"attack norm {norm!r}: linf or l2")
    check_eps(eps, norm)
    if steps < 1:
        raise UserError(f"attack steps {steps}: at least 1")
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    gen = torch.Generator().manual_seed(seed)
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=gen) * 2 - 1
        if norm == "l2":
            noise = _l2_normalise(noise) * eps * torch.rand(len(x), 1, 1, 1, generator=gen)
        delta = _project(noise.to(x) * (eps if norm == "linf" else 1.0), eps, norm)
    else:
        delta = torch.zeros_like(x)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        g, _ = _grad(model, x + delta, y)
        step = g.sign() if norm == "linf" else _l2_normalise(g)
        delta = _project(delta + alpha * step, eps, norm)
        delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def deepfool(model: Model, x: torch.Tensor, *, num_classes: int = 10, overshoot: float = 0.02,
             max_iter: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepFool (Moosavi-Dezfooli et al. 2016): the smallest L2 step that crosses the nearest
    linearised decision boundary among the ``num_classes`` top classes, repeated until the label
    flips. Returns the adversarial images and their L2 perturbation norms ``[B]``."""
    if num_classes < 2 or max_iter < 1:
        raise UserError("deepfool: num_classes >= 2 and max_iter >= 1")
    x = x.detach()
    with torch.no_grad():
        logits0 = model(x)
    top = logits0.topk(num_classes, dim=1).indices
    orig = top[:, 0]
    r_tot = torch.zeros_like(x)
    active = torch.ones(len(x), dtype=torch.bool)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = active.nonzero().flatten()
        xa = (x[idx] + (1 + overshoot) * r_tot[idx]).clamp(0, 1).requires_grad_(True)
        with torch.enable_grad():
            out = model(xa)
            classes = top[idx]
            chosen = out.gather(1, classes)
            grads = []
            for k in range(num_classes):
                (gk,) = torch.autograd.grad(chosen[:, k].sum(), xa,
                                            retain_graph=k < num_classes - 1)
                grads.append(gk)
        g = torch.stack(grads, 1)  # [b, K, 3, H, W]
        still = out.argmax(1) == orig[idx]
        f = (chosen - chosen[:, :1]).detach()[:, 1:]  # [b, K-1]
        w = (g[:, 1:] - g[:, :1])  # [b, K-1, ...]
        wn = w.flatten(2).norm(dim=2).clamp_min(1e-12)
        ratio = f.abs() / wn
        best = ratio.argmin(1)
        rb = torch.arange(len(idx))
        step = (ratio[rb, best] + 1e-4).view(-1, 1, 1, 1) * w[rb, best] / wn[rb, best].view(
            -1, 1, 1, 1)
        r_tot[idx[still]] = r_tot[idx[still]] + step[still]
        active[idx[~still]] = False
    x_adv = (x + (1 + overshoot) * r_tot).clamp(0, 1)
    return x_adv.detach(), (x_adv - x).flatten(1).norm(dim=1)


def accuracy(model: Model, x: torch.Tensor, accept: Sequence[Sequence[int]]) -> float:
    """Top-1 acceptable fraction of ``model(x)`` (``accept[i]``: the classes right for image i)."""
    with torch.no_grad():
        pred = model(x).argmax(1).tolist()
    return sum(p in set(a) for p, a in zip(pred, accept, strict=True)) / max(len(pred), 1)


def robustness_curve(model: Model, x: torch.Tensor, y: torch.Tensor,
                     accept: Sequence[Sequence[int]], epsilons: Sequence[float], *,
                     attack: str = "pgd", norm: str = "linf", steps: int = 10,
                     batch_size: int = 16) -> list[dict[str, float]]:
    """Accuracy of ``model`` under ``attack`` (fgsm or pgd) at each epsilon: the curve of the
    paper's robustness discussion. ``y``: the label the attack pushes away from (top-1 of the
    clean image is the usual choice when labels are coarse sets)."""
    out = []
    for eps in epsilons:
        check_eps(eps, norm)
        if eps == 0:  # no perturbation: the clean accuracy, without running the attack
            out.append({"eps": 0.0, "accuracy": accuracy(model, x, accept),
                        "kept_prediction": 1.0})
            continue
        advs = []
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            if attack == "fgsm":
                advs.append(fgsm(model, xb, yb, eps))
            elif attack == "pgd":
                advs.append(pgd(model, xb, yb, eps, norm=norm, steps=steps))
            else:
                raise UserError(f"attack {attack!r}: fgsm or pgd")
        adv = torch.cat(advs)
        with torch.no_grad():
            pred = model(adv).argmax(1)
        out.append({"eps": float(eps), "accuracy": accuracy(model, adv, accept),
                    "kept_prediction": float((pred == y).float().mean())})
        log.info("%s %s eps=%.4f: accuracy %.3f", attack, norm, eps, out[-1]["accuracy"])
    return out
