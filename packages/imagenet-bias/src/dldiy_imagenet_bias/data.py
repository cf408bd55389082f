"""Labelled image sets: your ImageFolder / ImageNet-val layout, and the real images here.

A label is a *set* of acceptable ImageNet-1k classes (ImageNet-ReaL style) plus one WordNet
synset that names it: a wnid folder gives one class; a clip-art category such as "dogs" gives
every ImageNet class under WordNet's ``dog`` (118 breeds). Top-1 is right when the predicted
class is in the set; a mistake's severity is its WordNet distance to the label's synset.

Real images reachable here (no ImageNet): Debian ``openclipart-png`` category folders mapped to
WordNet synsets (a renditions / domain-shift probe, like ImageNet-R), and the photos bundled in
scikit-image and scikit-learn, labelled by hand below. Unreadable or non-image files are
skipped, counted and listed, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dldiy_core import UserError, check_input, data_cache, os_error, read_idx

from .classes import imagenet_classes
from .wordnet import WordNet, load_wordnet

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
OPENCLIPART = Path("/usr/share/openclipart/png")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MAX_PIXELS = 40_000_000
"""Larger images are skipped (a few clip-art PNGs are 170 megapixels: minutes to decode)."""


class TooLarge(ValueError):
    """An image above :data:`MAX_PIXELS`."""

# openclipart-png folder (with its sub-folders) -> WordNet synsets whose ImageNet-1k hyponyms are
# acceptable. Folders were chosen where ImageNet has classes for most pictures; they still hold
# off-topic drawings (road signs among vehicles, knots among boats, dolphins among fish): the
# human-study page is how such label errors are found and set aside, as in the paper.
CLIPART_CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "animals/birds": ("bird", ("n01503061",)),
    "animals/bugs": ("insect or other invertebrate", ("n01767661", "n01940736")),
    "animals/dinosaurs": ("dinosaur", ("n01699831",)),
    "animals/fish": ("fish or sea animal", ("n02512053", "n02062017", "n01976146")),
    "animals/mammals/bears": ("bear", ("n02131653",)),
    "animals/mammals/big_cats": ("big cat", ("n02127808",)),
    "animals/mammals/dogs": ("dog", ("n02084071",)),
    "animals/mammals/horses": ("horse", ("n02374451",)),
    "animals/mammals/housecats": ("domestic cat", ("n02121808",)),
    "food/fruit": ("fruit", ("n13134947",)),
    "food/vegetables": ("vegetable", ("n07707451",)),
    "food/beverages": ("drink or its container", ("n07881800", "n03241496", "n02876657",
                                                  "n03438257")),
    "transportation/vehicles": ("vehicle", ("n04524313",)),
    "transportation/boating": ("boat", ("n04530566",)),
    "signs_and_symbols/clocks": ("clock", ("n04437953",)),
    "office/telephone": ("telephone", ("n04401088",)),
    "tools/weapons": ("weapon", ("n04565375",)),
    "recreation/music": ("musical instrument", ("n03800933",)),
    "people/clothing/hats": ("hat", ("n03502509",)),
    "buildings/furniture": ("furniture", ("n03405725",)),
    "computer/hardware": ("computer hardware", ("n03082979", "n03278248", "n03782006",
                                                "n04152593", "n03793489")),
    "recreation/sports": ("sports equipment", ("n04285146", "n03414162")),
}

# Fashion-MNIST's ten classes -> WordNet synsets (the first names the label) whose ImageNet-1k
# hyponyms are acceptable: T-shirt, jeans, cardigan / sweatshirt, gown, fur / lab / trench coat,
# sandal, running shoe, backpack / messenger bag / plastic bag / purse / sleeping bag, cowboy boot.
FASHION_CLASSES: list[tuple[str, tuple[str, ...]]] = [
    ("T-shirt or top", ("n03595614",)),
    ("trouser", ("n04489008",)),
    ("pullover", ("n04021028", "n04370048")),
    ("dress", ("n03236735",)),
    ("coat", ("n03057021",)),
    ("sandal", ("n04133789",)),
    ("shirt", ("n04197391",)),
    ("sneaker", ("n03472535", "n04120489")),
    ("bag", ("n02773037",)),
    ("ankle boot", ("n02872752",)),
]

# The photos bundled with scikit-image / scikit-learn that show an ImageNet object, labelled by
# hand: (package, file, label name, acceptable wnids). The first wnid names the label.
PHOTOS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("skimage", "coffee.png", "espresso", ("n07920052", "n03063599", "n07930864")),
    ("skimage", "chelsea.png", "domestic cat", ("n02121808",)),
    ("skimage", "rocket.jpg", "missile", ("n03773504", "n04008634", "n04266014")),
    ("skimage", "motorcycle_left.png", "motorcycle", ("n03790512", "n03791053")),
    ("skimage", "motorcycle_right.png", "motorcycle", ("n03790512", "n03791053")),
    ("skimage", "camera.png", "tripod", ("n04485082", "n04069434")),
    ("skimage", "horse.png", "horse", ("n02374451",)),
    ("skimage", "clock_motion.png", "clock", ("n03046257",)),
    ("sklearn", "china.jpg", "palace", ("n03877845", "n03781244")),
    ("sklearn", "flower.jpg", "daisy", ("n11939491",)),
]


@dataclass
class Item:
    """One image: its file, label name, label synset and acceptable class indices."""

    path: str
    label: str
    wnid: str
    accept: tuple[int, ...]


@dataclass
class ImageSet:
    """Items plus the files that could not be used (``skipped``: ``(path, reason)``)."""

    name: str
    items: list[Item]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def labels(self) -> list[str]:
        return sorted({it.label for it in self.items})

    def subset(self, n_per_label: int, seed: int = 0) -> ImageSet:
        """At most ``n_per_label`` items per label (a reproducible random choice)."""
        if n_per_label <= 0:
            return self
        rng = np.random.default_rng(seed)
        keep: list[Item] = []
        for label in self.labels():
            its = [it for it in self.items if it.label == label]
            idx = sorted(rng.permutation(len(its))[:n_per_label])
            keep += [its[i] for i in idx]
        return ImageSet(self.name, keep, list(self.skipped))


def synset_classes(wn: WordNet, wnids: Sequence[str]) -> tuple[int, ...]:
    """ImageNet-1k class indices under any of ``wnids`` in WordNet."""
    classes = imagenet_classes()
    return tuple(i for i, w in enumerate(classes.wnids)
                 if any(wn.is_a(w, s) for s in wnids))


def list_images(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files under ``folder`` (recursive, sorted) and other files as skipped."""
    files, skipped = [], []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p)
            else:
                skipped.append((str(p), "not an image file type"))
    return files, skipped


def clipart_set(root: Path = OPENCLIPART, categories: Sequence[str] = ()) -> ImageSet:
    """The mapped openclipart-png categories (all of them unless ``categories`` names some)."""
    if not root.is_dir():
        raise UserError(f"{root}: clip-art not found (install the Debian package "
                        f"openclipart-png)")
    wn = load_wordnet()
    chosen = categories or list(CLIPART_CATEGORIES)
    items, skipped = [], []
    for cat in chosen:
        if cat not in CLIPART_CATEGORIES:
            raise UserError(f"data.categories: unknown clip-art category '{cat}' "
                            f"(known: {', '.join(CLIPART_CATEGORIES)})")
        label, wnids = CLIPART_CATEGORIES[cat]
        accept = synset_classes(wn, wnids)
        files, bad = list_images(root / cat)
        skipped += bad
        items += [Item(str(p), label, wnids[0], accept) for p in files]
    return ImageSet("openclipart", items, skipped)


def photo_set() -> ImageSet:
    """The hand-labelled photos bundled with scikit-image and scikit-learn."""
    import skimage.data
    import sklearn.datasets

    classes = imagenet_classes()
    folders = {"skimage": Path(skimage.data.__file__).parent,
               "sklearn": Path(sklearn.datasets.__file__).parent / "images"}
    wn = load_wordnet()
    items, skipped = [], []
    for pkg, name, label, wnids in PHOTOS:
        path = folders[pkg] / name
        if not path.is_file():
            skipped.append((str(path), "missing"))
            continue
        accept = tuple(sorted({i for i in synset_classes(wn, wnids)} |
                              {classes.index(w) for w in wnids if w in classes.wnids}))
        items.append(Item(str(path), label, wnids[0], accept))
    return ImageSet("photos", items, skipped)


def fashion_mnist_set(root: Path = FASHION_MNIST) -> ImageSet:
    """The 10,000 Fashion-MNIST test images, written once as PNG files under the data cache
    (keyed by the idx files' hashes) so that every analysis reads them like any image."""
    images = read_idx(check_input(root / "t10k-images-idx3-ubyte.gz", "Fashion-MNIST images"),
                      "Fashion-MNIST images")
    labels = read_idx(root / "t10k-labels-idx1-ubyte.gz", "Fashion-MNIST labels")
    if images.ndim != 3 or labels.shape != images.shape[:1] or labels.max() >= 10:
        raise UserError(f"{root}: Fashion-MNIST images {images.shape} and labels "
                        f"{labels.shape} do not match")
    key = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:12]
    folder = data_cache("imagenet-bias") / "fashion-mnist" / f"t10k-{key}"
    paths = [folder / f"{y}" / f"{i:05d}.png" for i, y in enumerate(labels.tolist())]
    if not folder.is_dir():  # written beside, then renamed: never a half-written folder
        from PIL import Image

        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            for i, (x, y) in enumerate(zip(images, labels.tolist(), strict=True)):
                (tmp / f"{y}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(x, mode="L").save(tmp / f"{y}" / f"{i:05d}.png")
            os.rename(tmp, folder)
        except OSError as e:
            if not folder.is_dir():
                raise os_error(e, folder, "write") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    wn = load_wordnet()
    classes = imagenet_classes()
    accept = [tuple(sorted(set(synset_classes(wn, wnids))
                           | {classes.index(w) for w in wnids if w in classes.wnids}))
              for _, wnids in FASHION_CLASSES]
    items = [Item(str(p), FASHION_CLASSES[y][0], FASHION_CLASSES[y][1][0], accept[y])
             for p, y in zip(paths, labels.tolist(), strict=True)]
    return ImageSet("fashion-mnist", items)


def image_folder(root: str | Path) -> ImageSet:
    """``root/<class>/*.jpg`` where ``<class>`` is a wnid (ImageNet train/val layout), a class
    index or an exact ImageNet class name; another folder name is an error."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: image folder not found" if not root.exists()
                        else f"{root}: not a folder")
    classes = imagenet_classes()
    wn = None
    items, skipped = [], []
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise UserError(f"{root}: no class folders (expected <wnid>/ sub-folders, e.g. "
                        f"n01440764/)")
    for d in subdirs:
        name = d.name
        if name.startswith("n") and name[1:].isdigit() and name not in classes.wnids:
            # A wnid outside ImageNet-1k: its ImageNet hyponyms are acceptable (a coarse label).
            wn = wn or load_wordnet()
            if name not in wn:
                raise UserError(f"{d}: unknown class id '{name}' (not a WordNet noun synset)")
            accept = synset_classes(wn, [name])
            if not accept:
                raise UserError(f"{d}: class id '{name}' has no ImageNet-1k class below it")
            label, wnid = wn.name(name), name
        else:
            try:
                c = classes.index(name)
            except UserError:
                raise UserError(f"{d}: unknown class id '{name}' (a wnid such as n01440764, "
                                f"an index 0-999 or an ImageNet class name)") from None
            accept, label, wnid = (c,), classes.names[c], classes.wnids[c]
        files, bad = list_images(d)
        skipped += bad
        items += [Item(str(p), label, wnid, accept) for p in files]
    if not items:
        raise UserError(f"{root}: no image files in its class folders")
    return ImageSet(root.name, items, skipped)


def load_set(source: str) -> ImageSet:
    """``clipart``, ``photos``, ``fashion-mnist``, several joined by ``+``, or a folder in
    ImageFolder layout."""
    sets = []
    for part in source.split("+"):
        if part == "clipart":
            sets.append(clipart_set())
        elif part == "photos":
            sets.append(photo_set())
        elif part == "fashion-mnist":
            sets.append(fashion_mnist_set())
        else:
            sets.append(image_folder(part))
    if len(sets) == 1:
        return sets[0]
    return ImageSet(source, [i for s in sets for i in s.items],
                    [k for s in sets for k in s.skipped])


def apply_real_labels(images: ImageSet, path: str | Path) -> ImageSet:
    """Replace acceptable sets by ImageNet-ReaL-style labels: a JSON list aligned with the
    items (sorted file order, as ReaL's ``real.json`` for ``ILSVRC2012_val_*``) or an object
    ``{file name: [class ids]}``; an empty list marks an image with no valid label (dropped)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: labels file not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a readable JSON labels file ({e})") from None
    n = 1000
    if isinstance(data, list):
        if len(data) != len(images.items):
            raise UserError(f"{path}: {len(data)} label lists for {len(images.items)} images")
        lists = data
    elif isinstance(data, dict):
        missing = [Path(it.path).name for it in images.items if Path(it.path).name not in data]
        if missing:
            raise UserError(f"{path}: no labels for {len(missing)} images (e.g. {missing[0]})")
        lists = [data[Path(it.path).name] for it in images.items]
    else:
        raise UserError(f"{path}: expected a JSON list or object of class-id lists")
    items = []
    for it, ids in zip(images.items, lists, strict=True):
        if not isinstance(ids, list) or not all(isinstance(i, int) and 0 <= i < n for i in ids):
            raise UserError(f"{path}: {Path(it.path).name}: labels must be lists of class ids "
                            f"0..{n - 1}")
        if ids:
            items.append(Item(it.path, it.label, it.wnid, tuple(sorted(ids))))
    return ImageSet(images.name, items, images.skipped)


def load_image(path: str | Path):
    """A PIL RGB image; transparency is composited on white (clip-art is drawn for white)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():  # the size is checked below, before any decoding
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    with im:
        if im.size[0] * im.size[1] > MAX_PIXELS:
            raise TooLarge(f"{im.size[0]}x{im.size[1]} pixels, above {MAX_PIXELS:,}")
        im.load()
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            return Image.alpha_composite(bg, im).convert("RGB")
        return im.convert("RGB")


def load_pixels(images: ImageSet, preprocess, cache: bool = True) -> tuple[torch.Tensor, ImageSet]:
    """All images as ``uint8 [N, 3, crop, crop]`` and the set of those that loaded (the rest
    join ``skipped``). Cached under the data cache, keyed by files, sizes and preprocessing."""
    key = hashlib.sha256(json.dumps(
        ["v2", MAX_PIXELS, [it.path for it in images.items], preprocess.resize, preprocess.crop,
         [Path(it.path).stat().st_size if Path(it.path).exists() else -1
          for it in images.items]]).encode()).hexdigest()[:16]
    folder = data_cache("imagenet-bias") / "pixels"
    npy, meta = folder / f"{key}.npy", folder / f"{key}.json"
    if cache and npy.exists() and meta.exists():
        try:
            kept = json.loads(meta.read_text())
            x = torch.from_numpy(np.load(npy, allow_pickle=False))
            by_path = {it.path: it for it in images.items}
            items = [by_path[p] for p in kept["kept"]]
            return x, ImageSet(images.name, items,
                               images.skipped + [tuple(s) for s in kept["skipped"]])
        except (OSError, ValueError, KeyError):
            log.warning("pixel cache %s unreadable: rebuilding", npy)
    xs, items, skipped = [], [], []
    for it in images.items:
        try:
            img = load_image(it.path)
        except TooLarge as e:
            skipped.append((it.path, f"too large ({e})"))
            continue
        except Exception as e:  # PIL raises many types on corrupt files
            skipped.append((it.path, f"unreadable image ({type(e).__name__})"))
            continue
        xs.append((preprocess(img) * 255).round().to(torch.uint8))
        items.append(it)
    if skipped:
        log.warning("%d images skipped (first: %s: %s)", len(skipped), *skipped[0])
    if not xs:
        raise UserError(f"{images.name}: none of the {len(images.items)} images could be read")
    x = torch.stack(xs)
    if cache:
        from dldiy_core import atomic_path, atomic_write_text

        try:
            with atomic_path(npy) as tmp, open(tmp, "wb") as f:
                np.save(f, x.numpy(), allow_pickle=False)
            atomic_write_text(meta, json.dumps({"kept": [it.path for it in items],
                                                "skipped": skipped}))
        except OSError as e:
            log.warning("pixel cache not written (%s)", e)
    return x, ImageSet(images.name, items, images.skipped + skipped)
