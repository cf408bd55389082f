"""Bad input for every dldiy-muse command: each case is one line naming the file or setting,
exit 2, no traceback, inputs byte-identical and no output left (issue 12).

``bad_input_cases(base)`` builds a small user pair (``src.vec``, ``tgt.npy`` + words,
dictionaries), a run made by ``align``, damaged copies of each file, and returns every case;
the tests below run them through the CLI with ``assert_bad_input``.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from dldiy_core import UserError
from dldiy_core.testing import (
    assert_bad_input,
    assert_config_bounds,
    bad_outputs,
    corrupted_bytes,
    failing_writes,
    reads_or_refuses,
    run_cli,
    snapshot,
)
from dldiy_muse.cli import main
from dldiy_muse.config import PRESETS, MuseConfig
from dldiy_muse.dictionary_files import read_dictionary
from dldiy_muse.embeddings import Embeddings, read_npy, read_vec, write_vec

N, D = 300, 8


@dataclass
class Case:
    id: str
    argv: list
    names: tuple[str, ...]
    inputs: list = field(default_factory=list)
    absent: list = field(default_factory=list)


def _pair(base: Path) -> dict[str, Path]:
    """A planted pair as a user brings it: src.vec, tgt.npy + tgt.words.txt, dictionaries."""
    rng = np.random.default_rng(0)
    src = rng.normal(size=(N, D)).astype(np.float32)
    R, _ = np.linalg.qr(rng.normal(size=(D, D)))
    tgt = (src @ R.T + 0.01 * rng.normal(size=(N, D))).astype(np.float32)
    sw, tw = [f"s{i}" for i in range(N)], [f"t{i}" for i in range(N)]
    f = {"src": base / "src.vec", "tgt": base / "tgt.npy", "words": base / "tgt.words.txt",
         "train": base / "train.txt", "test": base / "test.txt"}
    write_vec(f["src"], Embeddings(sw, src))
    np.save(f["tgt"], tgt)
    f["words"].write_text("".join(w + "\n" for w in tw))
    f["train"].write_text("".join(f"s{i} t{i}\n" for i in range(150)))
    f["test"].write_text("".join(f"s{i} t{i}\n" for i in range(150, 250)))
    return f


def _files(f: dict[str, Path], src=None, tgt=None, train=None, test=None) -> list[str]:
    return ["--src", str(src or f["src"]), "--tgt", str(tgt or f["tgt"]),
            "--train", str(train or f["train"]), "--test", str(test or f["test"])]


def _npy(base: Path, name: str, array, words: int | None = N) -> Path:
    path = base / f"{name}.npy"
    np.save(path, array, allow_pickle=False)
    if words is not None:
        path.with_suffix(".words.txt").write_text("".join(f"t{i}\n" for i in range(words)))
    return path


def bad_input_cases(base: Path) -> list[Case]:
    """Every bad-input case of the CLI (files made under ``base``)."""
    f = _pair(base)
    good = [f["src"], f["tgt"], f["words"], f["train"], f["test"]]
    run, quick = base / "run", ["--set", "refine.iterations=1"]
    result = run_cli(main, ["align", "--mode", "supervised", *_files(f), "--out", run, *quick])
    assert result.code == 0, result.err
    outs = base / "out"
    outs.mkdir()
    cases: list[Case] = []

    def align(cid, names, *argv, inputs=(), files=None, **kw):
        out = outs / cid
        cases.append(Case(cid, ["align", "--mode", "supervised", *(files or _files(f, **kw)),
                                "--out", out, *quick, *argv], names,
                          [*good, run, *inputs], [out]))

    def raw(cid, argv, names, inputs=(), absent=()):
        cases.append(Case(cid, list(argv), names, [*good, run, *inputs], list(absent)))

    # -- outputs: never an input, never a run (refused before any work) --------------------
    raw("align-existing-run", ["align", *_files(f), "--out", run], ("run", "already holds a run"))
    raw("align-out-input-folder", ["align", *_files(f), "--out", base], (base.name,))
    raw("align-out-input-file", ["align", *_files(f), "--out", f["src"]], ("src.vec",))
    raw("align-out-under-file", ["align", *_files(f), "--out", f["train"] / "r"], ("train.txt",))
    for name, out in (("src", f["src"]), ("tgt", f["tgt"]), ("words", f["words"]),
                      ("run-dictionary", run / "dictionary.txt"),
                      ("run-checkpoint", run / "alignment.safetensors"),
                      ("run-config", run / "config.json")):
        raw(f"export-out-{name}", ["export", "--run", run, "--out", out], (out.name,))
        raw(f"export-out-{name}-force", ["export", "--run", run, "--out", out, "--force"],
            (out.name,))
    raw("eval-json-run-checkpoint", ["eval", "--run", run, "--json",
                                     run / "alignment.safetensors"], ("alignment.safetensors",))
    raw("eval-json-src", ["eval", "--run", run, "--json", f["src"]], ("src.vec",))
    raw("isomorphism-json-train", ["isomorphism", *_files(f), "--json", f["train"]],
        ("train.txt",))
    raw("study-json-run-config", ["study", *_files(f), "--json", run / "config.json"],
        ("config.json",))
    raw("bench-json-src-vec", ["bench", "--set", f"data.src={f['src']}", "--set",
                               f"data.tgt={f['tgt']}", "--json", f["src"]], ("src.vec",))
    demo = base / "demo"
    (demo / "run-supervised").mkdir(parents=True)
    shutil.copy(run / "alignment.safetensors", demo / "run-supervised")
    raw("demo-existing-runs", ["demo", "--out", demo], ("run-supervised", "already holds a run"),
        inputs=[demo])

    # -- settings out of range ------------------------------------------------------------
    for key in ("refine.max_rank=0", "adversarial.batch_size=0", "refine.iterations=-1",
                "data.normalize=scale", "seed=-1", "adversarial.min_lr=1", "unsupervised.keep=0",
                "data.max_src=0", "adversarial.smooth=nan"):
        align(f"set-{key}", (key.split("=")[0].split(".")[-1],), "--set", key)
    raw("translate-k-0", ["translate", "--run", run, "s1", "--k", "0"], ("--k",))
    raw("translate-k-negative", ["translate", "--run", run, "s1", "--k", "-3"], ("--k",))
    raw("export-max-words-negative", ["export", "--run", run, "--out", outs / "m.vec",
                                      "--max-words", "-5"], ("--max-words",),
        absent=[outs / "m.vec"])
    raw("refine-iterations-negative", ["refine", "--run", run, "--iterations", "-1"],
        ("--iterations",))
    raw("isomorphism-top-0", ["isomorphism", *_files(f), "--top", "0"], ("--top",))
    raw("isomorphism-k-0", ["isomorphism", *_files(f), "--k", "0"], ("--k",))
    raw("study-seeds-0", ["study", *_files(f), "--seeds", "0"], ("--seeds",))

    # -- corrupt .vec ---------------------------------------------------------------------
    text = f["src"].read_bytes()
    lines = text.split(b"\n")
    vecs = {
        "vec-header-more-rows": b"1000 8\n" + b"\n".join(lines[1:]),
        "vec-header-fewer-rows": b"100 8\n" + b"\n".join(lines[1:]),
        "vec-tabs": text.replace(b" ", b"\t"),
        "vec-truncated": text[: len(text) // 2],
        "vec-no-header": b"\n".join(lines[1:]),
        "vec-header-dims": b"300 9\n" + b"\n".join(lines[1:]),
        "vec-empty": b"",
        "vec-header-only": b"300 8\n",
        "vec-binary": bytes(range(256)) * 8,
    }
    for cid, blob in vecs.items():
        path = base / f"{cid}.vec"
        path.write_bytes(blob)
        align(cid, (path.name,), src=path, inputs=[path])
    path = base / "vec-header-more-rows.vec"  # the check also runs when fewer rows are read
    align("vec-header-more-rows-max-src", (path.name,), "--set", "data.max_src=50", src=path,
          inputs=[path])
    align("src-folder", ("src-folder",), src=(base / "src-folder.vec"))
    (base / "src-folder.vec").mkdir()
    align("src-missing", ("missing.vec",), src=base / "missing.vec")

    # -- corrupt .npy ---------------------------------------------------------------------
    tgt = np.load(f["tgt"])
    nan, inf = tgt.copy(), tgt.copy()
    nan[5, 3], inf[17, 0] = np.nan, np.inf
    npys = {
        "npy-nan-row": _npy(base, "npy-nan-row", nan),
        "npy-inf-row": _npy(base, "npy-inf-row", inf),
        "npy-1d": _npy(base, "npy-1d", tgt.ravel()),
        "npy-3d": _npy(base, "npy-3d", tgt.reshape(N, 2, 4)),
        "npy-strings": _npy(base, "npy-strings", np.array([["a"] * D] * N)),
        "npy-fewer-words": _npy(base, "npy-fewer-words", tgt, words=N - 1),
        "npy-empty": _npy(base, "npy-empty", np.zeros((0, D), np.float32), words=None),
        "npy-other-dim": _npy(base, "npy-other-dim", tgt[:, :6]),
    }
    (base / "npy-empty.words.txt").write_text("")
    blob = f["tgt"].read_bytes()
    npys["npy-truncated"] = _npy(base, "npy-truncated", tgt)
    npys["npy-truncated"].write_bytes(blob[: len(blob) // 2])
    npys["npy-not-npy"] = _npy(base, "npy-not-npy", tgt)
    npys["npy-not-npy"].write_bytes(b"word 1 2 3\n" * 40)
    npys["npy-pickle"] = _npy(base, "npy-pickle", tgt)
    np.save(npys["npy-pickle"], np.array([{"a": 1}] * N, dtype=object), allow_pickle=True)
    npys["npy-no-words"] = _npy(base, "npy-no-words", tgt, words=None)
    for cid, path in npys.items():
        name = "npy-other-dim" if cid == "npy-other-dim" else path.name
        if cid == "npy-no-words":
            name = "npy-no-words.words.txt"
        align(cid, (name,), tgt=path, inputs=[path])
    words = base / "dup.npy"
    np.save(words, tgt)
    words.with_suffix(".words.txt").write_text("".join(f"t{i % 200}\n" for i in range(N)))
    align("npy-duplicate-word", ("dup.words.txt",), tgt=words, inputs=[words])
    words = base / "blank.npy"
    np.save(words, tgt)
    words.with_suffix(".words.txt").write_text("t0\n\n" + "".join(f"t{i}\n" for i in range(2, N)))
    align("npy-blank-word", ("blank.words.txt",), tgt=words, inputs=[words])

    # -- corrupt dictionaries -------------------------------------------------------------
    dicts = {"dict-binary.txt": bytes(range(128, 256)) * 4,
             "dict-three-words.txt": b"s1 t1\ns2 t2 x\n",
             "dict-empty.txt": b"",
             "dict-unknown-words.txt": b"cat chat\ndog chien\n"}
    for name, blob in dicts.items():
        (base / name).write_bytes(blob)
        align(f"train-{name[:-4]}", (name,), train=base / name, inputs=[base / name])
    (base / "dict-folder.txt").mkdir()
    align("train-folder", ("dict-folder.txt",), train=base / "dict-folder.txt")
    align("test-missing", ("missing.txt",), test=base / "missing.txt")

    # -- damaged or mismatched runs -------------------------------------------------------
    def damaged(cid, change):
        copy = base / cid
        shutil.copytree(run, copy)
        change(copy / "alignment.safetensors")
        raw(cid, ["eval", "--run", copy], ("alignment.safetensors",), inputs=[copy])

    def flip(p):
        b = bytearray(p.read_bytes())
        b[-10] ^= 0xFF
        p.write_bytes(bytes(b))

    damaged("run-flipped-bit", flip)
    damaged("run-truncated", lambda p: p.write_bytes(p.read_bytes()[:100]))
    damaged("run-no-checkpoint", lambda p: p.unlink())
    raw("run-missing", ["eval", "--run", base / "no-run"], ("no-run",))
    raw("run-is-a-file", ["translate", "--run", f["train"], "s1"], ("train.txt",))
    # the run's vectors changed since align: the map no longer fits
    moved = base / "moved"
    moved.mkdir()
    for p in good:
        shutil.copy(p, moved / p.name)
    other = base / "run-other-dim"
    mf = {k: moved / p.name for k, p in f.items()}
    result = run_cli(main, ["align", "--mode", "supervised", *_files(mf), "--out", other,
                            *quick])
    assert result.code == 0, result.err
    np.save(mf["tgt"], tgt[:, :6])
    write_vec(mf["src"], Embeddings([f"s{i}" for i in range(N)], tgt[:, :6]))
    raw("refine-vectors-changed", ["refine", "--run", other], ("alignment.safetensors",),
        inputs=[other, moved])
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    base = tmp_path_factory.mktemp("muse-bad")
    return {c.id: c for c in bad_input_cases(base)}


def test_every_bad_input_is_one_line(cases):
    failures = []
    for case in cases.values():
        try:
            assert_bad_input(main, case.argv, *case.names, inputs=case.inputs,
                             absent=case.absent)
        except AssertionError as e:
            failures.append(f"{case.id}: {e}")
    assert not failures, "\n".join(failures)


def test_bad_outputs_of_export_and_align(cases, tmp_path):
    base = Path(cases["align-existing-run"].argv[-1]).parent
    src, tgt, run = base / "src.vec", base / "tgt.npy", base / "run"
    files = ["--src", src, "--tgt", tgt, "--train", base / "train.txt"]
    for out, name in bad_outputs(tmp_path, [src, tgt], runs=[run]):
        assert_bad_input(main, ["export", "--run", run, "--out", out], name,
                         inputs=[src, tgt, run])
    for out, name in bad_outputs(tmp_path, [src, tgt], runs=[run], folder=True):
        assert_bad_input(main, ["align", *files, "--out", out], name, inputs=[src, tgt, run])


def test_failing_writes_leave_nothing(cases, tmp_path):
    base = Path(cases["align-existing-run"].argv[-1]).parent
    src, tgt, run = base / "src.vec", base / "tgt.npy", base / "run"
    files = ["--mode", "supervised", "--src", src, "--tgt", tgt, "--train", base / "train.txt",
             "--set", "refine.iterations=1"]
    with failing_writes(errno.ENOSPC):
        assert_bad_input(main, ["align", *files, "--out", tmp_path / "new"],
                         "alignment.safetensors: cannot write (no space left on device)",
                         inputs=[src, tgt, run], absent=[tmp_path / "new"])
        assert_bad_input(main, ["align", *files, "--out", run, "--force"],
                         "alignment.safetensors: cannot write", inputs=[src, tgt, run])
        assert_bad_input(main, ["export", "--run", run, "--out", tmp_path / "m.vec"],
                         "m.vec: cannot write", inputs=[src, tgt, run],
                         absent=[tmp_path / "m.vec"])
        assert_bad_input(main, ["eval", "--run", run, "--json", tmp_path / "e.json"],
                         "e.json: cannot write", inputs=[src, tgt, run],
                         absent=[tmp_path / "e.json"])
        assert_bad_input(main, ["refine", "--run", run, "--iterations", "1"],
                         "cannot write", inputs=[src, tgt, run])
    for code, why in ((errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied"),
                      (errno.EIO, "input/output error")):
        with failing_writes(code):
            assert_bad_input(main, ["export", "--run", run, "--out", tmp_path / "m.vec"],
                             f"m.vec: cannot write ({why})", inputs=[src, tgt, run],
                             absent=[tmp_path / "m.vec"])


def test_force_replaces_a_run_and_never_an_input(cases, tmp_path):
    base = Path(cases["align-existing-run"].argv[-1]).parent
    src, tgt = base / "src.vec", base / "tgt.npy"
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    before = snapshot([src, tgt])
    argv = ["align", "--mode", "supervised", "--src", src, "--tgt", tgt, "--train",
            base / "train.txt", "--out", run, "--set", "refine.iterations=2"]
    assert run_cli(main, argv).code == 2
    result = run_cli(main, [*argv, "--force"])
    assert result.code == 0, result.err
    assert snapshot([src, tgt]) == before
    assert '"iterations": 2' in (run / "config.json").read_text()


def test_data_cache_that_cannot_be_written(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("not a folder\n")
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "a-file" / "cache"))
    for argv in (["data", "--pair", "man-man"], ["align", "--pair", "en-en", "--out",
                                                  tmp_path / "run"]):
        assert_bad_input(main, argv, "a-file: exists and is not a folder",
                         absent=[tmp_path / "run"])


def test_demo_replaces_only_its_own_runs(tmp_path):
    from dldiy_muse.report import TITLE, previous_demo

    (tmp_path / "summary.json").write_text('{"title": "another report"}')
    assert not previous_demo(tmp_path) and not previous_demo(tmp_path / "none")
    (tmp_path / "summary.json").write_text(f'{{"title": "{TITLE}"}}')
    assert previous_demo(tmp_path)


def test_config_bounds():
    assert assert_config_bounds(MuseConfig, PRESETS) > 50


def test_help_example_uses_muse_keys():
    from dldiy_core import resolve

    text = run_cli(main, ["align", "--help"]).out
    assert "train.epochs" not in text
    examples = [w for w in text.split() if "=" in w and "." in w.split("=")[0]]
    assert examples
    for expr in examples:
        resolve(MuseConfig, PRESETS, "quick", None, [expr.rstrip(",")])  # a real key


def test_vec_details(tmp_path):
    """A BOM, CRLF line ends and blank lines are fine; the header's count is still checked."""
    path = tmp_path / "x.vec"
    path.write_bytes(b"\xef\xbb\xbf3 2\r\na 1 2\r\n\r\nb 3 4\r\nc 5 6\r\n\n")
    emb, skipped = read_vec(path, max_words=1)
    assert emb.words == ["a"] and not skipped
    assert read_vec(path)[0].words == ["a", "b", "c"]
    path.write_bytes(b"4 2\na 1 2\nb 3 4\nc 5 6\n")
    for max_words in (None, 1, 3, 10):
        with pytest.raises(UserError, match="the header says 4 rows, the file has 3"):
            read_vec(path, max_words)


VALID_VEC = b"4 3\nle 0.1 0.2 0.3\nchat 1 2 3\n" + "été".encode() + b" -1 0.5 2e-3\nx 0 0 1\n"


@settings(max_examples=150, deadline=None)
@given(corrupted_bytes(VALID_VEC))
def test_read_vec_reads_or_refuses(blob):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.vec"
        path.write_bytes(blob)
        for max_words in (None, 2):
            got = reads_or_refuses(read_vec, path, max_words)
            if got is not None:
                emb, skipped = got
                assert np.isfinite(emb.vectors).all() and len(emb.words) == len(emb.vectors)
                assert len(set(emb.words)) == len(emb.words)
                header = int(blob.split(b"\n", 1)[0].split()[0])
                assert header >= len(emb.words)  # the header's count was checked


def _valid_npy() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        np.save(Path(d) / "v.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
        return (Path(d) / "v.npy").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_bytes(_valid_npy()))
def test_read_npy_reads_or_refuses(blob):
    with tempfile.TemporaryDirectory() as d:
        path, words = Path(d) / "v.npy", Path(d) / "v.words.txt"
        path.write_bytes(blob)
        words.write_text("a\nb\nc\nd\n")
        got = reads_or_refuses(read_npy, path, words)
        if got is not None:
            assert got.vectors.shape == (4, got.vectors.shape[1])
            assert np.isfinite(got.vectors).all()


@settings(max_examples=100, deadline=None)
@given(corrupted_bytes("cat chat\ndog chien\ngrand-père grandfather\n".encode()))
def test_read_dictionary_reads_or_refuses(blob):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "d.txt"
        path.write_bytes(blob)
        got = reads_or_refuses(read_dictionary, path)
        if got is not None:
            assert all(len(p) == 2 and all(p) for p in got)
