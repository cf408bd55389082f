"""Data as users have it: the four official BigANN / Deep1M files and ann-benchmarks HDF5
files, written here as tiny fixtures (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dldiy_catalyzer.cli import main
from dldiy_catalyzer.config import DataConfig
from dldiy_catalyzer.data import Splits, exact_knn, load_data
from dldiy_catalyzer.evaluate import knn_recall, recalls
from dldiy_catalyzer.vecs import read_vecs, read_vectors, write_vecs
from dldiy_core import UserError
from dldiy_core.testing import assert_bad_input, clustered_points, run_cli

h5py = pytest.importorskip("h5py")

D = 16


def official_files(folder: Path, suffix: str = ".fvecs", n_base: int = 1200,
                   n_learn: int = 900, n_query: int = 40, k: int = 20) -> dict[str, Path]:
    """base / learn / query in ``suffix`` and an exact ``gt.ivecs`` over the whole base."""
    folder.mkdir(parents=True, exist_ok=True)
    x, _ = clustered_points(n_base + n_learn + n_query, D, k=20, spread=0.3, seed=4)
    if suffix == ".bvecs":
        x = np.clip((x - x.min()) / (x.max() - x.min()) * 255, 0, 255).astype(np.uint8)
    xb, xt, xq = x[:n_base], x[n_base:n_base + n_learn], x[n_base + n_learn:]
    gt = exact_knn(xq, xb, k).astype(np.int32)
    return {"base": write_vecs(folder / f"base{suffix}", xb),
            "learn": write_vecs(folder / f"learn{suffix}", xt),
            "query": write_vecs(folder / f"query{suffix}", xq),
            "gt": write_vecs(folder / "gt.ivecs", gt)}


def data_config(files: dict[str, Path], **kw) -> DataConfig:
    return DataConfig(**{k: str(v) for k, v in files.items()}, **{
        "n_base": 0, "n_train": 900, "n_query": 40, **kw})


def write_hdf5(path: Path, metric: str = "euclidean", n: int = 1500, nq: int = 30,
               drop: str = "", k: int = 100) -> Path:
    """An ann-benchmarks-layout file: train (database), test, neighbors, distances."""
    x, _ = clustered_points(n + nq, D, k=20, spread=0.3, seed=5)
    train, test = x[:n], x[n:]
    if metric == "angular":
        tb = train / np.linalg.norm(train, axis=1, keepdims=True)
        tq = test / np.linalg.norm(test, axis=1, keepdims=True)
        ids = exact_knn(tq, tb, k)
        dist = 1 - np.einsum("qkd,qd->qk", tb[ids].astype(np.float64), tq)
    else:
        ids = exact_knn(test, train, k)
        dist = np.sqrt(((train[ids].astype(np.float64) - test[:, None]) ** 2).sum(-1))
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = metric
        for key, value in (("train", train), ("test", test), ("neighbors", ids),
                           ("distances", dist)):
            if key != drop:
                f.create_dataset(key, data=value)
    return path


def test_official_files_are_mapped_in_place(tmp_path):
    files = official_files(tmp_path / "data")
    s = load_data(data_config(files))
    assert (len(s.xb), len(s.xt), len(s.xq)) == (1200, 900, 40)
    for x, key in ((s.xb, "base"), (s.xt, "learn"), (s.xq, "query"), (s.gt, "gt")):
        assert isinstance(x.base, np.memmap) or isinstance(x, np.memmap), key
        assert Path(x.base.filename if hasattr(x.base, "filename") else x.filename) \
            .samefile(files[key])
    assert np.array_equal(s.gt, read_vecs(files["gt"]))
    assert np.array_equal(s.xb, read_vecs(files["base"]))
    # a second open reads the cache's meta.json only
    assert load_data(data_config(files)).folder == s.folder


@pytest.mark.parametrize("suffix", [".fvecs", ".bvecs"])
def test_official_ground_truth_computed_when_absent(tmp_path, suffix):
    files = official_files(tmp_path / "data", suffix)
    gt_file = files.pop("gt")
    s = load_data(data_config(files, n_base=1000, n_query=25, n_train=500))
    assert len(s.xb) == 1000 and len(s.xq) == 25 and len(s.xt) == 500
    assert np.array_equal(s.gt[:, 0], exact_knn(s.xq, s.xb, 1)[:, 0])
    if suffix == ".fvecs":  # the given file lists the same nearest neighbours (distinct points)
        full = load_data(data_config({**files, "gt": gt_file}))
        assert np.array_equal(full.gt[:25, 0], exact_knn(full.xq[:25], full.xb, 1)[:, 0])


def test_opening_reads_the_size_and_headers_only(tmp_path):
    """A damaged row header in the middle is not read on opening (no pass over the rows);
    the full checked reader, and the first caching of a split, refuse it."""
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    path = write_vecs(tmp_path / "x.fvecs", x)
    blob = bytearray(path.read_bytes())
    blob[20 * 20:20 * 20 + 4] = np.int32(7).tobytes()  # row 20's header
    path.write_bytes(bytes(blob))
    assert read_vecs(path).shape == (50, 4)
    with pytest.raises(UserError, match="row 20 has dimension 7"):
        read_vectors(path)
    blob[-20:-16] = np.int32(3).tobytes()  # the last row's header is read on opening
    path.write_bytes(bytes(blob))
    with pytest.raises(UserError, match="row 49 has dimension 3"):
        read_vecs(path)


def test_official_files_that_disagree(tmp_path):
    files = official_files(tmp_path / "data")
    other = official_files(tmp_path / "other", n_query=30)
    wide = write_vecs(tmp_path / "wide.fvecs", np.zeros((900, D + 1), np.float32))
    big_k = write_vecs(tmp_path / "gt-k.ivecs", np.zeros((40, 1300), np.int32))
    past = read_vecs(files["gt"]).copy()
    past[3, 2] = 1200
    past_file = write_vecs(tmp_path / "gt-past.ivecs", past)
    negative = past.copy()
    negative[3, 2] = -1
    neg_file = write_vecs(tmp_path / "gt-neg.ivecs", negative)
    for change, kw, match in [
        ({"learn": wide}, {}, "wide.fvecs: vectors of dimension 17, but data.base"),
        ({"query": wide}, {}, "wide.fvecs: vectors of dimension 17"),
        ({"gt": other["gt"]}, {}, "gt.ivecs: 30 ground-truth rows, but data.query"),
        ({"gt": big_k}, {}, "gt-k.ivecs: lists 1300 neighbours per query, more than the 1200"),
        ({"gt": past_file}, {}, "gt-past.ivecs: neighbour id 1200 is past the database's 1200"),
        ({"gt": neg_file}, {}, "gt-neg.ivecs: holds the id -1"),
        ({}, {"n_base": 500}, "gt.ivecs: neighbour id .* past the database's 500 rows .*"
                              "set data.n_base=0"),
        ({}, {"n_train": 901}, "learn.fvecs: has 900 vectors, data.n_train asks for 901"),
        ({}, {"n_query": 41}, "query.fvecs: has 40 vectors, data.n_query asks for 41"),
    ]:
        with pytest.raises(UserError, match=match):
            load_data(data_config({**files, **change}, **kw))


def test_hdf5_euclidean_is_mapped_and_scored_10_at_10(tmp_path):
    path = write_hdf5(tmp_path / "e.hdf5")
    s = load_data(DataConfig(source=str(path), n_base=0, n_train=400, n_query=30))
    assert isinstance(s.xb, np.memmap) and len(s.xb) == 1500 and s.metric == "euclidean"
    assert len(s.xt) == 400 and len(np.unique(np.asarray(s.xt), axis=0)) == 400
    exact = exact_knn(s.xq, s.xb, 100)
    assert recalls(exact, s)["10@10"] == pytest.approx(1.0)
    assert recalls(exact, s)[1] == 1.0
    shifted = exact[:, 1:]  # drops the nearest: 9 of the true 10 + the 11th
    assert knn_recall(shifted, s) == pytest.approx(0.9, abs=0.02)


def test_hdf5_angular_is_unit_normalised(tmp_path):
    path = write_hdf5(tmp_path / "a.hdf5", "angular")
    s = load_data(DataConfig(source=str(path), n_base=0, n_train=400, n_query=30))
    assert s.metric == "angular"
    assert np.allclose(np.linalg.norm(s.xb, axis=1), 1, atol=1e-5)
    assert knn_recall(exact_knn(s.xq, s.xb, 10), s) == pytest.approx(1.0)


def test_knn_recall_counts_ties_with_the_10th_neighbour(tmp_path):
    """ann-benchmarks' rule: a result within 1e-3 of the 10th true distance counts, so a
    point at the 10th neighbour's distance is as good as the 10th neighbour."""
    xq = np.zeros((1, 2), np.float32)
    xb = np.array([[i + 1.0, 0] for i in range(12)] + [[0, 10.0]], np.float32)
    gt = np.arange(12)[None, :]
    dist = (np.arange(12) + 1.0)[None, :]
    s = Splits("ties", xb, xb, xq, gt, tmp_path, gt_distances=dist)
    assert knn_recall(np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 12]]), s) == 1.0  # tie at 10
    assert knn_recall(np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 10]]), s) == 0.9  # 11 > 10
    xb[12] = [0, 10.002]
    assert knn_recall(np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 12]]), s) == 0.9


def test_hdf5_files_that_are_not_ann_benchmarks(tmp_path):
    bad = tmp_path / "no-neighbors.hdf5"
    write_hdf5(bad, drop="neighbors")
    with pytest.raises(UserError, match="no-neighbors.hdf5: no 'neighbors' dataset"):
        load_data(DataConfig(source=str(bad), n_base=0, n_train=100, n_query=10))
    few = write_hdf5(tmp_path / "k5.hdf5", k=5)
    with pytest.raises(UserError, match="k5.hdf5: 'neighbors' lists 5 per query"):
        load_data(DataConfig(source=str(few), n_base=0, n_train=100, n_query=10))
    (tmp_path / "text.hdf5").write_text("not hdf5\n")
    with pytest.raises(UserError, match="text.hdf5: not a readable HDF5 file"):
        load_data(DataConfig(source=str(tmp_path / "text.hdf5"), n_base=0, n_train=100,
                             n_query=10))
    good = write_hdf5(tmp_path / "good.hdf5")
    with pytest.raises(UserError, match="good.hdf5: neighbour id .* set data.n_base=0"):
        load_data(DataConfig(source=str(good), n_base=1000, n_train=100, n_query=10))


def _train_eval(tmp_path: Path, sets: list[str]) -> dict:
    run, out = tmp_path / "run", tmp_path / "recall.json"
    sets = [a for s in [*sets, "train.epochs=1", "data.n_train=600"] for a in ("--set", s)]
    result = run_cli(main, ["train", "--preset", "tiny", "--out", str(run), *sets])
    assert result.code == 0, result.err
    result = run_cli(main, ["eval", "--run", str(run), "--json", str(out)])
    assert result.code == 0, result.err
    return json.loads(out.read_text())


def test_cli_trains_and_evaluates_on_official_files(tmp_path):
    files = official_files(tmp_path / "data", ".bvecs")
    got = _train_eval(tmp_path, [f"data.{k}={v}" for k, v in files.items()] +
                      ["data.n_base=0", "data.n_query=40"])
    assert 0 <= got["lattice64"]["recall@10"] <= 1 and got["lattice64"]["r2"] == 79
    assert "10@10" not in got["lattice64"]


def test_cli_trains_and_evaluates_on_an_hdf5_file(tmp_path):
    path = write_hdf5(tmp_path / "glove-tiny-angular.hdf5", "angular")
    got = _train_eval(tmp_path, [f"data.source={path}", "data.n_base=0", "data.n_query=30"])
    assert 0 <= got["lattice64"]["10@10"] <= 1
    assert got["catalyzer24 (float)"]["10@10"] >= got["lattice16"]["10@10"]


def test_cli_refuses_files_that_disagree(tmp_path):
    files = official_files(tmp_path / "data")
    wide = write_vecs(tmp_path / "data" / "wide.fvecs", np.zeros((900, D + 1), np.float32))
    short_gt = write_vecs(tmp_path / "data" / "gt-short.ivecs", read_vecs(files["gt"])[:39])
    wide_gt = write_vecs(tmp_path / "data" / "gt-wide.ivecs", np.zeros((40, 1201), np.int32))
    bad_h5 = write_hdf5(tmp_path / "data" / "no-test.hdf5", drop="test")
    base = ["train", "--preset", "tiny", "--out", str(tmp_path / "run")]
    sets = [f"data.{k}={v}" for k, v in files.items()] + ["data.n_base=0", "data.n_train=600",
                                                          "data.n_query=40"]
    for extra, name, more in [
        (["data.learn=" + str(wide)], "wide.fvecs", "dimension 17"),
        (["data.n_query=41"], "query.fvecs", "data.n_query asks for 41"),
        (["data.gt=" + str(short_gt)], "gt-short.ivecs", "39 ground-truth rows"),
        (["data.gt=" + str(wide_gt)], "gt-wide.ivecs", "1201 neighbours per query"),
    ]:
        argv = base + [a for s in sets + extra for a in ("--set", s)]
        assert_bad_input(main, argv, name, more, inputs=[tmp_path / "data"],
                         absent=[tmp_path / "run"])
    argv = base + ["--set", f"data.source={bad_h5}", "--set", "data.n_base=0"]
    assert_bad_input(main, argv, "no-test.hdf5", "no 'test' dataset",
                     inputs=[tmp_path / "data"], absent=[tmp_path / "run"])
    argv = base + ["--set", f"data.base={files['base']}"]
    assert_bad_input(main, argv, "learn", "data.query", absent=[tmp_path / "run"])
    argv = base + ["--set", "data.n_base=0"]
    assert_bad_input(main, argv, "n_base=0", absent=[tmp_path / "run"])


def test_bench_on_an_hdf5_file_reports_10_at_10(tmp_path, monkeypatch):
    from dldiy_catalyzer import curves

    monkeypatch.setattr(curves, "MIN_SECONDS", 0.01)
    path = write_hdf5(tmp_path / "tiny-euclidean.hdf5")
    out = tmp_path / "b.json"
    sets = [a for s in [f"data.source={path}", "data.n_base=0", "data.n_train=600",
                        "data.n_query=30", "train.epochs=1"] for a in ("--set", s)]
    result = run_cli(main, ["bench", "--preset", "tiny", "--json", str(out), *sets])
    assert result.code == 0, result.err
    figures = json.loads(out.read_text())["figures"]
    for name in ("lattice64", "binary64", "opq64", "pq64", "lsh64"):
        assert 0 <= figures[f"knn10_{name}"] <= 1
    assert figures["source"] == str(path) and figures["n_base"] == 1500


def test_only_the_rows_used_are_read(tmp_path):
    """A damaged row past the database's n_base rows is never read; used, it is refused."""
    files = official_files(tmp_path / "data")
    del files["gt"]
    blob = bytearray(files["base"].read_bytes())
    row = 4 + 4 * D
    blob[1100 * row:1100 * row + 4] = np.int32(5).tobytes()
    files["base"].write_bytes(bytes(blob))
    s = load_data(data_config(files, n_base=1000))
    assert len(s.xb) == 1000
    with pytest.raises(UserError, match="base.fvecs: row 1100 has dimension 5"):
        load_data(data_config(files, n_base=0))
