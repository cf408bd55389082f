"""The compact index: int8 lattice points (24 B/vector at 64 bits), the rankings of a flat
search over the decoded float32 codes, memory-mapped loading."""

import faiss
import numpy as np
import pytest
import torch

from dldiy_catalyzer import index as index_module
from dldiy_catalyzer.index import CatalyzerIndex
from dldiy_catalyzer.models import Catalyzer, embed
from dldiy_core import CheckpointError, load_checkpoint, save_checkpoint
from dldiy_core.testing import clustered_points


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Catalyzer(16, 24, 32).eval()


@pytest.fixture(scope="module")
def data():
    x, _ = clustered_points(5200, 16, k=30, spread=0.3, seed=3)
    return x[:5000], x[5000:]


def decoded_flat_search(index: CatalyzerIndex, q: np.ndarray, k: int):
    """The search before: every code decoded once into float32 [n, 24], faiss IndexFlatL2."""
    flat = faiss.IndexFlatL2(index.codec.d)
    flat.add(index.codec.decode(index.codes))
    return flat.search(embed(index.net, q).numpy(), k)


@pytest.mark.parametrize("r2", [79, 10])
def test_rankings_equal_the_decoded_flat_search(net, data, monkeypatch, r2):
    monkeypatch.setattr(index_module, "BLOCK", 2048)  # several blocks on 5,000 vectors
    xb, xq = data
    index = CatalyzerIndex(net, r2=r2)
    for i in range(0, len(xb), 1700):
        index.add(xb[i:i + 1700])
    if r2 == 10:  # 32-bit codes on clustered data: many vectors share a point (ties)
        assert len(np.unique(index.codes)) < 0.9 * len(xb)
    for k in (1, 10, 100):
        for nq in (7, len(xq)):  # faiss's exact path below 20 queries, GEMM above
            want_d, want_i = decoded_flat_search(index, xq[:nq], k)
            for shards in (1, 3):
                index.shards = shards
                got_d, got_i = index.search(xq[:nq], k)
                assert np.array_equal(got_i, want_i), (k, nq, shards)
                assert np.array_equal(got_d, want_d), (k, nq, shards)


def test_memory_is_24_bytes_a_vector_at_64_bits(net, data):
    xb, _ = data
    index = CatalyzerIndex(net, r2=79)
    index.add(xb)
    assert index.codec.bits == 64 and index.bytes_per_vector == 24
    assert index.points.dtype == np.int8 and index.points.nbytes == 24 * len(xb)
    held = [v for v in vars(index).values() if isinstance(v, np.ndarray)]
    assert held == []  # no decoded matrix or second copy kept beside the points
    assert CatalyzerIndex(net, r2=79, keep_vectors=True).bytes_per_vector == 24 + 4 * 16
    # the points are the lattice points of the codes
    pts = index.points.astype(np.int64)
    assert ((pts ** 2).sum(1) == 79).all()
    assert np.array_equal(index.codec.codes(index.points), index.codes)


def test_memory_mapped_load_searches_the_same(net, data, tmp_path):
    xb, xq = data
    index = CatalyzerIndex(net, r2=79, keep_vectors=True)
    index.add(xb)
    path = index.save(tmp_path / "i.safetensors")
    mapped = CatalyzerIndex.load(path, mmap=True)
    assert isinstance(mapped.points, np.memmap) and isinstance(mapped.vectors, np.memmap)
    assert not mapped.points.flags.writeable
    for rerank in (0, 50):
        want = index.search(xq, 10, rerank=rerank)
        got = mapped.search(xq, 10, rerank=rerank)
        assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
    mapped.add(xq[:5])  # adding to a mapped index copies into memory, the file is untouched
    assert mapped.ntotal == len(xb) + 5
    assert np.array_equal(CatalyzerIndex.load(path).points, index.points)


def test_damage_is_refused_in_both_loaders(net, data, tmp_path):
    xb, _ = data
    index = CatalyzerIndex(net, r2=79)
    index.add(xb[:3000])
    path = index.save(tmp_path / "i.safetensors")
    blob = bytearray(path.read_bytes())
    blob[-100] ^= 1  # inside the points
    (tmp_path / "flipped.safetensors").write_bytes(bytes(blob))
    (tmp_path / "cut.safetensors").write_bytes(bytes(blob[:len(blob) // 2]))
    state = load_checkpoint(path)
    state["points"][7, :2] = torch.tensor([9, 0], dtype=torch.int8)  # off the sphere
    state["sha256"] = index_module.tensors_sha256(
        state["args"], state["model"], {"points": state["points"], "vectors": None},
        state["sources"])
    save_checkpoint(tmp_path / "off.safetensors", state)
    for mmap in (False, True):
        for name, match in [("flipped", "checksum"), ("cut", "not a readable checkpoint"),
                            ("off", "row 7 is not a point of the Zn sphere r2=79")]:
            with pytest.raises(CheckpointError, match=match):
                CatalyzerIndex.load(tmp_path / f"{name}.safetensors", mmap=mmap)


def test_an_index_of_64_bit_codes_still_loads(net, data, tmp_path):
    """Format 2 (uint64 codes) is read and decoded to points; a code past the sphere is
    refused."""
    xb, xq = data
    index = CatalyzerIndex(net, r2=79)
    index.add(xb[:500])
    args = {"d_in": 16, "d_out": 24, "hidden": 32, "r2": 79, "shards": 1}
    model, sources = net.state_dict(), {}

    def write(codes, name):
        codes = torch.from_numpy(codes.view(np.int64))
        save_checkpoint(tmp_path / name, {
            "format": "dldiy-catalyzer-index/2", "args": args, "model": model, "codes": codes,
            "vectors": None, "sources": sources,
            "sha256": index_module.tensors_sha256(args, model, {"codes": codes, "vectors": None},
                                                  sources)})
        return tmp_path / name

    old = CatalyzerIndex.load(write(index.codes, "v2.safetensors"))
    assert np.array_equal(old.points, index.points)
    assert np.array_equal(old.search(xq, 10)[1], index.search(xq, 10)[1])
    bad = index.codes.copy()
    bad[3] = np.uint64(2**64 - 1)
    with pytest.raises(CheckpointError, match="a code past the"):
        CatalyzerIndex.load(write(bad, "v2bad.safetensors"))


def test_memory_fair_curves_and_plot(net, data, tmp_path, monkeypatch):
    """bench's figures and the curves come from one timing of each index (one function,
    :func:`curves.qps`), and the database is embedded once, by the caller."""
    from dldiy_catalyzer import bench, curves
    from dldiy_catalyzer import index as index_module
    from dldiy_catalyzer.data import Splits, exact_knn
    from dldiy_catalyzer.models import embed

    monkeypatch.setattr(curves, "MIN_SECONDS", 0.01)
    monkeypatch.setattr(curves, "NPROBES", (1, 8))
    monkeypatch.setattr(curves, "FLAT", [f for f in curves.FLAT if "OPQ" not in f[0]])
    timed, embedded = [], []
    real_qps = curves.qps

    def counting_qps(search, queries, min_seconds=None):
        timed.append(len(queries))
        return real_qps(search, queries, 0.01)

    def counting_embed(model, x, *args, **kw):
        embedded.append(len(x))
        return embed(model, x, *args, **kw)

    monkeypatch.setattr(curves, "qps", counting_qps)
    monkeypatch.setattr(bench, "qps", counting_qps)
    monkeypatch.setattr(bench, "embed", counting_embed)
    monkeypatch.setattr(index_module, "embed", counting_embed)
    xb, xq = data
    splits = Splits("clusters", xb[:3000], xb[3000:], xq, exact_knn(xq, xb[:3000], 10),
                    tmp_path)
    yb = embed(net, splits.xb).numpy()
    out = bench.speed(net, splits, yb, curves=True)
    got = out["curves"]
    assert 3000 not in embedded  # the database is never embedded again
    n_points = sum(len(v["points"]) for v in got.values())
    assert len(timed) == n_points + 1  # each curve point once, plus IndexLattice
    assert got["catalyzer-lattice-r2=79"]["points"][0]["qps"] == out["qps_catalyzer64"]
    assert got["PQ16x4fs"]["points"][0]["qps"] == out["qps_pq64_fastscan"]
    assert got["PQ8np"]["points"][0]["qps"] == out["qps_pq64"]
    assert got["catalyzer-lattice-r2=79"]["bytes_per_vector"] == 24
    assert {"PQ8np", "PQ16x4fs", "PQ24np", "PQ48x4fs"} <= set(got)
    ivf = [v for k, v in got.items() if k.startswith("IVF")]
    assert len(ivf) == 2 and all(len(v["points"]) == 2 for v in ivf)
    for bf16 in ("", "-bf16"):
        fast = got[f"catalyzer-fastscan-r2=79{bf16}"]
        assert [p["shortlist"] for p in fast["points"]] == [1, 2, 4]
        assert 12 <= fast["bytes_per_vector"] <= 12.1
    assert out["qps_catalyzer64_fastscan"] == fast["points"][1]["qps"]  # bf16, shortlist 2
    assert out["bytes_per_vector_catalyzer64_fastscan"] == fast["bytes_per_vector"]
    for v in got.values():
        assert v["bytes_per_vector"] in (8, 24) or 12 <= v["bytes_per_vector"] <= 12.1
        assert all(0 <= p["recall10"] <= 1 and p["qps"] > 0 for p in v["points"])
    png = curves.plot_curves(got, tmp_path / "curves.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
