"""Accuracy on acceptable sets, severity, rectified and ReaL accuracy arithmetic."""

import pytest
import torch

from dldiy_core import UserError
from dldiy_imagenet_bias.classes import imagenet_classes
from dldiy_imagenet_bias.data import ImageSet, Item
from dldiy_imagenet_bias.mistakes import real_accuracy, records, rectified_accuracy, summarise


def _logits(top1):
    z = torch.zeros(len(top1), 1000)
    for i, c in enumerate(top1):
        z[i, c] = 10
        z[i, (c + 1) % 1000] = 5
    return z


def test_records_and_summary(wordnet):
    classes = imagenet_classes()
    tabby, persian, husky = (classes.index(w) for w in ("n02123045", "n02123394", "n02110185"))
    items = [Item("a.png", "tabby cat", "n02123045", (tabby,)),
             Item("b.png", "tabby cat", "n02123045", (tabby,)),
             Item("c.png", "tabby cat", "n02123045", (tabby,)),
             Item("d.png", "husky", "n02110185", (husky,))]
    recs = records(ImageSet("t", items), _logits([tabby, persian, husky, husky]), classes,
                   wordnet)
    assert [r["top1_ok"] for r in recs] == [True, False, False, True]
    assert recs[1]["severity"] == 2 and recs[1]["common"] == "domestic cat"
    assert recs[2]["severity"] > recs[1]["severity"]
    s = summarise(recs)
    assert s["top1"] == 0.5
    assert s["per_label"]["tabby cat"]["top1"] == pytest.approx(1 / 3)
    assert s["mean_class_top1"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["n_mistakes"] == 2 and sum(s["severity_hist"].values()) == 2


def test_rectified_accuracy_arithmetic():
    recs = [{"id": i, "top1_ok": ok} for i, ok in enumerate([True, False, False, False, True])]
    r = rectified_accuracy(recs, {1: True, 2: False, 0: False})
    assert r["top1"] == 0.4
    assert r["rectified_top1"] == 0.6  # one accepted mistake; answers on correct ones ignored
    assert r["n_answered"] == 2 and r["n_accepted"] == 1 and r["accepted_fraction"] == 0.5
    with pytest.raises(UserError, match="not images of this evaluation"):
        rectified_accuracy(recs, {7: True})


def test_real_accuracy_leaves_out_empty_sets():
    r = real_accuracy([1, 2, 3, 4], [[1, 5], [], [9], [4]])
    assert r["n_images"] == 3 and r["real_top1"] == pytest.approx(2 / 3)
