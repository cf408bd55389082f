"""Explanations of clean and adversarial predictions (Stock & Cissé sec. 4.2):
feature-based (Grad-CAM; integrated gradients through captum) and example-based (the training
-free analogue the paper uses: the nearest prototypes of the predicted class in feature space).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from dldiy_core import UserError

from .models import Classifier

log = logging.getLogger(__name__)


def grad_cam(clf: Classifier, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) for classes ``target: [B]`` of ``x: [B, 3, H, W]``:
    ``relu(sum_c mean(dy/dA_c) A_c)`` on the last convolutional block, upsampled to ``[B, H, W]``
    and scaled to ``[0, 1]`` per image."""
    layer = clf.cam_layer()
    if layer is None:
        raise UserError(f"{clf.name}: no convolution to compute Grad-CAM on")
    acts: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: acts.append(out))
    try:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            out = clf(xg)
            score = out.gather(1, target.view(-1, 1)).sum()
            (g,) = torch.autograd.grad(score, acts[-1])
    finally:
        handle.remove()
    a = acts[-1].detach()
    cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    mx = cam.flatten(1).max(1).values.clamp_min(1e-12).view(-1, 1, 1)
    return cam / mx


def integrated_gradients(clf: Classifier, x: torch.Tensor, target: torch.Tensor,
                         steps: int = 16) -> torch.Tensor:
    """Integrated gradients (Sundararajan et al. 2017, via captum) from a black baseline,
    summed over colour channels as ``|attr|``: ``[B, H, W]`` scaled to ``[0, 1]``."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(clf)
    with torch.enable_grad():
        attr = ig.attribute(x, target=target, n_steps=steps, internal_batch_size=8)
    a = attr.abs().sum(1)
    return a / a.flatten(1).max(1).values.clamp_min(1e-12).view(-1, 1, 1)


def nearest_prototypes(features: torch.Tensor, predicted: Sequence[int],
                       prototypes: Mapping[int, torch.Tensor], k: int = 3) -> list[list[int]]:
    """Example-based explanation: for each image ``features[i]``, the positions (in
    ``prototypes[predicted[i]]``: ``[m, D]``) of the ``k`` nearest prototypes of the class the
    model predicted (empty when that class has no prototypes)."""
    out = []
    for f, c in zip(features, predicted, strict=True):
        protos = prototypes.get(int(c))
        if protos is None or not len(protos):
            out.append([])
            continue
        d = (protos - f[None]).norm(dim=1)
        out.append(d.argsort()[:k].tolist())
    return out


def overlay(image: torch.Tensor, heat: torch.Tensor, alpha: float = 0.5):
    """``image: [3, H, W]`` in [0, 1] and ``heat: [H, W]`` in [0, 1] -> RGB uint8 array."""
    import matplotlib

    cmap = matplotlib.colormaps["jet"]
    h = torch.from_numpy(cmap(heat.clamp(0, 1).numpy())[..., :3]).float()
    mix = (1 - alpha) * image.permute(1, 2, 0) + alpha * h
    return (mix.clamp(0, 1) * 255).byte().numpy()
