"""The embedded EfficientNet-Lite0: weights load strictly and predictions are right."""

from pathlib import Path

import pytest
import torch

from dldiy_core import UserError
from dldiy_imagenet_bias.classes import imagenet_classes
from dldiy_imagenet_bias.data import load_image, photo_set
from dldiy_imagenet_bias.lite0 import EfficientNetLite0, SameConv2d, fold_batchnorm, weights_path
from dldiy_imagenet_bias.models import load_classifier, read_state_dict


def test_state_dict_loads_strictly():
    net = EfficientNetLite0()
    state = read_state_dict(weights_path())
    assert set(net.state_dict()) == set(state)
    net.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(4.65e6, rel=0.01)


def test_same_padding_matches_tensorflow_sizes():
    conv = SameConv2d(3, 4, 3, 2)
    assert conv(torch.zeros(1, 3, 224, 224)).shape[-2:] == (112, 112)
    assert conv(torch.zeros(1, 3, 225, 225)).shape[-2:] == (113, 113)
    # TF pads an even input on the bottom/right only: the top-left output sees no padding.
    x = torch.zeros(1, 3, 4, 4)
    x[..., 0, 0] = 1
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 0, 0] = 1
        assert conv(x)[0, 0, 0, 0] == 3


def _top5(clf, names):
    photos = {Path(it.path).name: it for it in photo_set().items}
    x = torch.stack([clf.preprocess(load_image(photos[n].path)) for n in names])
    with torch.inference_mode():
        return clf(x).topk(5, dim=1).indices.tolist(), [photos[n] for n in names]


def test_bundled_photos_get_their_classes(lite0):
    classes = imagenet_classes()
    tops, items = _top5(lite0, ["coffee.png", "chelsea.png", "flower.jpg", "rocket.jpg",
                                "motorcycle_left.png"])
    named = [[classes.names[c] for c in t] for t in tops]
    assert named[0][0] == "espresso", named[0]
    assert named[2][0] == "daisy", named[2]
    for top, it in zip(tops, items, strict=True):
        assert top[0] in it.accept, (it.path, [classes.names[c] for c in top])


def test_folded_batchnorm_gives_the_same_logits(lite0):
    plain = load_classifier("lite0", fold_bn=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.modules())  # the default
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) == 49
    x = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(lite0(x), plain(x), atol=2e-3, rtol=1e-3)
    fold_batchnorm(lite0.net)  # folding twice changes nothing
    with torch.inference_mode():
        torch.testing.assert_close(lite0(x), plain(x), atol=2e-3, rtol=1e-3)


def test_bring_your_own_torchvision_state_dict(tmp_path):
    import torchvision
    from safetensors.torch import save_file

    net = torchvision.models.get_model("resnet18", weights=None, num_classes=1000)
    save_file(net.state_dict(), str(tmp_path / "r18.safetensors"))
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    for f in ("r18.safetensors", "r18.pth"):
        clf = load_classifier("resnet18", str(tmp_path / f))
        x = torch.rand(2, 3, 224, 224)
        with torch.no_grad():
            feats, logits = clf.features_and_logits(x)
            torch.testing.assert_close(logits, net.eval()(clf.normalise(x)))
        assert feats.shape == (2, 512)
    bad = dict(net.state_dict())
    bad.pop("fc.bias")
    bad["extra.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="missing keys fc.bias; unexpected keys extra.weight"):
        load_classifier("resnet18", str(tmp_path / "bad.pth"))


def test_bring_your_own_torchscript(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 1000)).eval()
    path = tmp_path / "tiny.pt"
    torch.jit.script(net).save(str(path))
    clf = load_classifier(str(path), crop=64, resize=72)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(clf(x), net(clf.normalise(x)))
    torch.save(net.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(UserError, match="not a TorchScript file"):
        load_classifier(str(tmp_path / "plain.pt"))


def test_pickled_objects_are_refused(tmp_path):
    import datetime

    torch.save({"w": torch.zeros(1), "obj": datetime.date(2018, 9, 8)}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match="not a readable state_dict"):
        read_state_dict(tmp_path / "evil.pth")


@pytest.mark.parametrize("size", [224, 161])  # even and odd sizes: TF "SAME" both ways
def test_fused_inference_is_the_plain_network(lite0, size):
    from dldiy_imagenet_bias.fused import FusedLite0, fused_available

    if not fused_available():
        pytest.skip("this torch has no fused oneDNN convolution")
    plain = load_classifier("lite0", fold_bn=False)
    torch.manual_seed(0)
    x = torch.rand(3, 3, size, size)
    with torch.inference_mode():
        want_f, want = plain.features_and_logits(x)
        fused = FusedLite0(plain.net)  # folds a copy: the plain network keeps its BatchNorms
        f, logits = fused.features_and_logits(plain.normalise(x))
        assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) == 49
        torch.testing.assert_close(f, want_f, atol=2e-3, rtol=1e-3)
        torch.testing.assert_close(logits, want, atol=2e-3, rtol=1e-3)
        # bf16: close, not equal (its top-1 agreement on real images is a bench figure)
        for depthwise in ("bf16", "fp32"):
            low = FusedLite0(plain.net, "bf16", depthwise)(plain.normalise(x))
            assert low.dtype == torch.float32
            assert (low - want).abs().max() < 0.1 * want.abs().max()
    with pytest.raises(ValueError, match="depthwise"):
        FusedLite0(plain.net, "bf16", "fp16")


def test_predict_uses_one_pass_for_features_and_logits(lite0):
    from dldiy_imagenet_bias.predict import fused_model, predict

    pixels = (torch.rand(5, 3, 224, 224) * 255).to(torch.uint8)
    fast = predict(lite0, pixels, batch_size=2, features=True)
    slow = predict(lite0, pixels, batch_size=4, features=True, fused=False)
    torch.testing.assert_close(fast.logits, slow.logits, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(fast.features, slow.features, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(predict(lite0, pixels).logits, fast.logits)
    assert fast.features.shape == (5, 1280)
    if fused_model(lite0) is not None:  # built once, kept
        assert fused_model(lite0) is fused_model(lite0)
