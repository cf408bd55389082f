"""The file readers, property-based: any damage to a valid file gives a result or one
``UserError`` line naming the file, never another exception (hypothesis)."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dldiy_catalyzer.vecs import write_vecs

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dldiy_core.testing import corrupted_bytes, reads_or_refuses  # noqa: E402

X = np.random.default_rng(3).normal(size=(6, 5)).astype(np.float32)
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _vecs_bytes(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        if suffix == ".npy":
            np.save(Path(d) / "x.npy", X)
            return (Path(d) / "x.npy").read_bytes()
        return write_vecs(Path(d) / f"x{suffix}", X if suffix == ".fvecs" else
                          (X > 0).astype(np.uint8)).read_bytes()


@pytest.mark.parametrize("suffix", [".fvecs", ".bvecs", ".npy"])
def test_vector_readers_read_or_refuse(tmp_path, suffix):
    from dldiy_catalyzer.vecs import read_vectors

    @FAST
    @given(corrupted_bytes(_vecs_bytes(suffix)))
    def check(blob):
        path = tmp_path / f"v{suffix}"
        path.write_bytes(blob)
        x = reads_or_refuses(read_vectors, path)
        if x is not None:  # what reads is a finite, non-empty [n, d] matrix
            assert x.ndim == 2 and x.shape[0] > 0 and x.shape[1] > 0
            assert np.isfinite(np.asarray(x, dtype=np.float64)).all()
    check()


@pytest.fixture(scope="module")
def index_file(tmp_path_factory):
    import torch

    from dldiy_catalyzer.index import CatalyzerIndex
    from dldiy_catalyzer.models import Catalyzer

    torch.manual_seed(0)
    index = CatalyzerIndex(Catalyzer(5, 24, 8), keep_vectors=True)
    index.add(np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32))
    return index.save(tmp_path_factory.mktemp("index") / "i.safetensors")


def test_index_reader_reads_or_refuses(index_file, tmp_path):
    from dldiy_catalyzer.index import CatalyzerIndex

    good = CatalyzerIndex.load(index_file)

    @FAST
    @given(corrupted_bytes(index_file.read_bytes()))
    def check(blob):
        path = tmp_path / "i.safetensors"
        path.write_bytes(blob)
        for mmap in (False, True):
            index = reads_or_refuses(lambda p, m=mmap: CatalyzerIndex.load(p, mmap=m), path)
            if index is not None:  # junk after the end, say: the same index
                assert np.array_equal(index.codes, good.codes)
                assert np.array_equal(index.vectors, good.vectors)
    check()


def test_idx_image_reader_reads_or_refuses(tmp_path):
    from dldiy_catalyzer.data import _read_idx_images

    raw = np.array([2051, 3, 2, 2], dtype=">i4").tobytes() + bytes(range(12))

    @FAST
    @given(st.one_of(corrupted_bytes(gzip.compress(raw)), corrupted_bytes(raw).map(gzip.compress)))
    def check(blob):
        path = tmp_path / "images.gz"
        path.write_bytes(blob)
        x = reads_or_refuses(_read_idx_images, path)
        if x is not None:
            assert x.ndim == 2 and x.shape[1] == 4
    check()
