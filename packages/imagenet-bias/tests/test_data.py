"""Image sets: Fashion-MNIST from its idx files, written once as PNGs in the data cache."""

import gzip
import struct

import numpy as np
import pytest

from dldiy_core import UserError
from dldiy_imagenet_bias.classes import imagenet_classes
from dldiy_imagenet_bias.data import fashion_mnist_set, load_image


def _write_idx(folder, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    head = b"\x00\x00\x08\x03" + struct.pack(">3I", *images.shape)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + images.tobytes()))
    head = b"\x00\x00\x08\x01" + struct.pack(">I", len(labels))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + labels.tobytes()))


def test_fashion_mnist_items_pixels_and_acceptable_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    _write_idx(tmp_path / "fm", images, labels)
    s = fashion_mnist_set(tmp_path / "fm")
    assert len(s.items) == 12 and not s.skipped
    classes = imagenet_classes()
    names = classes.names
    by_label = {it.label: {names[c] for c in it.accept} for it in s.items}
    assert by_label["sneaker"] == {names[classes.index("n04120489")]}  # running shoe
    assert by_label["sandal"] == {"sandal"} and by_label["trouser"] == {"jeans"}
    assert {"backpack", "purse"} <= by_label["bag"]
    assert {"trench coat", "lab coat"} <= by_label["coat"]
    for it, x in zip(s.items, images, strict=True):
        px = np.asarray(load_image(it.path))
        assert px.shape == (28, 28, 3) and (px[..., 0] == x).all()
    # a second call reuses the cached PNGs (same paths), new idx files get a new folder
    again = fashion_mnist_set(tmp_path / "fm")
    assert [it.path for it in again.items] == [it.path for it in s.items]
    _write_idx(tmp_path / "fm2", images[::-1].copy(), labels)
    assert fashion_mnist_set(tmp_path / "fm2").items[0].path != s.items[0].path


def test_fashion_mnist_bad_files_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="Fashion-MNIST images not found"):
        fashion_mnist_set(tmp_path / "missing")
    _write_idx(tmp_path / "fm", np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(UserError, match="do not match"):
        fashion_mnist_set(tmp_path / "fm")
