"""Attacks raise the loss and respect epsilon; DeepFool flips the label; the curve falls."""

import pytest
import torch
import torch.nn.functional as F

from dldiy_core import UserError
from dldiy_imagenet_bias.attacks import check_eps, deepfool, fgsm, pgd, robustness_curve


@pytest.fixture(scope="module")
def toy():
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(32, 10))
    for p in net.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.5
    x = torch.rand(8, 3, 16, 16, generator=g)
    with torch.no_grad():
        y = net(x).argmax(1)
    return net.eval(), x, y


def loss(net, x, y):
    with torch.no_grad():
        return F.cross_entropy(net(x), y).item()


def test_fgsm_raises_the_loss_within_epsilon(toy):
    net, x, y = toy
    adv = fgsm(net, x, y, 4 / 255)
    assert (adv - x).abs().max() <= 4 / 255 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert loss(net, adv, y) > loss(net, x, y)


@pytest.mark.parametrize("norm,eps", [("linf", 4 / 255), ("l2", 0.5)])
def test_pgd_stays_in_the_ball_and_beats_fgsm(toy, norm, eps):
    net, x, y = toy
    adv = pgd(net, x, y, eps, norm=norm, steps=10)
    d = (adv - x).flatten(1)
    if norm == "linf":
        assert d.abs().max() <= eps + 1e-6
        assert loss(net, adv, y) >= loss(net, fgsm(net, x, y, eps), y) - 1e-4
    else:
        assert d.norm(dim=1).max() <= eps + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1
    assert loss(net, adv, y) > loss(net, x, y)


def test_deepfool_flips_most_labels_with_small_steps(toy):
    net, x, y = toy
    adv, norms = deepfool(net, x, num_classes=5, max_iter=50)
    with torch.no_grad():
        flipped = (net(adv).argmax(1) != y).float().mean()
    assert flipped >= 0.75
    assert torch.allclose(norms, (adv - x).flatten(1).norm(dim=1))


def test_robustness_curve_falls_with_epsilon(toy):
    net, x, y = toy
    accept = [[int(c)] for c in y]
    curve = robustness_curve(net, x, y, accept, [0.0, 8 / 255, 32 / 255], steps=5)
    accs = [p["accuracy"] for p in curve]
    assert accs[0] == 1.0
    assert accs[2] <= accs[1] <= accs[0]
    assert accs[2] < 1.0


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf"), 2.0])
def test_bad_epsilons_are_refused(eps):
    with pytest.raises(UserError, match="epsilon"):
        check_eps(eps)
