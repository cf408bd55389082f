"""The built pairs' cache: one folder per pair under ``cache_root()``, written atomically, with
a ``meta.json`` whose ``params`` key it: build parameters, the source files' SHA-256 and the
versions of the packages that hold them. A folder whose key differs is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dldiy_core import atomic_write_text, data_cache, make_dir, os_error

from .dictionary_files import write_dictionary
from .embeddings import Embeddings

log = logging.getLogger(__name__)

def cache_root() -> Path:
    return data_cache("muse")


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and mtime within a process)."""
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _HASHES:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            _HASHES[key] = h.hexdigest()
    except OSError as e:
        raise os_error(e, path, "read") from None
    return _HASHES[key]


def debian_version(package: str) -> str:
    """The installed version of a Debian package (``""`` when not installed or no dpkg)."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def source_key(files: list[Path], dists: Sequence[str] = (), debian: Sequence[str] = ()
               ) -> dict:
    """What a built pair is made from: each source file's SHA-256 (by its last three path
    parts) and the versions of the Python distributions and Debian packages that hold them.
    A cache whose key differs is rebuilt."""
    return {"files": {"/".join(p.parts[-3:]): file_sha256(p) for p in files},
            "python": {d: importlib.metadata.version(d) for d in dists},
            "debian": {d: debian_version(d) for d in debian}}


def up_to_date(root: Path, params: dict) -> bool:
    """Whether ``root/meta.json`` records these build parameters (else: build)."""
    try:
        return json.loads((root / "meta.json").read_text(encoding="utf-8"))["params"] == params
    except (OSError, ValueError, KeyError):
        return False  # absent, unreadable or other parameters


def save_embeddings(folder: Path, lang: str, emb: Embeddings) -> None:
    np.save(folder / f"{lang}.npy", emb.vectors.astype(np.float32), allow_pickle=False)
    (folder / f"{lang}.words.txt").write_text("".join(w + "\n" for w in emb.words), "utf-8")


def write_pair(root: Path, files: dict[str, Embeddings], train: list[tuple[str, str]],
                test: list[tuple[str, str]], meta: dict, t0: float) -> Path:
    """Write the pair into a temporary folder, then rename it to ``root`` (never half-written).
    """
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_dir(tmp)
        for stem, emb in files.items():
            save_embeddings(tmp, stem, emb)
        write_dictionary(tmp / "train.txt", train)
        write_dictionary(tmp / "test.txt", test)
        meta["build_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1) + "\n")
        if root.exists():
            os.replace(root, old)
        os.replace(tmp, root)
    except OSError as e:
        raise os_error(e, root, "write") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    log.info("built %s in %.1f s: %s", root, meta["build_seconds"],
             {k: v for k, v in meta.items() if k != "params"})
    return root
