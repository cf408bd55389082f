"""Classifiers the tools point at: the embedded EfficientNet-Lite0, or your own model.

A :class:`Classifier` takes images in ``[0, 1]`` (``[B, 3, crop, crop]``, already resized and
cropped by its :class:`Preprocess`) and normalises inside, so attacks and attributions work in
pixel space and epsilons read as fractions of the 0..255 range.

Bring your own: any ``nn.Module`` (``Classifier(module, preprocess)``), a TorchScript file, or a
torchvision architecture name with a state_dict file (``.safetensors``, or ``.pt/.pth`` read
with ``torch.load(weights_only=True)``: nothing is ever unpickled).
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dldiy_core import UserError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class Preprocess:
    """Resize the short side to ``resize`` (bilinear, antialiased), centre-crop ``crop``,
    then ``(x - mean) / std`` with ``x`` in ``[0, 1]`` (done by the :class:`Classifier`)."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = LITE_MEAN
    std: tuple[float, float, float] = LITE_STD

    def __call__(self, image) -> torch.Tensor:
        """A PIL image -> ``[3, crop, crop]`` float in ``[0, 1]``."""
        from PIL import Image

        image = image.convert("RGB")
        w, h = image.size
        s = self.resize / min(w, h)
        nw, nh = max(self.crop, round(w * s)), max(self.crop, round(h * s))
        image = image.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - self.crop) // 2, (nh - self.crop) // 2
        image = image.crop((left, top, left + self.crop, top + self.crop))
        arr = np.asarray(image, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


class Classifier(nn.Module):
    """``x: [B, 3, H, W]`` in ``[0, 1]`` -> logits ``[B, C]``; :meth:`features` -> ``[B, D]``.

    Penultimate features come from the network's ``features`` method when it has one, else
    from the input of its last ``nn.Linear`` (a hook), else (TorchScript) from the logits.
    """

    def __init__(self, net: nn.Module, preprocess: Preprocess, name: str = "model"):
        super().__init__()
        self.net = net.eval()
        self.preprocess = preprocess
        self.name = name
        self.register_buffer("mean", torch.tensor(preprocess.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(preprocess.std).view(1, 3, 1, 1))
        self._last_linear = None
        # fused inference networks by (precision, depthwise precision): predict.fused_model
        self.fused_nets: dict[tuple[str, str], nn.Module] = {}
        if not hasattr(net, "features") and not isinstance(net, torch.jit.ScriptModule):
            linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
            self._last_linear = linears[-1] if linears else None

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, D]`` of images ``x: [B, 3, H, W]`` in ``[0, 1]``."""
        z = self.normalise(x)
        if hasattr(self.net, "features") and callable(self.net.features) \
                and not isinstance(self.net.features, nn.Module):
            return self.net.features(z)
        if self._last_linear is None:
            return self.net(z)
        grabbed: list[torch.Tensor] = []
        handle = self._last_linear.register_forward_pre_hook(
            lambda _m, args: grabbed.append(args[0]))
        try:
            self.net(z)
        finally:
            handle.remove()
        return grabbed[-1].flatten(1)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass for both: ``([B, D], [B, C])``."""
        if hasattr(self.net, "classify"):
            f = self.features(x)
            return f, self.net.classify(f)
        z = self.normalise(x)
        if self._last_linear is None:
            out = self.net(z)
            return out, out
        grabbed: list[torch.Tensor] = []
        handle = self._last_linear.register_forward_pre_hook(
            lambda _m, args: grabbed.append(args[0]))
        try:
            out = self.net(z)
        finally:
            handle.remove()
        return grabbed[-1].flatten(1), out

    def cam_layer(self) -> nn.Module | None:
        """The module whose output Grad-CAM weighs: the last convolution's block."""
        if hasattr(self.net, "_bn1") and hasattr(self.net, "_conv_head"):
            return self.net._bn1  # Lite0: head conv + BN (ReLU6 is applied after)
        convs = [m for m in self.net.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1] if convs else None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from ``.safetensors`` or a ``torch.save``d dict, never unpickling objects.

    A checkpoint that nests the weights under ``state_dict``/``model`` is unwrapped, and a
    ``module.`` prefix (DataParallel) is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found" if not path.exists()
                        else f"{path}: not a file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise UserError(f"{path}: cannot read weights ({e.strerror or e})") from None
    except Exception as e:  # corrupt zip, pickle with objects, truncated file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable state_dict ({first[:160]})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a dict of tensors (a state_dict)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` whose failure names the missing/unexpected keys and the
    shape mismatches in one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        def some(keys: list[str]) -> str:
            return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

        parts = ([f"missing keys {some(missing)}"] if missing else []) + \
                ([f"unexpected keys {some(unexpected)}"] if unexpected else []) + \
                ([f"shape mismatch {some(shapes)}"] if shapes else [])
        raise UserError(f"{what}: state_dict does not fit {type(model).__name__}: "
                        + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding ``*/code/`` (a plain state_dict zip has not)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_classifier(name: str = "lite0", weights: str = "", *, resize: int = 0, crop: int = 0,
                    mean: tuple[float, ...] | list[float] = (),
                    std: tuple[float, ...] | list[float] = (),
                    num_classes: int = 1000, fold_bn: bool = True) -> Classifier:
    """The classifier named by ``name``:

    - ``lite0``: the embedded EfficientNet-Lite0 (``weights`` may replace its state_dict);
    - a TorchScript file (``.pt``/``.ts``/``.zip`` holding TorchScript code);
    - a torchvision architecture (``resnet101``, ``vit_b_16``...) with ``weights`` = a state_dict.

    Preprocessing defaults: Lite0 ``(x*255 - 127) / 128``, others ImageNet mean/std; resize
    256, crop 224, each overridable. ``fold_bn``: Lite0's BatchNorms are folded into its
    convolutions (the same function, faster: ``bench``).
    """
    from .lite0 import EfficientNetLite0, fold_batchnorm, weights_path

    if name == "lite0":
        net: nn.Module = EfficientNetLite0()
        path = Path(weights) if weights else weights_path()
        load_strict(net, read_state_dict(path), str(path))
        if fold_bn:
            fold_batchnorm(net.eval())
        base = Preprocess()
    elif Path(name).suffix in (".pt", ".ts", ".zip", ".pth", ".jit") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{path}: model file not found")
        if not is_torchscript(path):
            raise UserError(f"{path}: not a TorchScript file (for a state_dict, name the "
                            f"architecture: --set model.name=resnet101 --set model.weights={path})")
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:
            raise UserError(f"{path}: cannot load TorchScript ({str(e).splitlines()[0][:160]})") \
                from None
        base = Preprocess(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    else:
        import torchvision

        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            raise UserError(f"model.name: unknown model '{name}' (lite0, a TorchScript file, or a "
                            f"torchvision architecture such as resnet101)")
        if not weights:
            raise UserError(f"model.weights: {name} needs a state_dict file "
                            f"(nothing is downloaded)")
        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        load_strict(net, read_state_dict(weights), str(weights))
        base = Preprocess(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    pre = Preprocess(resize=resize or base.resize, crop=crop or base.crop,
                     mean=tuple(mean) if mean else base.mean, std=tuple(std) if std else base.std)
    if len(pre.mean) != 3 or len(pre.std) != 3 or min(pre.std) <= 0:
        raise UserError("model.mean/model.std: need three values each, std > 0")
    if pre.crop > pre.resize or pre.crop < 16:
        raise UserError(f"model.crop: {pre.crop} must be at least 16 and at most model.resize "
                        f"({pre.resize})")
    return Classifier(net, pre, name=Path(name).name)
