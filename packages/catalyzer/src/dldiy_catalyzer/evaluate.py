"""Recall@R of the true nearest neighbour for the catalyzer and the usual quantizers.

recall@R = fraction of queries whose exact nearest database neighbour is among the first R
results (section 5). All methods see the same database, training set and queries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import faiss
import numpy as np
import torch

from .binary import hamming_search, sign_codes
from .data import Splits
from .lattice import BUDGETS, ZnCodec, lattice_radius
from .models import embed

log = logging.getLogger(__name__)
RANKS = (1, 2, 5, 10, 20, 50, 100)


def recall_at(ids: np.ndarray, gt: np.ndarray, ranks=RANKS) -> dict[int, float]:
    """``ids: [nq, >=max(ranks)]`` results, ``gt: [nq, ...]`` exact ids -> {R: recall@R}."""
    hit = ids == np.asarray(gt)[:, :1]
    return {r: float(hit[:, :r].any(axis=1).mean()) for r in ranks}


KNN_EPSILON = 1e-3
"""ann-benchmarks' tie rule: a result within this of the count-th true distance counts."""


def knn_recall(ids: np.ndarray, splits: Splits, count: int = 10,
               epsilon: float = KNN_EPSILON) -> float:
    """ann-benchmarks' "k-nn" recall (10@10 for ``count`` = 10): the mean over queries of the
    fraction of the first ``count`` results whose true distance to the query, in the data set's
    metric, is at most the ``count``-th true neighbour's distance + ``epsilon``
    (``ann_benchmarks/plotting/metrics.py``: ``knn_threshold`` in ``get_recall_values``; the
    distances of a run are recomputed from the vectors, ``metrics[distance].distance``).
    Ties with the ``count``-th neighbour therefore count as found.

    ``ids: [nq, >= count]``; ``splits.gt_distances: [nq, >= count]`` (angular: 1 - cos;
    euclidean: L2, not squared).
    """
    if splits.gt_distances is None:
        raise ValueError("knn_recall needs the data set's true distances (ann-benchmarks)")
    ids = np.asarray(ids)[:, :count]
    xq = np.asarray(splits.xq, dtype=np.float64)
    rows, inverse = np.unique(ids, return_inverse=True)
    found = np.asarray(splits.xb[rows], dtype=np.float64)[inverse.reshape(ids.shape)]
    if splits.metric == "angular":  # the rows are unit vectors: 1 - cos is 1 - dot
        dist = 1.0 - np.einsum("qkd,qd->qk", found, xq)
    else:
        dist = np.sqrt(((found - xq[:, None, :]) ** 2).sum(-1))
    dist[ids < 0] = np.inf  # faiss's "no result"
    threshold = np.asarray(splits.gt_distances)[:, count - 1:count] + epsilon
    return float((dist <= threshold).sum(1).mean() / count)


def recalls(ids: np.ndarray, splits: Splits, ranks=RANKS) -> dict:
    """``{R: recall@R}`` of the true nearest neighbour, and ``"10@10"`` (ann-benchmarks'
    recall, :func:`knn_recall`) when the data set carries its true distances."""
    out: dict = recall_at(ids, splits.gt, ranks)
    if splits.gt_distances is not None and ids.shape[1] >= 10:
        out["10@10"] = knn_recall(ids, splits)
    return out


def lattice_codes(d: int) -> dict[str, dict[str, int]]:
    """``{"lattice64": {"r2": 79, "bits": 64}, ...}``: the sphere each budget uses for
    ``d``-dim outputs and the bits its codes really take."""
    return {f"lattice{b}": dict(zip(("r2", "bits"), lattice_radius(d, b), strict=True))
            for b in BUDGETS}


def flat_search(xb: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
    """Exact L2 search of ``xq`` among ``xb`` (faiss IndexFlatL2)."""
    index = faiss.IndexFlatL2(xb.shape[1])
    index.add(np.ascontiguousarray(xb, dtype=np.float32))
    return index.search(np.ascontiguousarray(xq, dtype=np.float32), k)[1]


def lattice_ids(yb: np.ndarray, yq: np.ndarray, r2: int, k: int) -> np.ndarray:
    """Database coded on the Zn sphere, queries not quantized (asymmetric search)."""
    codec = ZnCodec(yb.shape[1], r2)
    return flat_search(codec.decode(codec.encode(yb)), yq, k)


def catalyzer_recalls(net: torch.nn.Module, splits: Splits, codes: str,
                      k: int = 100, yb: np.ndarray | None = None) -> dict[str, dict]:
    """``{"lattice64": {1: r, 10: r, ...}, ...}`` or ``{"binary64": ...}`` for ``net``, and the
    recall of its unquantized output (``"catalyzer24 (float)"``); ``yb: [nb, d_out]``: the
    database's outputs when the caller has them already (else embedded here)."""
    yb = embed(net, splits.xb).numpy() if yb is None else yb
    yq = embed(net, splits.xq).numpy()
    k = min(k, len(yb))
    out = {f"catalyzer{yb.shape[1]} (float)": recalls(flat_search(yb, yq, k), splits)}
    if codes == "lattice":
        for bits in BUDGETS:
            r2, _ = lattice_radius(yb.shape[1], bits)
            out[f"lattice{bits}"] = recalls(lattice_ids(yb, yq, r2, k), splits)
    else:
        bits = yb.shape[1]
        out[f"binary{bits}"] = recalls(
            hamming_search(sign_codes(yb), sign_codes(yq), k), splits)
    return out


def pad_dims(x: np.ndarray, multiple: int) -> np.ndarray:
    """``x: [n, d]`` as float32 ``[n, d']``, zero-padded to ``d'`` the next multiple of
    ``multiple`` (PQ needs d % M == 0; L2 distances are unchanged)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    extra = -x.shape[1] % multiple
    return np.pad(x, ((0, 0), (0, extra))) if extra else x


def faiss_recall(factory: Callable[[int], faiss.Index], splits: Splits, pad: int = 1,
                 k: int = 100, n_train: int = 100_000) -> dict[int, float]:
    xt, xb, xq = (pad_dims(x, pad) for x in (splits.xt[:n_train], splits.xb, splits.xq))
    index = factory(xb.shape[1])
    index.train(xt)
    index.add(xb)
    return recalls(index.search(xq, min(k, len(xb)))[1], splits)


def projected_lattice_recall(splits: Splits, r2: int, how: str, d_out: int = 24,
                             k: int = 100) -> dict[int, float]:
    """The lattice without a catalyzer: PCA or a random rotation to ``d_out``, normalised."""
    d = splits.d
    if how == "pca":
        proj = faiss.PCAMatrix(d, d_out)
        proj.train(np.ascontiguousarray(splits.xt, dtype=np.float32))
    else:
        proj = faiss.RandomRotationMatrix(d, d_out)
        proj.init(1234)
    f = lambda x: unit(proj.apply(np.ascontiguousarray(x, dtype=np.float32)))  # noqa: E731
    return recalls(lattice_ids(f(splits.xb), f(splits.xq), r2, min(k, len(splits.xb))), splits)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def baseline_recalls(splits: Splits, bits_list=(16, 32, 64)) -> dict[str, dict[int, float]]:
    """faiss PQ, OPQ, LSH, ITQ (when bits <= d) and the raw lattice on a PCA / random
    rotation to 24-d (when d >= 24)."""
    d, out = splits.d, {}
    for bits in bits_list:
        m = bits // 8
        t0 = time.perf_counter()
        out[f"pq{bits}"] = faiss_recall(lambda dd, m=m: faiss.IndexPQ(dd, m, 8), splits, pad=m)
        out[f"opq{bits}"] = faiss_recall(
            # np: no polysemous training (it only permutes centroids: same results, minutes)
            lambda dd, m=m: faiss.index_factory(dd, f"OPQ{m},PQ{m}np"), splits, pad=m)
        out[f"lsh{bits}"] = faiss_recall(lambda dd, b=bits: faiss.IndexLSH(dd, b, True, True),
                                         splits)
        if bits <= d:
            out[f"itq{bits}"] = faiss_recall(
                lambda dd, b=bits: faiss.index_factory(dd, f"ITQ{b},LSHt"), splits)
        if bits in BUDGETS and d >= 24:  # a projection to 24-d needs d >= 24
            r2 = lattice_radius(24, bits)[0]
            out[f"pca-lattice{bits}"] = projected_lattice_recall(splits, r2, "pca")
            out[f"rotation-lattice{bits}"] = projected_lattice_recall(splits, r2, "rotation")
        log.info("baselines at %d bits: %.1f s", bits, time.perf_counter() - t0)
    return out


def nn_distances(y: np.ndarray, n: int = 5000) -> np.ndarray:
    """Distance of each of the first ``n`` points to its nearest other point (for histograms)."""
    y = np.ascontiguousarray(y[:n], dtype=np.float32)
    index = faiss.IndexFlatL2(y.shape[1])
    index.add(y)
    d2, _ = index.search(y, 2)
    return np.sqrt(np.maximum(d2[:, 1], 0))
