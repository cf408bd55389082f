"""Data as users have it: the four official BigANN / Deep1M files, and ann-benchmarks HDF5 files.

BigANN / Deep1M (``--set data.base=... --set data.learn=... --set data.query=... --set
data.gt=...``): the database is the first ``n_base`` rows of ``base`` (0: all), the training set
the first ``n_train`` rows of ``learn``, the queries the first ``n_query`` rows of ``query``, the
ground truth the same rows of ``gt`` (its ids must fall in the database; without ``gt`` it is
computed exactly). Opening the files reads their sizes and first and last row headers only
(``vecs.read_vecs``); the rows used are memory-mapped in place, never copied, and their headers
and values are checked once, in chunks, when the split is first cached.

ann-benchmarks (``--set data.source=glove-100-angular.hdf5``): ``train`` is the database (all
of it unless ``n_base`` says otherwise), ``test`` the queries, ``neighbors`` / ``distances``
their 100 true neighbours. There is no separate training set: the catalyzer trains on
``n_train`` database rows drawn with ``data.seed`` (as faiss trains its quantizers on the
database). Euclidean files are memory-mapped in place (a contiguous, uncompressed dataset, as
ann-benchmarks writes them); angular ones are unit-normalised once into the split cache, so
that L2 ranks as the angular distance. Recall is also reported as ann-benchmarks' "10@10"
(:func:`dldiy_catalyzer.evaluate.knn_recall`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from dldiy_core import UserError, check_input, make_dir, os_error

from .config import DataConfig
from .data import GT_K, Splits, cache_root, exact_knn
from .vecs import check_finite, check_vecs_rows, read_vecs, vecs_shape

log = logging.getLogger(__name__)

HDF5 = (".hdf5", ".h5")
ANN_DATASETS = ("train", "test", "neighbors", "distances")
METRICS = ("euclidean", "angular")


def _file_tag(paths: list[Path]) -> str:
    """A short hash of the files' resolved paths, sizes and modification times."""
    h = hashlib.sha256()
    for p in paths:
        st = p.resolve().stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:10]


def _write_folder(folder: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta.json`` and ``.npy`` arrays into ``folder`` all at once (a complete folder
    only ever appears; another process building the same one first wins)."""
    make_dir(folder.parent)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for key, a in arrays.items():
            np.save(tmp / f"{key}.npy", a)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():
                raise
    except OSError as e:
        raise os_error(e, folder, "write the split cache") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_ids(gt: np.ndarray, n_base: int, path: Path, base_rows: int, base: str) -> None:
    """Ground-truth ids ``gt: [nq, k]`` must be rows of the database (``0 <= id < n_base``)."""
    if gt.shape[1] > n_base:
        raise UserError(f"{path}: lists {gt.shape[1]} neighbours per query, more than the "
                        f"{n_base} database vectors")
    lo, hi = int(gt.min(initial=0)), int(gt.max(initial=0))
    if lo < 0:
        raise UserError(f"{path}: holds the id {lo} (ids are database rows, from 0)")
    if hi >= n_base:
        hint = (f"set data.n_base=0 to use all {base_rows} rows of {base}" if base_rows > n_base
                else f"{base} has only {base_rows} rows: not the ground truth of this database")
        raise UserError(f"{path}: neighbour id {hi} is past the database's {n_base} rows "
                        f"(data.n_base); {hint}")


# --- BigANN / Deep1M: base, learn, query, gt ---------------------------------------------

def official_splits(d: DataConfig, root: Path | None = None) -> Splits:
    """The splits of the four official files, memory-mapped where they lie (cached: the
    checks and a computed ground truth run once per version of the files)."""
    files = {k: check_input(getattr(d, k), f"data.{k}") for k in ("base", "learn", "query")}
    if d.gt:
        files["gt"] = check_input(d.gt, "data.gt")
    (nb, db), (nl, dl), (nq, dq) = (vecs_shape(files[k], f"data.{k}")
                                    for k in ("base", "learn", "query"))
    for key, dim in (("learn", dl), ("query", dq)):
        if dim != db:
            raise UserError(f"{files[key]}: vectors of dimension {dim}, but data.base "
                            f"{files['base']} has dimension {db}")
    n_base = nb if d.n_base == 0 else d.n_base
    for key, rows, want, setting in (("base", nb, n_base, "n_base"), ("learn", nl, d.n_train,
                                     "n_train"), ("query", nq, d.n_query, "n_query")):
        if want > rows:
            hint = " (data.n_base=0: all of them)" if key == "base" else ""
            raise UserError(f"{files[key]}: has {rows} vectors, data.{setting} asks for "
                            f"{want}{hint}")
    if "gt" in files:
        ng, k = vecs_shape(files["gt"], "data.gt")
        if ng != nq:
            raise UserError(f"{files['gt']}: {ng} ground-truth rows, but data.query "
                            f"{files['query']} has {nq} queries (one row per query)")
    name = f"{files['base'].stem}-b{n_base}-t{d.n_train}-q{d.n_query}"
    folder = (root or cache_root()) / f"{name}-{_file_tag(list(files.values()))}"
    if not (folder / "meta.json").exists():
        _build_official(folder, files, n_base, d, nb)
    return _open_official(folder, files, n_base, d)


def _build_official(folder: Path, files: dict[str, Path], n_base: int, d: DataConfig,
                    base_rows: int) -> None:
    for key, rows in (("base", n_base), ("learn", d.n_train), ("query", d.n_query)):
        check_vecs_rows(files[key], rows, f"data.{key}")
    arrays = {}
    if "gt" in files:
        check_vecs_rows(files["gt"], d.n_query, "data.gt")
        gt = read_vecs(files["gt"], d.n_query, "data.gt")
        check_ids(gt, n_base, files["gt"], base_rows, str(files["base"]))
    else:
        log.info("ground truth: %d queries x %d database vectors", d.n_query, n_base)
        arrays["gt"] = exact_knn(read_vecs(files["query"], d.n_query),
                                 read_vecs(files["base"], n_base), min(GT_K, n_base))
    meta = {"kind": "official", "files": {k: str(p.resolve()) for k, p in files.items()},
            "n_base": n_base, "n_train": d.n_train, "n_query": d.n_query,
            "d": vecs_shape(files["base"])[1]}
    _write_folder(folder, meta, arrays)


def _open_official(folder: Path, files: dict[str, Path], n_base: int, d: DataConfig
                   ) -> Splits:
    xb = read_vecs(files["base"], n_base, "data.base")
    xt = read_vecs(files["learn"], d.n_train, "data.learn")
    xq = read_vecs(files["query"], d.n_query, "data.query")
    if "gt" in files:
        gt = read_vecs(files["gt"], d.n_query, "data.gt")
    else:
        try:
            gt = np.load(folder / "gt.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"{folder}: damaged split cache (delete the folder to rebuild it; "
                            f"{e})") from None
    return Splits(str(files["base"]), xb, xt, xq, gt, folder)


# --- ann-benchmarks HDF5 -------------------------------------------------------------------

def _h5_array(path: Path, ds) -> np.ndarray:
    """A dataset as an array: memory-mapped in place when it is stored contiguous and
    uncompressed (as ann-benchmarks writes it), read otherwise."""
    offset = ds.id.get_offset()
    if ds.chunks is None and offset is not None and ds.dtype.kind in "fiu":
        return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
    return ds[...]


def open_hdf5(path: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """``({"train": [N, d], "test": [nq, d], "neighbors": [nq, k], "distances": [nq, k]},
    metric)`` of an ann-benchmarks file; anything else is one line naming the file."""
    import h5py

    path = check_input(path, "data source")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({' '.join(str(e).split())[:120]})"
                        ) from None
    with f:
        for key in ANN_DATASETS:
            if not isinstance(f.get(key), h5py.Dataset):
                raise UserError(f"{path}: no '{key}' dataset (an ann-benchmarks file holds "
                                f"{', '.join(ANN_DATASETS)})")
        shapes = {k: f[k].shape for k in ANN_DATASETS}
        for key in ANN_DATASETS:
            if len(shapes[key]) != 2 or 0 in shapes[key] or f[key].dtype.kind not in "fiu":
                raise UserError(f"{path}: '{key}' is {f[key].dtype} of shape {shapes[key]}, "
                                "expected a non-empty numeric matrix")
        (_, d), (nq, dq), (ng, k) = shapes["train"], shapes["test"], shapes["neighbors"]
        if dq != d:
            raise UserError(f"{path}: 'test' vectors of dimension {dq}, 'train' of {d}")
        if ng != nq or shapes["distances"] != (ng, k):
            raise UserError(f"{path}: 'neighbors' {shapes['neighbors']} and 'distances' "
                            f"{shapes['distances']} must both have one row per 'test' query "
                            f"({nq})")
        if k < 10:
            raise UserError(f"{path}: 'neighbors' lists {k} per query; 10@10 recall needs 10")
        metric = f.attrs.get("distance", "euclidean")
        metric = metric.decode() if isinstance(metric, bytes) else str(metric)
        if metric not in METRICS:
            raise UserError(f"{path}: distance '{metric}' (supported: {', '.join(METRICS)})")
        arrays = {key: _h5_array(path, f[key]) for key in ANN_DATASETS}
    return arrays, metric


def unit_rows(x: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """``x`` as float32 rows of unit length (a zero row stays zero), block by block."""
    out = np.empty(x.shape, dtype=np.float32)
    for i in range(0, len(x), block):
        b = np.asarray(x[i:i + block], dtype=np.float32)
        out[i:i + block] = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
    return out


def hdf5_splits(d: DataConfig, root: Path | None = None) -> Splits:
    """The splits of an ann-benchmarks file (cached beside the others)."""
    path = Path(d.source)
    arrays, metric = open_hdf5(path)
    n, nq = len(arrays["train"]), len(arrays["test"])
    n_base = n if d.n_base == 0 else d.n_base
    for rows, want, setting, what in ((n, n_base, "n_base", "train"),
                                      (nq, d.n_query, "n_query", "test")):
        if want > rows:
            hint = " (data.n_base=0: all of them)" if what == "train" else ""
            raise UserError(f"{path}: '{what}' has {rows} vectors, data.{setting} asks for "
                            f"{want}{hint}")
    if d.n_train > n_base:
        raise UserError(f"{path}: the catalyzer trains on database vectors, data.n_train "
                        f"{d.n_train} is more than its {n_base}")
    name = f"{path.stem}-b{n_base}-t{d.n_train}-q{d.n_query}-s{d.seed}-{_file_tag([path])}"
    folder = (root or cache_root()) / name
    if not (folder / "meta.json").exists():
        gt = np.asarray(arrays["neighbors"][:d.n_query], dtype=np.int64)
        check_ids(gt, n_base, path, n, f"{path}'s 'train'")
        dist = np.asarray(arrays["distances"][:d.n_query], dtype=np.float64)
        rows = np.sort(np.random.default_rng(d.seed).choice(n_base, d.n_train, replace=False))
        xb = arrays["train"][:n_base]
        for key, x in (("train", xb), ("test", arrays["test"][:d.n_query])):
            check_finite(x, f"{path} '{key}'")
        if not np.isfinite(dist).all():
            raise UserError(f"{path}: 'distances' holds NaN or inf")
        out = {"gt": gt, "gt_distances": dist,
               "xt": np.asarray(xb[rows], dtype=np.float32),
               "xq": np.asarray(arrays["test"][:d.n_query], dtype=np.float32)}
        if metric == "angular":  # unit rows: L2 ranks as the angular distance
            out = {**out, "xb": unit_rows(xb), "xt": unit_rows(out["xt"]),
                   "xq": unit_rows(out["xq"])}
        meta = {"kind": "ann-benchmarks", "source": str(path.resolve()), "metric": metric,
                "n_base": n_base, "n_train": d.n_train, "n_query": d.n_query, "seed": d.seed,
                "d": int(xb.shape[1])}
        _write_folder(folder, meta, out)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        loaded = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False)
                  for k in ("xt", "xq", "gt", "gt_distances")}
        xb = (np.load(folder / "xb.npy", mmap_mode="r", allow_pickle=False)
              if meta["metric"] == "angular" else arrays["train"][:n_base])
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{folder}: damaged split cache (delete the folder to rebuild it; "
                        f"{' '.join(str(e).split())[:120]})") from None
    return Splits(str(path), xb, loaded["xt"], loaded["xq"], loaded["gt"], folder,
                  metric=metric, gt_distances=loaded["gt_distances"])
