"""``CatalyzerIndex``: a trained catalyzer + Zn lattice codes as a faiss-like index.

Held per vector, searchable: the lattice point's integer coordinates as int8 (``d_out`` bytes:
24 B for d_out = 24, r2 = 79, the 64-bit code), nothing else. A search decodes the int8 rows
block by block (``BLOCK`` rows at a time, a few MB whatever ``n``) to the float32 unit vectors
``p / sqrt(r2)`` and ranks them with faiss's exact L2 kernel (GEMM per query batch), so its
rankings are those of a flat search over the whole decoded ``[n, d_out]`` float32 matrix
(96 B/vector) bit for bit, in a quarter of the memory. The file can be loaded memory-mapped
(``load(path, mmap=True)``): the coordinates stay in the page cache, not in the process.
``keep_vectors`` also stores the raw vectors (4·d bytes each) to re-rank the best candidates.

``fast_scan``: the points are held instead as 4-bit codes scanned by faiss's PQ fast-scan
(:mod:`.fastscan`, 12 B/vector at d_out = 24), whose shortlist of ``shortlist x k`` candidates is
re-scored exactly: near-identical rankings, several times the queries/s. ``bf16``: queries are
embedded under bfloat16 autocast (the CPU's fast matmul path; rankings move a little).

A saved index carries a SHA-256 of its tensors (network weights, lattice points, raw vectors)
and of its settings, verified on load (besides the checksum of the core's checkpoint file): a
flipped bit or an edited field is refused with one line instead of searched, and every row must
be a point of the index's Zn sphere. It also records the files it was built from, so a later
``index search --out`` can never replace them.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
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

from .fastscan import LatticeFastScan
from .lattice import ZnCodec, sphere_problem
from .models import Catalyzer, embed
from .vecs import MAX_DIM, check_finite

FORMAT = "dldiy-catalyzer-index/3"
"""int8 lattice coordinates ``points [n, d_out]``."""
CODES_FORMAT = "dldiy-catalyzer-index/2"
"""uint64 codes ``[n]``: still read (decoded to coordinates once, not memory-mapped)."""
OLD_FORMATS = ("dldiy-catalyzer-index/1",)
"""Written before indexes carried their own checksum: refused (build the index again)."""
BLOCK = 64 * 1024
"""Database rows decoded per step of a search (a multiple of faiss's 1024-row GEMM block, so
every distance is computed exactly as by one flat search over all rows)."""
HASH_CHUNK = 1 << 24
"""Bytes hashed at a time (a memory-mapped array is read page by page, never copied whole)."""


Tensor = torch.Tensor | np.ndarray


class GrowingRows:
    """``[n, width]`` rows appended in amortised constant time per row: a buffer whose
    capacity grows geometrically, so any sequence of ``add`` and ``search`` calls copies each
    row a bounded number of times (never a re-concatenation of everything held).

    ``data``: rows to start from (a read-only memory map stays in its file until the first
    append copies it into memory). :meth:`reserve` sizes the buffer for a known total, so one
    build holds no slack.
    """

    GROWTH = 1.5

    def __init__(self, width: int, dtype, data: np.ndarray | None = None):
        self._buf = np.empty((0, width), dtype=dtype) if data is None else data
        self.n = len(self._buf)
        self._owned = data is None

    def reserve(self, total: int) -> None:
        """Room for ``total`` rows without a further copy."""
        if total > len(self._buf) or not self._owned:
            new = np.empty((max(total, self.n), self._buf.shape[1]), dtype=self._buf.dtype)
            new[:self.n] = self._buf[:self.n]
            self._buf, self._owned = new, True

    def append(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self._buf) or not self._owned:
            self.reserve(max(need, int(len(self._buf) * self.GROWTH)))
        self._buf[self.n:need] = rows
        self.n = need

    @property
    def array(self) -> np.ndarray:
        """The rows held, ``[n, width]`` (a view: no copy)."""
        return self._buf[:self.n]


def tensors_sha256(args: dict, model: dict[str, torch.Tensor], data: dict[str, Tensor | None],
                   sources: dict) -> str:
    """SHA-256 over the index settings, sources, and every tensor's name, dtype, shape, bytes
    (``data``: ``{"points": ..., "vectors": ...}``, torch tensors or numpy arrays/memmaps)."""
    h = hashlib.sha256(json.dumps({"args": args, "sources": sources}, sort_keys=True).encode())
    named = {**{f"model/{k}": v for k, v in model.items()},
             **{k: v for k, v in data.items() if v is not None}}
    for name in sorted(named):
        t = named[name]
        a = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else t
        dtype = torch.from_numpy(np.empty(0, dtype=a.dtype)).dtype  # named as torch names it
        h.update(f"\0{name}\0{dtype}\0{tuple(a.shape)}\0".encode())
        flat = a.reshape(-1).view(np.uint8) if a.size else a
        for i in range(0, flat.size, HASH_CHUNK):
            h.update(memoryview(np.ascontiguousarray(flat[i:i + HASH_CHUNK])))
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

    def __init__(self, net: Catalyzer, r2: int | None = None, shards: int = 1,
                 keep_vectors: bool = False, fast_scan: bool = False, shortlist: int = 2,
                 bf16: bool = False):
        """``r2=None``: the largest radius of a 64-bit code for ``net.d_out`` (79 for 24).
        ``shards``: threads of the exact scan; ``shortlist``: candidates per result of the
        fast scan (settings of a search, not saved with the index)."""
        if shards < 1:
            raise UserError(f"shards={shards}: must be >= 1")
        if shortlist < 1:
            raise UserError(f"shortlist={shortlist}: must be >= 1")
        self.net = net.eval()
        self.codec = ZnCodec(net.d_out, r2)
        self.shards, self.keep_vectors = shards, keep_vectors
        self.shortlist, self.bf16 = shortlist, bf16
        self.sources: dict[str, str] = {}
        """Files the index was built from (``{"vectors": path, ...}``), kept in the file."""
        self._points = GrowingRows(self.codec.d, np.int8)
        self._fast = LatticeFastScan(self.codec) if fast_scan else None
        self._vectors = GrowingRows(net.d_in, np.float32)

    @property
    def fast_scan(self) -> bool:
        return self._fast is not None

    @property
    def points(self) -> np.ndarray:
        """``[n, d_out]`` int8 lattice coordinates (``||p||^2 = r2``), possibly a memmap
        (``fast_scan``: decoded from the codes, a copy)."""
        return self._fast.points() if self._fast else self._points.array

    @property
    def vectors(self) -> np.ndarray | None:
        """``[n, d_in]`` float32 raw vectors (``keep_vectors``), else None."""
        return self._vectors.array if self.keep_vectors else None

    @property
    def codes(self) -> np.ndarray:
        """``[n]`` uint64 Zn sphere codes of the points (computed; 8 bytes each)."""
        return self.codec.codes(self.points)

    @property
    def ntotal(self) -> int:
        return self._fast.ntotal if self._fast else self._points.n

    @property
    def bytes_per_vector(self) -> float:
        """Bytes held per vector while searchable: the int8 coordinates or the fast-scan
        codes (+ raw vectors)."""
        held = self._fast.bytes_per_vector if self._fast else self.codec.d
        return held + (4 * self.net.d_in if self.keep_vectors else 0)

    def _check(self, x: np.ndarray, what: str, offset: int = 0) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.net.d_in:
            raise UserError(f"{what}: vectors of shape {tuple(x.shape)}, the index expects "
                            f"[n, {self.net.d_in}]")
        check_finite(x, what, offset)
        return np.ascontiguousarray(x, dtype=np.float32)

    def reserve(self, total: int) -> None:
        """Make room for ``total`` vectors in all (adding up to it then copies nothing)."""
        if not self._fast:
            self._points.reserve(total)
        if self.keep_vectors:
            self._vectors.reserve(total)

    def add(self, x: np.ndarray, what: str = "vectors", offset: int = 0) -> None:
        """Encode and append ``x: [n, d_in]`` (``offset``: row number of ``x[0]`` in ``what``,
        for error messages)."""
        x = self._check(x, what, offset)
        self._append(self.codec.points(self.codec.encode(embed(self.net, x).numpy())))
        if self.keep_vectors:
            self._vectors.append(x)

    def _append(self, points: np.ndarray) -> None:
        (self._fast.add if self._fast else self._points.append)(points)

    def add_outputs(self, y: np.ndarray) -> None:
        """Append vectors already embedded: ``y: [n, d_out]`` catalyzer outputs (the caller
        ran the network; an index that keeps raw vectors needs :meth:`add`)."""
        if self.keep_vectors:
            raise UserError("add_outputs: this index keeps raw vectors; add them with add()")
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 2 or y.shape[1] != self.codec.d:
            raise UserError(f"outputs of shape {tuple(y.shape)}, the index expects "
                            f"[n, {self.codec.d}]")
        self._append(self.codec.points(self.codec.encode(y)))

    def _scan(self, yq: np.ndarray, k: int, start: int, stop: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of ``yq: [nq, d_out]`` among rows ``start:stop``, block by block."""
        heap = faiss.ResultHeap(len(yq), k)
        points = self.points
        for j0 in range(start, stop, BLOCK):
            j1 = min(j0 + BLOCK, stop)
            dist, ids = faiss.knn(yq, self.codec.unit(points[j0:j1]), min(k, j1 - j0))
            heap.add_result(dist, ids + j0)
        heap.finalize()
        return heap.D, heap.I

    def _search_points(self, yq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``yq: [nq, d_out]`` -> top-``k`` ``(distances, ids)`` over every point, the rows
        split in ``shards`` parts searched in parallel threads (faiss releases the GIL), or
        the fast scan's re-scored shortlist."""
        yq = np.ascontiguousarray(yq, dtype=np.float32)
        if self._fast:
            return self._fast.search(yq, k, self.shortlist)
        n = self.ntotal
        step = -(-n // self.shards // 1024) * 1024 or 1024  # boundaries on 1024-row blocks
        ranges = [(j, min(j + step, n)) for j in range(0, n, step)]
        if len(ranges) == 1:
            return self._scan(yq, k, 0, n)
        with ThreadPoolExecutor(len(ranges)) as pool:
            parts = list(pool.map(lambda r: self._scan(yq, k, *r), ranges))
        heap = faiss.ResultHeap(len(yq), k)
        for dist, ids in parts:
            heap.add_result(dist, ids)
        heap.finalize()
        return heap.D, heap.I

    def search(self, q: np.ndarray, k: int, rerank: int = 0, what: str = "queries"
               ) -> tuple[np.ndarray, np.ndarray]:
        """``q: [nq, d_in]`` -> ``(distances [nq, k], ids [nq, k])``, nearest first (ties by
        id), the rankings of a flat L2 search over the decoded unit vectors.

        ``rerank > k``: take that many lattice candidates and re-rank them by exact distance to
        the stored raw vectors (needs ``keep_vectors``).
        """
        if not 0 < k <= self.ntotal:
            raise UserError(f"k={k}: must be between 1 and the {self.ntotal} indexed vectors")
        if rerank < 0:
            raise UserError(f"rerank={rerank}: must be >= 0 (0: no re-ranking)")
        if rerank and not self.keep_vectors:
            raise UserError(f"rerank={rerank}: re-ranking needs an index built with "
                            "keep_vectors")
        q = self._check(q, what)
        wanted = min(max(k, rerank), self.ntotal)  # lattice results (to re-rank when asked)
        dist, ids = self._search_points(embed(self.net, q, bf16=self.bf16).numpy(), wanted)
        if not rerank:
            return dist[:, :k], ids[:, :k]
        return self._rerank(q, ids, k)

    def _rerank(self, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact squared distances of the ``[nq, R]`` candidates, best ``k`` kept. Each
        distance is computed by faiss from the candidate's row where it lies (memory-mapped
        or not): no ``[nq, R, d]`` gather, only the ``[nq, R]`` distances."""
        vectors, (nq, r) = self.vectors, ids.shape
        vectors = vectors if vectors.flags.c_contiguous else np.ascontiguousarray(vectors)
        q = np.ascontiguousarray(q, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        exact = np.empty((nq, r), dtype=np.float32)
        faiss.fvec_L2sqr_by_idx(faiss.swig_ptr(exact), faiss.swig_ptr(q),
                                faiss.swig_ptr(vectors), faiss.swig_ptr(ids), q.shape[1], nq, r)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(exact, order, 1), np.take_along_axis(ids, order, 1)

    def save(self, path: str | Path) -> Path:
        """Write the index (atomically) with the checksum of its tensors."""
        args = vars(IndexArgs(self.net.d_in, self.net.d_out, self.net[0].out_features,
                              self.codec.r2, self.shards))
        model = self.net.state_dict()
        points = torch.from_numpy(np.ascontiguousarray(self.points))
        vectors = None if not self.keep_vectors else torch.from_numpy(
            np.ascontiguousarray(self.vectors, dtype=np.float32))
        sources = dict(self.sources)
        data = {"points": points, "vectors": vectors}
        state = {"format": FORMAT, "args": args, "model": model, **data, "sources": sources,
                 "sha256": tensors_sha256(args, model, data, sources)}
        return save_checkpoint(path, state)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False, fast_scan: bool = False
             ) -> CatalyzerIndex:
        """Read an index written by :meth:`save`; anything damaged, edited or of another
        program is one :class:`~dldiy_core.CheckpointError` line naming ``path``.

        ``mmap``: the lattice points and raw vectors stay in the file, memory-mapped read-only
        (the network is small and read into memory); both checksums are still verified.
        ``fast_scan``: the points are coded for the fast scan block by block as they are read
        (with ``mmap``, never held whole in memory) and only the codes are kept.
        """
        state = load_checkpoint(path, mmap=("points", "vectors") if mmap else ())
        fmt = state.get("format") if isinstance(state, dict) else None
        if fmt in OLD_FORMATS:
            raise CheckpointError(f"{path}: an index of an older version (format {fmt!r}, "
                                  "without a checksum); build it again with 'index build'")
        if fmt not in (FORMAT, CODES_FORMAT):
            what = "a training checkpoint" if isinstance(state, dict) and "trainer" in state \
                else "saved by another program or version"
            raise CheckpointError(f"{path}: not a catalyzer index ({what}: format {fmt!r}, "
                                  f"expected {FORMAT!r})")
        try:
            return cls._from_state(state, path, fmt, fast_scan)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            detail = " ".join(str(e).split())[:160]
            raise CheckpointError(f"{path}: damaged index ({type(e).__name__}: {detail})"
                                  ) from None

    @classmethod
    def _from_state(cls, state: dict[str, Any], path: str | Path, fmt: str,
                    fast_scan: bool) -> CatalyzerIndex:
        key = "points" if fmt == FORMAT else "codes"
        args, model, data, vectors = (state[k] for k in ("args", "model", key, "vectors"))
        sources = state["sources"]
        is_array = lambda t: isinstance(t, (torch.Tensor, np.ndarray))  # noqa: E731
        if not (isinstance(args, dict) and isinstance(model, dict) and isinstance(sources, dict)
                and is_array(data) and (vectors is None or is_array(vectors))
                and all(isinstance(t, torch.Tensor) for t in model.values())):
            raise CheckpointError(f"{path}: damaged index (unexpected structure)")
        if state.get("sha256") != tensors_sha256(args, model, {key: data, "vectors": vectors},
                                                 sources):
            raise CheckpointError(f"{path}: index checksum mismatch (the file was changed or "
                                  "damaged after it was written)")
        try:
            a = IndexArgs(**args)
        except TypeError as e:
            raise CheckpointError(f"{path}: bad index settings ({e})") from None
        why = a.problem()
        if why:
            raise CheckpointError(f"{path}: bad index settings ({why})")
        as_np = lambda t: t.numpy() if isinstance(t, torch.Tensor) else t  # noqa: E731
        data, vectors = as_np(data), None if vectors is None else as_np(vectors)
        n = len(data)
        if fmt == FORMAT and (data.dtype != np.int8 or data.shape != (n, a.d_out)):
            raise CheckpointError(f"{path}: damaged index (points {data.dtype} of shape "
                                  f"{tuple(data.shape)}, expected int8 [n, {a.d_out}])")
        if fmt == CODES_FORMAT and (data.dtype != np.int64 or data.ndim != 1):
            raise CheckpointError(f"{path}: damaged index (codes {data.dtype} of shape "
                                  f"{tuple(data.shape)}, expected int64 [n])")
        if vectors is not None and (vectors.dtype != np.float32
                                    or tuple(vectors.shape) != (n, a.d_in)):
            raise CheckpointError(f"{path}: damaged index (raw vectors of shape "
                                  f"{tuple(vectors.shape)}, expected [{n}, {a.d_in}])")
        shapes = {"0.weight": (a.hidden, a.d_in), "3.weight": (a.hidden, a.hidden),
                  "6.weight": (a.d_out, a.hidden)}
        for name, shape in shapes.items():  # before allocating a network of that size
            if name not in model or tuple(model[name].shape) != shape:
                got = tuple(model[name].shape) if name in model else "missing"
                raise CheckpointError(f"{path}: damaged index (weights {name} {got} do not "
                                      f"fit the settings, expected {shape})")
        if not all(torch.isfinite(t).all() for t in model.values() if t.is_floating_point()):
            raise CheckpointError(f"{path}: damaged index (NaN or inf network weights)")
        net = Catalyzer(a.d_in, a.d_out, a.hidden)
        load_module_state(net, model, path)
        index = cls(net, a.r2, a.shards, keep_vectors=vectors is not None, fast_scan=fast_scan)
        if fmt == CODES_FORMAT:
            codes = data.view(np.uint64)
            if n and codes.max() >= index.codec.codec.nv:
                raise CheckpointError(f"{path}: damaged index (a code past the "
                                      f"{index.codec.codec.nv} points of the Zn sphere)")
            data = index.codec.points(codes)
        bad = off_sphere(data, a.r2)
        if bad is not None:
            raise CheckpointError(f"{path}: damaged index (row {bad} is not a point of the Zn "
                                  f"sphere r2={a.r2}: a code out of range)")
        if fast_scan:
            for i in range(0, n, BLOCK):
                index._fast.add(data[i:i + BLOCK])
        else:
            index._points = GrowingRows(a.d_out, np.int8, data)
        if vectors is not None:
            for i in range(0, n, BLOCK):
                finite = np.isfinite(vectors[i:i + BLOCK]).all(1)
                if not finite.all():
                    raise CheckpointError(f"{path}: damaged index (NaN or inf raw vector, row "
                                          f"{i + int(np.argmin(finite))})")
            index._vectors = GrowingRows(a.d_in, np.float32, vectors)
        index.sources = {str(k): str(v) for k, v in sources.items()}
        return index


def off_sphere(points: np.ndarray, r2: int) -> int | None:
    """The first row of ``points: [n, d]`` whose squared norm is not ``r2`` (None: all are
    points of the sphere), checked block by block (a memmap is not read into memory)."""
    for i in range(0, len(points), BLOCK):
        norms = (points[i:i + BLOCK].astype(np.int32) ** 2).sum(1)
        wrong = np.flatnonzero(norms != r2)
        if len(wrong):
            return i + int(wrong[0])
    return None

