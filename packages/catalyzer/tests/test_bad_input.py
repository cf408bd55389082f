"""Bad input, as a careful user would try it: every case is exit 2, one line naming the file or
setting, no traceback, inputs and runs byte-identical, no output or temporary file left.

The cases are a table (:func:`case_table`) over one small workspace (:func:`make_workspace`: a
tiny trained run, an index, vector files), so the same list can be counted by outcome.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dldiy_catalyzer.cli import main
from dldiy_catalyzer.config import PRESETS, CatalyzerConfig
from dldiy_catalyzer.vecs import write_vecs
from dldiy_core import save_checkpoint
from dldiy_core.testing import (
    assert_bad_input,
    assert_config_bounds,
    bad_outputs,
    clustered_points,
    failing_writes,
    run_cli,
    snapshot,
)

D = 16
SIZES = ["--set", "data.n_base=1500", "--set", "data.n_train=1000", "--set", "data.n_query=100"]


@dataclass
class Workspace:
    root: Path
    data: Path      # folder of the input files
    train: Path     # the run's data source (.fvecs)
    base: Path      # vectors indexed (.fvecs)
    queries: Path   # query vectors (.fvecs)
    run: Path       # a trained run
    index: Path     # index with raw vectors (--keep-vectors)
    plain: Path     # index without raw vectors
    bad: Path       # folder of damaged files
    cache: Path     # DLDIY_DATA

    def inputs(self) -> list[Path]:
        return [self.data, self.run, self.index, self.plain]

    def train_args(self, *sets: str) -> list[str]:
        args = ["--preset", "tiny", "--set", f"data.source={self.train}", *SIZES,
                "--set", "train.epochs=1"]
        return args + [a for s in sets for a in ("--set", s)]


def _ok(argv: list) -> None:
    result = run_cli(main, [str(a) for a in argv])
    assert result.code == 0, result.err


def make_workspace(root: Path) -> Workspace:
    """Vector files, a tiny trained run and two indexes under ``root`` (about 10 s)."""
    data, bad = root / "data", root / "bad"
    data.mkdir(parents=True)
    bad.mkdir()
    x, _ = clustered_points(3000, D, k=30, spread=0.3, seed=1)
    train = write_vecs(data / "train.fvecs", x)
    base = write_vecs(data / "base.fvecs", x[:800])
    queries = write_vecs(data / "q.fvecs", x[-5:])
    run, index, plain = root / "run", root / "index.safetensors", root / "plain.safetensors"
    ws = Workspace(root, data, train, base, queries, run, index, plain, bad, root / "cache")
    old = os.environ.get("DLDIY_DATA")
    os.environ["DLDIY_DATA"] = str(ws.cache)
    try:
        _ok(["train", "--out", run, *ws.train_args()])
        _ok(["index", "build", "--run", run, "--vectors", base, "--out", index,
             "--keep-vectors"])
        _ok(["index", "build", "--run", run, "--vectors", base, "--out", plain])
    finally:
        if old is None:
            os.environ.pop("DLDIY_DATA")
        else:
            os.environ["DLDIY_DATA"] = old
    make_bad_files(ws)
    return ws


def make_bad_files(ws: Workspace) -> None:
    b = ws.bad
    good = ws.queries.read_bytes()
    row = 4 + 4 * D
    x = np.random.default_rng(0).normal(size=(12, D)).astype(np.float32)
    (b / "dir.fvecs").mkdir()
    (b / "empty.fvecs").write_bytes(b"")
    (b / "cut.fvecs").write_bytes(good[:-3])
    (b / "zero-dim.fvecs").write_bytes(np.int32(0).tobytes() + good[4:])
    (b / "huge-dim.fvecs").write_bytes(np.int32(1 << 30).tobytes() + good[4:])
    mixed = bytearray(good)
    mixed[row:row + 4] = np.int32(3).tobytes()
    (b / "mixed.fvecs").write_bytes(bytes(mixed))
    y = x.copy()
    y[5, 2] = np.inf
    write_vecs(b / "inf-row5.fvecs", y)
    y = x.copy()
    y[7, 0] = np.nan
    write_vecs(b / "nan-row7.fvecs", y)
    write_vecs(b / "dim7.fvecs", x[:, :7])
    (b / "cut.bvecs").write_bytes(write_vecs(b / "ok.bvecs", (x > 0).astype(np.uint8))
                                  .read_bytes()[:-1])
    (b / "vectors.txt").write_text("1 2 3\n")
    np.save(b / "one-d.npy", x[0])
    np.save(b / "three-d.npy", x.reshape(3, 4, D))
    np.save(b / "strings.npy", np.array([["a"] * D]))
    np.save(b / "complex.npy", x.astype(np.complex64))
    np.save(b / "no-rows.npy", x[:0])
    np.save(b / "no-dims.npy", x[:, :0])
    y = x.copy()
    y[9, 1] = np.nan
    np.save(b / "nan-row9.npy", y)
    np.save(b / "objects.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    np.save(b / "ok.npy", x)
    (b / "cut.npy").write_bytes((b / "ok.npy").read_bytes()[:-7])
    (b / "not.npy").write_bytes(b"\x93NUMPY garbage")
    # damaged indexes and runs
    idx = ws.index.read_bytes()
    (b / "cut-index.safetensors").write_bytes(idx[:len(idx) // 2])
    flipped = bytearray(idx)
    flipped[-10] ^= 0x10  # a bit of the last tensor's data
    (b / "flipped-index.safetensors").write_bytes(bytes(flipped))
    (b / "junk-index.safetensors").write_bytes(os.urandom(256))
    (b / "empty-index.safetensors").write_bytes(b"")
    (b / "dir-index.safetensors").mkdir()
    save_checkpoint(b / "other.safetensors", {"format": "someone-else/3", "x": 1})
    edited_index(ws, b / "edited-index.safetensors")
    off_sphere_index(ws, b / "off-sphere-index.safetensors")
    old_index(ws, b / "old-index.safetensors")
    for name, damage in (("flipped-run", "flip"), ("cut-run", "cut"), ("empty-run", "none")):
        run = b / name
        run.mkdir()
        if damage == "none":
            (run / "metrics.jsonl").write_text("")
            continue
        ck = bytearray((ws.run / "checkpoint.safetensors").read_bytes())
        if damage == "flip":
            ck[-100] ^= 0x01
        else:
            ck = ck[:len(ck) // 3]
        (run / "checkpoint.safetensors").write_bytes(bytes(ck))
    (b / "a-run-file").write_text("not a folder\n")
    (b / "bad.json").write_text("{not json")
    (b / "list.json").write_text("[1, 2]")
    (b / "unknown-key.json").write_text(json.dumps({"model": {"widht": 3}}))
    (b / "hidden-neg.json").write_text(json.dumps({"model": {"hidden": -4}}))


def _index_state(ws: Workspace) -> dict:
    from dldiy_core import load_checkpoint
    return load_checkpoint(ws.index)


def edited_index(ws: Workspace, path: Path) -> None:
    """A consistent file (the core's checksum recomputed) whose index fields were edited: only
    the index's own checksum can tell."""
    state = _index_state(ws)
    state["args"]["r2"] = 10
    save_checkpoint(path, state)


def off_sphere_index(ws: Workspace, path: Path) -> None:
    """Both checksums right, but row 3 is not a point of the sphere (a code out of range)."""
    from dldiy_catalyzer.index import tensors_sha256

    state = _index_state(ws)
    state["points"][3, :] = 0
    state["points"][3, 0] = 9  # 81 != r2 = 79
    state["sha256"] = tensors_sha256(state["args"], state["model"], {
        "points": state["points"], "vectors": state["vectors"]}, state["sources"])
    save_checkpoint(path, state)


def old_index(ws: Workspace, path: Path) -> None:
    state = _index_state(ws)
    state["format"] = "dldiy-catalyzer-index/1"
    state.pop("sha256", None)
    save_checkpoint(path, state)


@dataclass
class Case:
    argv: list
    name: str                   # the file or setting the line must name
    more: tuple[str, ...] = ()  # further fragments the line must hold (not misleading)
    absent: list = field(default_factory=list)

    def args(self) -> list[str]:
        return [str(a) for a in self.argv]


def case_table(ws: Workspace) -> dict[str, Case]:
    """Every bad-input case of the CLI but the outputs (:func:`output_cases`)."""
    b, run, idx = ws.bad, ws.run, ws.index
    build = ["index", "build", "--run", run, "--out", ws.root / "new.safetensors"]
    new = [ws.root / "new.safetensors"]
    search = ["index", "search", "--index", idx, "--queries"]
    train_out = ws.root / "new-run"

    def train(*sets: str, extra: tuple = ()) -> list:
        return ["train", "--out", train_out, *ws.train_args(*sets), *extra]

    t = {}
    # settings: refused when the config is built, before any work (issue 12)
    for key, value, more in [
        ("lr_schedule", "", ("empty",)), ("lr_schedule", "0,0.1", ("out of range",)),
        ("lr_schedule", "[0.1,-1]", ("out of range",)),
        ("loss.rank_positive", "0", ()), ("model.hidden", "-4", ()), ("model.d_out", "0", ()),
        ("loss.rank_negative", "1000", ("data.n_train=1000",)),
        ("loss.rank_positive", "5000", ("data.n_train=1000",)),
        ("train.batch_size", "1", ()), ("train.batch_size", "2000", ("data.n_train=1000",)),
        ("model.d_out", "12", ("codes=binary",)), ("model.d_out", "10", ("codes=lattice",)),
        ("model.d_out", "2", ("codes=lattice",)),
        ("loss.quantizer", "zn0", ()), ("loss.quantizer", "zn200", ()),
        ("loss.quantizer", "bogus", ()), ("momentum", "1.5", ()), ("momentum", "nan", ()),
        ("loss.lambda_koleo", "-1", ()), ("loss.margin", "inf", ()),
        ("data.seed", "-1", ()), ("data.n_query", "0", ()), ("data.source", "", ()),
        ("train.epochs", "-1", ()), ("train.lr", "0.1", ("unknown config key",)),
    ]:
        sets = [f"{key}={value}"]
        if key == "model.d_out" and value == "12":
            sets.append("codes=binary")
        t[f"set {key}={value}"] = Case(train(*sets), key.split(".")[-1], more, [train_out])
    t["set data.n_base above the file"] = Case(
        train("data.n_base=9999"), "train.fvecs", ("has 3000 vectors",), [train_out])
    t["set data.source=nowhere"] = Case(train("data.source=nowhere"), "nowhere",
                                        ("unknown data source",), [train_out])
    t["data source missing"] = Case(train(f"data.source={ws.data / 'gone.fvecs'}"),
                                    "gone.fvecs", ("not found",), [train_out])
    t["data source is a folder"] = Case(train(f"data.source={b / 'dir.fvecs'}"), "dir.fvecs",
                                        ("is a folder",), [train_out])
    t["data source inf at file row 5"] = Case(
        train(f"data.source={b / 'inf-row5.fvecs'}", "data.n_base=4", "data.n_train=4",
              "data.n_query=4", "train.batch_size=2", "loss.rank_positive=1",
              "loss.rank_negative=1"), "inf-row5.fvecs", ("row 5",), [train_out])
    t["data source truncated"] = Case(train(f"data.source={b / 'cut.fvecs'}"), "cut.fvecs",
                                      ("truncated",), [train_out])
    t["config file not JSON"] = Case(["train", "--out", train_out, "--config", b / "bad.json"],
                                     "bad.json", (), [train_out])
    t["config file a list"] = Case(["train", "--out", train_out, "--config", b / "list.json"],
                                   "list.json", (), [train_out])
    t["config file unknown key"] = Case(
        ["train", "--out", train_out, "--config", b / "unknown-key.json"], "widht", (),
        [train_out])
    t["config file out of range"] = Case(
        ["train", "--out", train_out, "--config", b / "hidden-neg.json"], "model.hidden",
        ("hidden-neg.json",), [train_out])
    t["config file missing"] = Case(
        ["train", "--out", train_out, "--config", b / "gone.json"], "gone.json", (),
        [train_out])
    t["train resume without a run"] = Case(train(extra=("--resume",)), "new-run",
                                           ("no run to resume",), [train_out])
    t["train resume and force"] = Case(train(extra=("--resume", "--force")), "--force", (),
                                       [train_out])
    t["train into the run"] = Case(["train", "--out", run, *ws.train_args()], "run",
                                   ("already holds a run",))
    # runs given to eval / index build
    t["eval run missing"] = Case(["eval", "--run", ws.root / "gone"], "gone", ("not found",))
    t["eval run is a file"] = Case(["eval", "--run", b / "a-run-file"], "a-run-file",
                                   ("expected a folder",))
    t["eval run without checkpoint"] = Case(["eval", "--run", b / "empty-run"], "empty-run",
                                            ("no checkpoint",))
    t["eval run flipped bit"] = Case(["eval", "--run", b / "flipped-run"], "flipped-run",
                                     ("checksum",))
    t["eval run truncated"] = Case(["eval", "--run", b / "cut-run"], "cut-run", ())
    t["build run flipped bit"] = Case(["index", "build", "--run", b / "flipped-run",
                                       "--vectors", ws.base, "--out", new[0]], "flipped-run",
                                      ("checksum",), new)
    # vectors given to index build
    for name, more in [("dir.fvecs", ("is a folder",)), ("gone.fvecs", ("not found",)),
                       ("empty.fvecs", ("empty",)), ("cut.fvecs", ("truncated",)),
                       ("zero-dim.fvecs", ("dimension 0",)),
                       ("huge-dim.fvecs", ("dimension",)), ("mixed.fvecs", ("row 1",)),
                       ("inf-row5.fvecs", ("row 5",)), ("nan-row7.fvecs", ("row 7",)),
                       ("dim7.fvecs", ("(12, 7)",)), ("cut.bvecs", ("truncated",)),
                       ("vectors.txt", ("unknown",)), ("one-d.npy", ("shape",)),
                       ("three-d.npy", ("shape",)), ("strings.npy", ("expected numbers",)),
                       ("complex.npy", ("expected numbers",)), ("no-rows.npy", ("shape",)),
                       ("no-dims.npy", ("shape",)), ("nan-row9.npy", ("row 9",)),
                       ("objects.npy", ()), ("cut.npy", ()), ("not.npy", ())]:
        t[f"build vectors {name}"] = Case([*build, "--vectors", b / name], name, more, new)
    t["build --r2 0"] = Case([*build, "--vectors", ws.base, "--r2", "0"], "--r2 0", (), new)
    t["build --r2 80"] = Case([*build, "--vectors", ws.base, "--r2", "80"], "--r2 80", (), new)
    t["build --shards 0"] = Case([*build, "--vectors", ws.base, "--shards", "0"], "--shards 0",
                                 (), new)
    t["build --shards -3"] = Case([*build, "--vectors", ws.base, "--shards", "-3"],
                                  "--shards -3", (), new)
    t["build --out not .safetensors"] = Case(
        ["index", "build", "--run", run, "--vectors", ws.base, "--out", ws.root / "i.fvecs"],
        "i.fvecs", (".safetensors",), [ws.root / "i.fvecs"])
    # indexes given to index search
    for name, more in [("cut-index.safetensors", ()), ("flipped-index.safetensors", ()),
                       ("junk-index.safetensors", ()), ("empty-index.safetensors", ()),
                       ("dir-index.safetensors", ("is a folder",)),
                       ("gone-index.safetensors", ("not found",)),
                       ("other.safetensors", ("not a catalyzer index",)),
                       ("edited-index.safetensors", ("checksum",)),
                       ("off-sphere-index.safetensors", ("row 3", "code out of range")),
                       ("old-index.safetensors", ("older version",))]:
        t[f"search index {name}"] = Case(["index", "search", "--index", b / name, "--queries",
                                          ws.queries], name, more)
    t["search index is a run checkpoint"] = Case(
        ["index", "search", "--index", run / "checkpoint.safetensors", "--queries", ws.queries],
        "checkpoint.safetensors", ("training checkpoint",))
    # queries and search flags
    for name, more in [("dir.fvecs", ("is a folder",)), ("gone.fvecs", ("not found",)),
                       ("cut.fvecs", ("truncated",)), ("nan-row7.fvecs", ("row 7",)),
                       ("dim7.fvecs", ("(12, 7)",)), ("one-d.npy", ("shape",)),
                       ("strings.npy", ("expected numbers",))]:
        t[f"search queries {name}"] = Case([*search, b / name], name, more)
    for flags, name, more in [(["--k", "0"], "--k 0", ()), (["--k", "-1"], "--k -1", ()),
                              (["--k", "5000"], "--k 5000", ("800 indexed",)),
                              (["--rerank", "-20"], "--rerank -20", (">= 0",)),
                              (["--rerank", "-1"], "--rerank -1", (">= 0",))]:
        t[f"search {' '.join(flags)}"] = Case([*search, ws.queries, *flags], name, more)
    t["search --rerank without raw vectors"] = Case(
        ["index", "search", "--index", ws.plain, "--queries", ws.queries, "--rerank", "20"],
        "--rerank 20", ("--keep-vectors",))
    t["search --out not .ivecs"] = Case([*search, ws.queries, "--out", ws.root / "ids.bvecs"],
                                        "ids.bvecs", (".ivecs",), [ws.root / "ids.bvecs"])
    return t


CASES = [
    *[f"set {k}" for k in [
        "lr_schedule=", "lr_schedule=0,0.1", "lr_schedule=[0.1,-1]", "loss.rank_positive=0",
        "model.hidden=-4", "model.d_out=0", "loss.rank_negative=1000", "loss.rank_positive=5000",
        "train.batch_size=1", "train.batch_size=2000", "model.d_out=12", "model.d_out=10",
        "model.d_out=2", "loss.quantizer=zn0", "loss.quantizer=zn200", "loss.quantizer=bogus",
        "momentum=1.5", "momentum=nan", "loss.lambda_koleo=-1", "loss.margin=inf",
        "data.seed=-1", "data.n_query=0", "data.source=", "train.epochs=-1", "train.lr=0.1"]],
    "set data.n_base above the file", "set data.source=nowhere", "data source missing",
    "data source is a folder", "data source inf at file row 5", "data source truncated",
    "config file not JSON", "config file a list", "config file unknown key",
    "config file out of range", "config file missing", "train resume without a run",
    "train resume and force", "train into the run",
    "eval run missing", "eval run is a file", "eval run without checkpoint",
    "eval run flipped bit", "eval run truncated", "build run flipped bit",
    *[f"build vectors {n}" for n in [
        "dir.fvecs", "gone.fvecs", "empty.fvecs", "cut.fvecs", "zero-dim.fvecs",
        "huge-dim.fvecs", "mixed.fvecs", "inf-row5.fvecs", "nan-row7.fvecs", "dim7.fvecs",
        "cut.bvecs", "vectors.txt", "one-d.npy", "three-d.npy", "strings.npy", "complex.npy",
        "no-rows.npy", "no-dims.npy", "nan-row9.npy", "objects.npy", "cut.npy", "not.npy"]],
    "build --r2 0", "build --r2 80", "build --shards 0", "build --shards -3",
    "build --out not .safetensors",
    *[f"search index {n}" for n in [
        "cut-index.safetensors", "flipped-index.safetensors", "junk-index.safetensors",
        "empty-index.safetensors", "dir-index.safetensors", "gone-index.safetensors",
        "other.safetensors", "edited-index.safetensors", "off-sphere-index.safetensors",
        "old-index.safetensors"]],
    "search index is a run checkpoint",
    *[f"search queries {n}" for n in [
        "dir.fvecs", "gone.fvecs", "cut.fvecs", "nan-row7.fvecs", "dim7.fvecs", "one-d.npy",
        "strings.npy"]],
    "search --k 0", "search --k -1", "search --k 5000", "search --rerank -20",
    "search --rerank -1", "search --rerank without raw vectors", "search --out not .ivecs",
]


def output_cases(ws: Workspace) -> dict[str, Case]:
    """Every ``--out``/``--json`` that must be refused: inputs (and links to them, their
    folders), runs and their files, the files an index was built from, obstacles."""
    t: dict[str, Case] = {}
    runs = [ws.run]
    base = ["index", "build", "--run", ws.run, "--vectors", ws.base]
    for out, name in [*bad_outputs(ws.root, [ws.base, ws.train], runs=runs),
                      (ws.run / "config.json", "config.json")]:
        t[f"build --out {out.relative_to(ws.root)}"] = Case([*base, "--out", out], name)
        t[f"build --out {out.relative_to(ws.root)} --force"] = Case(
            [*base, "--out", out, "--force"], name)
    search = ["index", "search", "--index", ws.index, "--queries", ws.queries]
    for out, name in [*bad_outputs(ws.root, [ws.index, ws.queries], runs=runs),
                      (ws.base, "base.fvecs")]:
        t[f"search --out {out.relative_to(ws.root)}"] = Case([*search, "--out", out], name)
    ev = ["eval", "--run", ws.run]
    for out, name in bad_outputs(ws.root, [ws.train], runs=runs):
        t[f"eval --json {out.relative_to(ws.root)}"] = Case([*ev, "--json", out], name)
    tr = ["train", *ws.train_args()]
    for out, name in bad_outputs(ws.root, [ws.train], runs=runs, folder=True):
        t[f"train --out {out.relative_to(ws.root)}"] = Case([*tr, "--out", out], name)
    for cmd, flag, folder in (("demo", "--out", True), ("bench", "--json", False)):
        args = [cmd, *ws.train_args()]
        for out, name in bad_outputs(ws.root, [ws.train], runs=runs, folder=folder):
            t[f"{cmd} {flag} {out.relative_to(ws.root)}"] = Case([*args, flag, out], name)
    curves = ["bench", *ws.train_args(), "--curves", "--plot"]
    for out, name in bad_outputs(ws.root, [ws.train], runs=runs):
        t[f"bench --plot {out.relative_to(ws.root)}"] = Case([*curves, out], name)
    tune = ["tune", *ws.train_args(), "--valid-queries", "10", "--valid-base", "50"]
    for out, name in bad_outputs(ws.root, [ws.train], runs=runs, folder=True):
        t[f"tune --out {out.relative_to(ws.root)}"] = Case([*tune, "--out", out], name)
    for out, name in bad_outputs(ws.root, [ws.train], runs=runs):
        t[f"tune --json {out.relative_to(ws.root)}"] = Case(
            [*tune, "--out", ws.root / "new-tune", "--json", out], name, (),
            [ws.root / "new-tune"])
    return t


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("ws"))


@pytest.fixture
def cache(ws, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(ws.cache))
    return ws.cache


def _check(ws: Workspace, case: Case) -> None:
    before = {p for p in ws.root.rglob("*")}
    assert_bad_input(main, case.args(), case.name, *case.more,
                     inputs=[*ws.inputs(), ws.bad], absent=case.absent)
    created = sorted(str(p) for p in set(ws.root.rglob("*")) - before
                     if p.parent != ws.root / "bad-outputs")
    assert not created, f"a refused command left files behind: {created}"


def test_config_bounds():
    assert assert_config_bounds(CatalyzerConfig, PRESETS) > 20


@pytest.mark.parametrize("name", CASES)
def test_bad_input(ws, cache, name):
    _check(ws, case_table(ws)[name])


def test_every_case_is_listed(ws):
    assert set(case_table(ws)) == set(CASES)


def test_bad_outputs(ws, cache):
    for case in output_cases(ws).values():  # demo and bench too: refused before any work
        _check(ws, case)


def test_search_never_replaces_the_files_an_index_was_built_from(ws, cache, tmp_path):
    """``--out`` on the dataset behind an index: the index remembers it (here an .ivecs
    dataset, a name the ids could otherwise take)."""
    ints = write_vecs(tmp_path / "ints.ivecs", (np.arange(40 * D).reshape(40, D) % 7))
    index = tmp_path / "ints.safetensors"
    _ok(["index", "build", "--run", ws.run, "--vectors", ints, "--out", index])
    for out in (ints, ws.run / "checkpoint.safetensors", ws.train):
        assert_bad_input(main, ["index", "search", "--index", index, "--queries", ws.queries,
                                "--out", out], out.name, inputs=[*ws.inputs(), ints, index])
    # queries in .ivecs (issue 12: `index search ... --out queries.ivecs`), with --force too
    for force in ([], ["--force"]):
        assert_bad_input(main, ["index", "search", "--index", ws.index, "--queries", ints,
                                "--out", ints, *force], "ints.ivecs", "is the input",
                         inputs=[*ws.inputs(), ints])


def test_a_full_disk_keeps_every_file(ws, cache, tmp_path):
    """Disk full at the moment an output is written: one line naming it, nothing written."""
    ids, idx = tmp_path / "ids.ivecs", tmp_path / "i.safetensors"
    out_run, rec = tmp_path / "run", tmp_path / "r.json"
    old = write_vecs(tmp_path / "old.ivecs", np.zeros((1, 1), np.int32))
    cases = [
        (["index", "build", "--run", ws.run, "--vectors", ws.base, "--out", idx], idx),
        (["index", "search", "--index", ws.index, "--queries", ws.queries, "--out", ids], ids),
        (["index", "search", "--index", ws.index, "--queries", ws.queries, "--out", old], old),
        (["eval", "--run", ws.run, "--json", rec], rec),
        (["train", "--out", out_run, *ws.train_args()], out_run / "config.json"),
    ]
    for errno_ in (errno.ENOSPC, errno.EROFS):
        for argv, out in cases:
            keep = snapshot([old])
            with failing_writes(errno_):
                assert_bad_input(main, argv, out.name, "cannot write",
                                 inputs=[*ws.inputs(), ws.bad],
                                 absent=[] if out == old else [out])
            assert snapshot([old]) == keep
            assert not (out_run / "checkpoint.safetensors").exists()
            shutil.rmtree(out_run, ignore_errors=True)


def test_outputs_under_a_file_or_in_a_missing_place(ws, cache, tmp_path):
    """An output under a file is one line naming the file; a missing folder is created."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert_bad_input(main, ["index", "search", "--index", ws.index, "--queries", ws.queries,
                            "--out", blocker / "ids.ivecs"], "blocker",
                     inputs=[*ws.inputs(), blocker])
    deep = tmp_path / "a" / "b" / "ids.ivecs"
    _ok(["index", "search", "--index", ws.index, "--queries", ws.queries, "--out", deep])
    assert deep.stat().st_size == 5 * (4 + 4 * 10)


def test_good_commands_still_work(ws, cache, tmp_path):
    """The same workspace, used right: search, re-rank, replace an output, resume, force."""
    from dldiy_catalyzer.vecs import read_vecs

    ids = tmp_path / "ids.ivecs"
    for _ in range(2):  # the second run replaces its own output
        _ok(["index", "search", "--index", ws.index, "--queries", ws.queries, "--k", "3",
             "--rerank", "20", "--out", ids])
    assert read_vecs(ids).shape == (5, 3)
    run = tmp_path / "run"
    shutil.copytree(ws.run, run)
    _ok(["train", "--out", run, *ws.train_args("train.epochs=2"), "--resume"])
    _ok(["train", "--out", run, *ws.train_args(), "--force"])
    # outputs beside a run's files are fine; replacing one of them again takes --force
    build = ["index", "build", "--run", run, "--vectors", ws.base]
    _ok([*build, "--out", run / "index.safetensors"])
    assert_bad_input(main, [*build, "--out", run / "index.safetensors"], "index.safetensors",
                     "--force", inputs=[run])
    _ok([*build, "--out", run / "index.safetensors", "--force"])
    _ok(["eval", "--run", run, "--json", run / "recall.json"])
    assert_bad_input(main, ["eval", "--run", run, "--json", run / "recall.json"], "recall.json",
                     inputs=[run])
    _ok(["eval", "--run", run, "--json", run / "recall.json", "--force"])
    for name in ("checkpoint.safetensors", "metrics.jsonl", "config.json"):  # never these
        assert_bad_input(main, ["eval", "--run", run, "--json", run / name, "--force"], name,
                         "is the input", inputs=[run])


def test_the_split_cache(ws, tmp_path, monkeypatch):
    """A cache place that cannot be written, a full disk while the splits are saved, a damaged
    cache: one line naming the cache, the source untouched, no half-built split folder."""
    sets = ws.train_args("data.seed=7")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("DLDIY_DATA", str(blocker))
    assert_bad_input(main, ["data", *sets], "not-a-folder", inputs=ws.inputs())
    cache = tmp_path / "cache"
    monkeypatch.setenv("DLDIY_DATA", str(cache))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with monkeypatch.context() as m:
        m.setattr(np, "save", full)
        assert_bad_input(main, ["data", *sets], "catalyzer", "no space left",
                         inputs=ws.inputs())
    assert not [p for p in cache.rglob("*") if p.is_file()]
    _ok(["data", *sets])
    folder = next((cache / "catalyzer").iterdir())
    xb = folder / "xb.npy"
    xb.write_bytes(xb.read_bytes()[:-40])
    assert_bad_input(main, ["data", *sets], folder.name, "damaged split cache",
                     inputs=ws.inputs())
    np.save(xb, np.zeros((3, D), np.float32))  # readable, but not the split meta.json says
    assert_bad_input(main, ["data", *sets], folder.name, "do not match", inputs=ws.inputs())


def test_a_damaged_neighbour_cache_is_computed_again(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))
    run = tmp_path / "run"
    _ok(["train", "--out", run, *ws.train_args()])
    (knn,) = (tmp_path / "cache").rglob("train_knn*.npy")
    np.save(knn, np.full((2, 2), -1))
    _ok(["train", "--out", run, *ws.train_args(), "--force"])
    ids = np.load(knn)
    assert ids.shape[0] == 1000 and ids.min() >= 0
