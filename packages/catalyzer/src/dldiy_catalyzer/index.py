"""``CatalyzerIndex``: a trained catalyzer + Zn lattice codes as a faiss-like index.

Stored per vector: one 64-bit code (8 bytes for r2=79; codes are uint64 whatever r2). For
search the codes are decoded once into a dense ``[n, 24]`` float32 matrix (96 bytes per
vector in RAM while the index is searchable) and searched exactly with faiss, in shards
(``faiss.IndexShards``, one thread per shard) for large sets. ``keep_vectors`` also stores the
raw vectors (4·d bytes each) to re-rank the best candidates exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch

from dldiy_core import (
    CheckpointError,
    UserError,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
)

from .data import check_finite
from .lattice import ZnCodec
from .models import Catalyzer, embed

FORMAT = "dldiy-catalyzer-index/1"


@dataclass
class IndexArgs:
    d_in: int
    d_out: int
    hidden: int
    r2: int
    shards: int = 1


class CatalyzerIndex:
    """``add(x)``, ``search(q, k) -> (distances, ids)``, ``save(path)``, ``load(path)``."""

    def __init__(self, net: Catalyzer, r2: int = 79, shards: int = 1,
                 keep_vectors: bool = False):
        self.net = net.eval()
        self.codec = ZnCodec(net.d_out, r2)
        self.shards, self.keep_vectors = max(1, shards), keep_vectors
        self.codes = np.empty(0, dtype=np.uint64)
        self.vectors = np.empty((0, net.d_in), dtype=np.float32) if keep_vectors else None
        self._searcher: faiss.Index | None = None

    @property
    def ntotal(self) -> int:
        return len(self.codes)

    def _check(self, x: np.ndarray, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.net.d_in:
            raise UserError(f"{what}: vectors of shape {tuple(x.shape)}, the index expects "
                            f"[n, {self.net.d_in}]")
        check_finite(x, what)
        return np.ascontiguousarray(x, dtype=np.float32)

    def add(self, x: np.ndarray, what: str = "vectors") -> None:
        """Encode and append ``x: [n, d_in]``."""
        x = self._check(x, what)
        self.codes = np.concatenate([self.codes, self.codec.encode(embed(self.net, x).numpy())])
        if self.vectors is not None:
            self.vectors = np.concatenate([self.vectors, x])
        self._searcher = None

    def searcher(self) -> faiss.Index:
        """The decoded codes in faiss flat indexes (built once, sharded)."""
        if self._searcher is None:
            decoded = self.codec.decode(self.codes)
            parts = np.array_split(np.arange(self.ntotal), self.shards)
            if self.shards == 1:
                self._searcher = faiss.IndexFlatL2(self.codec.d)
                self._searcher.add(decoded)
            else:
                self._searcher = faiss.IndexShards(self.codec.d, True, True)
                self._subs = []
                for part in parts:
                    sub = faiss.IndexFlatL2(self.codec.d)
                    sub.add(decoded[part])
                    self._subs.append(sub)
                    self._searcher.add_shard(sub)
        return self._searcher

    def search(self, q: np.ndarray, k: int, rerank: int = 0, what: str = "queries"
               ) -> tuple[np.ndarray, np.ndarray]:
        """``q: [nq, d_in]`` -> ``(distances [nq, k], ids [nq, k])``, nearest first.

        ``rerank > k``: take that many lattice candidates and re-rank them by exact distance to
        the stored raw vectors (needs ``keep_vectors``).
        """
        q = self._check(q, what)
        if not 0 < k <= self.ntotal:
            raise UserError(f"k={k}: must be between 1 and the {self.ntotal} indexed vectors")
        if rerank and self.vectors is None:
            raise UserError("re-ranking needs an index built with keep_vectors")
        shortlist = min(max(k, rerank), self.ntotal)
        dist, ids = self.searcher().search(embed(self.net, q).numpy(), shortlist)
        if not rerank:
            return dist[:, :k], ids[:, :k]
        exact = ((self.vectors[ids] - q[:, None, :]) ** 2).sum(-1)
        order = np.argsort(exact, axis=1)[:, :k]
        return np.take_along_axis(exact, order, 1), np.take_along_axis(ids, order, 1)

    def save(self, path: str | Path) -> Path:
        args = IndexArgs(self.net.d_in, self.net.d_out, self.net[0].out_features,
                         self.codec.r2, self.shards)
        state = {"format": FORMAT, "args": vars(args), "model": self.net.state_dict(),
                 "codes": torch.from_numpy(self.codes.view(np.int64)),
                 "vectors": self.vectors}
        return save_checkpoint(path, state)

    @classmethod
    def load(cls, path: str | Path) -> CatalyzerIndex:
        state = load_checkpoint(path)
        if state.get("format") != FORMAT:
            raise CheckpointError(f"{path}: saved by another version or program "
                                  f"(format {state.get('format')!r}, expected {FORMAT!r})")
        try:
            args = IndexArgs(**state["args"])
        except TypeError as e:
            raise CheckpointError(f"{path}: bad index header ({e})") from None
        net = Catalyzer(args.d_in, args.d_out, args.hidden)
        load_module_state(net, state["model"], path)
        index = cls(net, args.r2, args.shards, keep_vectors=state["vectors"] is not None)
        index.codes = state["codes"].numpy().view(np.uint64).copy()
        if state["vectors"] is not None:
            index.vectors = state["vectors"].numpy() if isinstance(
                state["vectors"], torch.Tensor) else np.asarray(state["vectors"])
        return index
