"""The command line on a real (tiny) run: train from an .fvecs file, index, search, errors."""

import numpy as np
import pytest

from dldiy_catalyzer.cli import main
from dldiy_catalyzer.vecs import read_vecs, write_vecs
from dldiy_core import save_checkpoint
from dldiy_core.testing import assert_user_error, list_files, run_cli


@pytest.fixture
def run(tmp_path, vectors_file):
    out = tmp_path / "run"
    sets = ["--set", f"data.source={vectors_file}", "--set", "data.n_base=1500",
            "--set", "data.n_train=1000", "--set", "data.n_query=100",
            "--set", "train.epochs=1"]
    result = run_cli(main, ["train", "--preset", "tiny", "--out", str(out), *sets])
    assert result.code == 0, result.err
    return out


def test_train_eval_index_search(run, tmp_path, vectors_file):
    result = run_cli(main, ["eval", "--run", str(run), "--json", str(tmp_path / "r.json")])
    assert result.code == 0, result.err
    assert '"recall@10"' in (tmp_path / "r.json").read_text()
    idx = tmp_path / "index.safetensors"
    assert run_cli(main, ["index", "build", "--run", str(run), "--vectors", str(vectors_file),
                          "--out", str(idx)]).code == 0
    q = write_vecs(tmp_path / "q.fvecs", read_vecs(vectors_file)[:5])
    result = run_cli(main, ["index", "search", "--index", str(idx), "--queries", str(q),
                            "--k", "3", "--out", str(tmp_path / "ids.ivecs")])
    assert result.code == 0, result.err
    ids = read_vecs(tmp_path / "ids.ivecs")
    assert ids.shape == (5, 3) and (ids < 3000).all()
    result = run_cli(main, ["index", "search", "--index", str(idx), "--queries", str(q),
                            "--k", "3", "--mmap", "--out", str(tmp_path / "mapped.ivecs")])
    assert result.code == 0, result.err
    assert np.array_equal(read_vecs(tmp_path / "mapped.ivecs"), ids)
    result = run_cli(main, ["index", "search", "--index", str(idx), "--queries", str(q),
                            "--k", "3", "--mmap", "--fast-scan", "--shortlist", "100",
                            "--out", str(tmp_path / "fast.ivecs")])
    assert result.code == 0, result.err
    assert np.array_equal(read_vecs(tmp_path / "fast.ivecs"), ids)


def test_bad_input_is_one_line(run, tmp_path, vectors_file):
    idx = tmp_path / "index.safetensors"
    run_cli(main, ["index", "build", "--run", str(run), "--vectors", str(vectors_file),
                   "--out", str(idx)])
    before = list_files(tmp_path)
    wrong_dim = write_vecs(tmp_path / "wrong.fvecs", np.ones((2, 7), np.float32))
    nan = write_vecs(tmp_path / "nan.fvecs", np.full((2, 16), np.nan, np.float32))
    cut = tmp_path / "cut.fvecs"
    cut.write_bytes(vectors_file.read_bytes()[:1000])
    other = save_checkpoint(tmp_path / "other.safetensors", {"format": "someone-else/3"})
    search = ["index", "search", "--index", str(idx), "--queries"]
    cases = [
        ([*search, str(wrong_dim)], "wrong.fvecs: vectors of shape (2, 7)"),
        ([*search, str(nan)], "nan.fvecs: row 0 has NaN or inf"),
        ([*search, str(cut)], "cut.fvecs: truncated or corrupt"),
        ([*search, str(vectors_file), "--k", "5000"],
         "--k 5000: must be between 1 and the 3000"),
        ([*search, str(vectors_file), "--fast-scan", "--shortlist", "0"],
         "--shortlist 0: must be >= 1"),
        (["index", "search", "--index", str(other), "--queries", str(vectors_file)],
         "not a catalyzer index"),
        (["train", "--out", str(tmp_path / "x"), "--set", "data.source=nowhere"],
         "unknown data source 'nowhere'"),
        (["train", "--out", str(tmp_path / "x"), "--set", f"data.source={vectors_file}",
          "--set", "data.n_base=9999"], "has 3000 vectors, the splits need"),
        (["eval", "--run", str(tmp_path / "missing")], "missing: run folder not found"),
    ]
    for argv, message in cases:
        assert_user_error(run_cli(main, argv), message)
    new = list_files(tmp_path) - before - {"wrong.fvecs", "nan.fvecs", "cut.fvecs",
                                           "other.safetensors"}
    assert not [f for f in new if not f.startswith("cache/")], new


@pytest.mark.slow
@pytest.mark.parametrize("source, sets", [
    ("glove50", ["data.n_base=20000", "data.n_train=5000", "data.n_query=200"]),
    pytest.param("fashion-mnist", ["data.n_base=5000", "data.n_train=2000", "data.n_query=100"],
                 marks=pytest.mark.integration),
])
def test_real_data_end_to_end(tmp_path, source, sets):
    out = tmp_path / "run"
    argv = ["--preset", "tiny", "--set", f"data.source={source}",
            *[a for s in sets for a in ("--set", s)]]
    assert run_cli(main, ["data", *argv]).code == 0
    result = run_cli(main, ["train", "--out", str(out), *argv, "--set", "train.epochs=2"])
    assert result.code == 0, result.err
    result = run_cli(main, ["eval", "--run", str(out), "--json", str(tmp_path / "r.json")])
    assert result.code == 0, result.err
    import json
    recalls = json.loads((tmp_path / "r.json").read_text())
    assert recalls["lattice64"]["recall@100"] > 0.3


def test_demo_and_bench_on_a_small_vector_file(tmp_path, vectors_file):
    """The whole demo/bench path, on 16-d vectors (no 24-d projection baseline is possible)."""
    import json

    sets = ["--preset", "tiny", "--set", f"data.source={vectors_file}",
            "--set", "data.n_base=1500", "--set", "data.n_train=1000", "--set", "data.n_query=100",
            "--set", "train.epochs=1"]
    result = run_cli(main, ["demo", "--out", str(tmp_path / "demo"), *sets])
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert {m["path"] for m in summary["media"]} >= {"recall_at_k.png", "spreading.png"}
    assert 0 <= summary["headlines"]["recall@10, OPQ 64 bits"] <= 1
    result = run_cli(main, ["bench", "--json", str(tmp_path / "b.json"), *sets])
    assert result.code == 0, result.err
    figures = json.loads((tmp_path / "b.json").read_text())["figures"]
    for key in ("recall10_lattice64", "recall10_opq64", "recall10_pq64", "recall10_binary64",
                "recall10_lsh64", "qps_catalyzer64", "qps_indexlattice64", "qps_pq64"):
        assert key in figures
