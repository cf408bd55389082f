"""``CatalyzerIndex``: a trained catalyzer + Zn lattice codes as a faiss-like index.

Stored per vector: one 64-bit code (8 bytes for r2=79; codes are uint64 whatever r2). For
search the codes are decoded once into a dense ``[n, 24]`` float32 matrix (96 bytes per
vector in RAM while the index is searchable) and searched exactly with faiss, in shards
(``faiss.IndexShards``, one thread per shard) for large sets. ``keep_vectors`` also stores the
raw vectors (4·d bytes each) to re-rank the best candidates exactly.

A saved index carries a SHA-256 of its tensors (network weights, codes, raw vectors) and of its
settings, verified on load (besides the checksum of the core's checkpoint file): a flipped bit
or an edited field is refused with one line instead of searched. It also records the files it
was built from, so a later ``index search --out`` can never replace them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from .lattice import ZnCodec, sphere_problem
from .models import Catalyzer, embed
from .vecs import MAX_DIM, check_finite

FORMAT = "dldiy-catalyzer-index/2"
OLD_FORMATS = ("dldiy-catalyzer-index/1",)
"""Written before indexes carried their own checksum: refused (build the index again)."""


def tensors_sha256(args: dict, model: dict[str, torch.Tensor], codes: torch.Tensor,
                   vectors: torch.Tensor | None, sources: dict) -> str:
    """SHA-256 over the index settings, sources, and every tensor's name, dtype, shape, bytes."""
    h = hashlib.sha256(json.dumps({"args": args, "sources": sources}, sort_keys=True).encode())
    named = {**{f"model/{k}": v for k, v in model.items()}, "codes": codes}
    if vectors is not None:
        named["vectors"] = vectors
    for name in sorted(named):
        t = named[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


@dataclass
class IndexArgs:
    d_in: int
    d_out: int
    hidden: int
    r2: int
    shards: int = 1

    def problem(self) -> str | None:
        """Why these settings cannot be an index (None: they can)."""
        values = vars(self)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
            return f"settings are not integers: {values}"
        if not (0 < self.d_in <= MAX_DIM and 0 < self.hidden <= MAX_DIM and self.shards >= 1):
            return f"settings out of range: {values}"
        return sphere_problem(self.d_out, self.r2)


class CatalyzerIndex:
    """``add(x)``, ``search(q, k) -> (distances, ids)``, ``save(path)``, ``load(path)``."""

    def __init__(self, net: Catalyzer, r2: int = 79, shards: int = 1,
                 keep_vectors: bool = False):
        if shards < 1:
            raise UserError(f"shards={shards}: must be >= 1")
        self.net = net.eval()
        self.codec = ZnCodec(net.d_out, r2)
        self.shards, self.keep_vectors = shards, keep_vectors
        self.sources: dict[str, str] = {}
        """Files the index was built from (``{"vectors": path, ...}``), kept in the file."""
        self.codes = np.empty(0, dtype=np.uint64)
        self.vectors = np.empty((0, net.d_in), dtype=np.float32) if keep_vectors else None
        self._searcher: faiss.Index | None = None

    @property
    def ntotal(self) -> int:
        return len(self.codes)

    def _check(self, x: np.ndarray, what: str, offset: int = 0) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.net.d_in:
            raise UserError(f"{what}: vectors of shape {tuple(x.shape)}, the index expects "
                            f"[n, {self.net.d_in}]")
        check_finite(x, what, offset)
        return np.ascontiguousarray(x, dtype=np.float32)

    def add(self, x: np.ndarray, what: str = "vectors", offset: int = 0) -> None:
        """Encode and append ``x: [n, d_in]`` (``offset``: row number of ``x[0]`` in ``what``,
        for error messages)."""
        x = self._check(x, what, offset)
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
        if not 0 < k <= self.ntotal:
            raise UserError(f"k={k}: must be between 1 and the {self.ntotal} indexed vectors")
        if rerank < 0:
            raise UserError(f"rerank={rerank}: must be >= 0 (0: no re-ranking)")
        if rerank and self.vectors is None:
            raise UserError(f"rerank={rerank}: re-ranking needs an index built with "
                            "keep_vectors")
        q = self._check(q, what)
        shortlist = min(max(k, rerank), self.ntotal)
        dist, ids = self.searcher().search(embed(self.net, q).numpy(), shortlist)
        if not rerank:
            return dist[:, :k], ids[:, :k]
        exact = ((self.vectors[ids] - q[:, None, :]) ** 2).sum(-1)
        order = np.argsort(exact, axis=1)[:, :k]
        return np.take_along_axis(exact, order, 1), np.take_along_axis(ids, order, 1)

    def save(self, path: str | Path) -> Path:
        """Write the index (atomically) with the checksum of its tensors."""
        args = vars(IndexArgs(self.net.d_in, self.net.d_out, self.net[0].out_features,
                              self.codec.r2, self.shards))
        model = self.net.state_dict()
        codes = torch.from_numpy(self.codes.view(np.int64))
        vectors = None if self.vectors is None else torch.from_numpy(
            np.ascontiguousarray(self.vectors, dtype=np.float32))
        sources = dict(self.sources)
        state = {"format": FORMAT, "args": args, "model": model, "codes": codes,
                 "vectors": vectors, "sources": sources,
                 "sha256": tensors_sha256(args, model, codes, vectors, sources)}
        return save_checkpoint(path, state)

    @classmethod
    def load(cls, path: str | Path) -> CatalyzerIndex:
        """Read an index written by :meth:`save`; anything damaged, edited or of another
        program is one :class:`~dldiy_core.CheckpointError` line naming ``path``."""
        state = load_checkpoint(path)
        fmt = state.get("format") if isinstance(state, dict) else None
        if fmt in OLD_FORMATS:
            raise CheckpointError(f"{path}: an index of an older version (format {fmt!r}, "
                                  "without a checksum); build it again with 'index build'")
        if fmt != FORMAT:
            what = "a training checkpoint" if isinstance(state, dict) and "trainer" in state \
                else "saved by another program or version"
            raise CheckpointError(f"{path}: not a catalyzer index ({what}: format {fmt!r}, "
                                  f"expected {FORMAT!r}); build one with 'index build'")
        try:
            return cls._from_state(state, path)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            detail = " ".join(str(e).split())[:160]
            raise CheckpointError(f"{path}: damaged index ({type(e).__name__}: {detail})"
                                  ) from None

    @classmethod
    def _from_state(cls, state: dict[str, Any], path: str | Path) -> CatalyzerIndex:
        args, model, codes, vectors = (state[k] for k in ("args", "model", "codes", "vectors"))
        sources = state["sources"]
        if not (isinstance(args, dict) and isinstance(model, dict) and isinstance(sources, dict)
                and isinstance(codes, torch.Tensor)
                and (vectors is None or isinstance(vectors, torch.Tensor))
                and all(isinstance(t, torch.Tensor) for t in model.values())):
            raise CheckpointError(f"{path}: damaged index (unexpected structure)")
        if state.get("sha256") != tensors_sha256(args, model, codes, vectors, sources):
            raise CheckpointError(f"{path}: index checksum mismatch (the file was changed or "
                                  "damaged after it was written)")
        try:
            a = IndexArgs(**args)
        except TypeError as e:
            raise CheckpointError(f"{path}: bad index settings ({e})") from None
        why = a.problem()
        if why:
            raise CheckpointError(f"{path}: bad index settings ({why})")
        n = len(codes)
        if codes.dtype != torch.int64 or codes.ndim != 1:
            raise CheckpointError(f"{path}: damaged index (codes {codes.dtype} of shape "
                                  f"{tuple(codes.shape)}, expected int64 [n])")
        if vectors is not None and (vectors.dtype != torch.float32
                                    or tuple(vectors.shape) != (n, a.d_in)):
            raise CheckpointError(f"{path}: damaged index (raw vectors of shape "
                                  f"{tuple(vectors.shape)}, expected [{n}, {a.d_in}])")
        shapes = {"0.weight": (a.hidden, a.d_in), "3.weight": (a.hidden, a.hidden),
                  "6.weight": (a.d_out, a.hidden)}
        for key, shape in shapes.items():  # before allocating a network of that size
            if key not in model or tuple(model[key].shape) != shape:
                got = tuple(model[key].shape) if key in model else "missing"
                raise CheckpointError(f"{path}: damaged index (weights {key} {got} do not fit "
                                      f"the settings, expected {shape})")
        net = Catalyzer(a.d_in, a.d_out, a.hidden)
        load_module_state(net, model, path)
        index = cls(net, a.r2, a.shards, keep_vectors=vectors is not None)
        index.codes = codes.numpy().view(np.uint64).copy()
        if n and index.codes.max() >= index.codec.codec.nv:
            raise CheckpointError(f"{path}: damaged index (a code past the "
                                  f"{index.codec.codec.nv} points of the Zn sphere)")
        if vectors is not None:
            index.vectors = vectors.numpy()
            if not np.isfinite(index.vectors).all():
                raise CheckpointError(f"{path}: damaged index (NaN or inf raw vectors)")
        if not all(torch.isfinite(t).all() for t in model.values() if t.is_floating_point()):
            raise CheckpointError(f"{path}: damaged index (NaN or inf network weights)")
        index.sources = {str(k): str(v) for k, v in sources.items()}
        return index
