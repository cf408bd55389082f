"""Bad input through a real CLI (the toy trainer): one line, exit 2, nothing left behind."""

import pytest

from dldiy_core.testing import assert_user_error, list_files, run_cli, run_module
from dldiy_core.toy import main


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert run_cli(main, ["--out", str(out), "--preset", "tiny"]).code == 0
    return out


@pytest.mark.parametrize("argv, fragments", [
    (["--preset", "huge"], ["unknown preset 'huge'"]),
    (["--set", "train.lrr=1"], ["unknown config key 'train.lrr'"]),
    (["--set", "hidden"], ["malformed --set 'hidden'"]),
    (["--set", "hidden=many"], ["config key 'hidden': expected an integer"]),
    (["--config", "nope.json"], ["nope.json: config file not found"]),
    (["--set", "train.device=cuda:7"], ["device 'cuda:7'"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
])
def test_bad_flags(tmp_path, argv, fragments):
    result = run_cli(main, ["--out", str(tmp_path / "run"), *argv])
    assert_user_error(result, *fragments)
    assert not (tmp_path / "run").exists()


def test_bad_resumes_change_nothing(finished_run, tmp_path):
    before = {p: (finished_run / p).read_bytes() for p in list_files(finished_run)}
    cases = [
        (["--out", str(finished_run)], "already holds a run"),
        (["--out", str(finished_run), "--resume", "--preset", "default"],
         "different config (hidden: 16 -> 64 and 1 more)"),
        (["--out", str(tmp_path / "empty"), "--resume"], "checkpoint not found"),
    ]
    for argv, fragment in cases:
        assert_user_error(run_cli(main, argv), fragment)
    assert {p: (finished_run / p).read_bytes() for p in list_files(finished_run)} == before


def test_corrupt_checkpoint(finished_run, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (finished_run / "checkpoint.safetensors").read_bytes()
    (bad / "checkpoint.safetensors").write_bytes(data[:100])
    result = run_cli(main, ["--out", str(bad), "--resume", "--preset", "tiny"])
    assert_user_error(result, "checkpoint.safetensors: not a readable checkpoint")
    (bad / "checkpoint.safetensors").write_bytes(b"\0" * 50)
    assert_user_error(run_cli(main, ["--out", str(bad), "--resume", "--preset", "tiny"]),
                      "checkpoint.safetensors")


def test_module_entry_point_in_a_subprocess(tmp_path):
    ok = run_module("dldiy_core", ["toy-train", "--out", str(tmp_path / "r"), "--preset", "tiny"])
    assert ok.code == 0 and "trained 8 steps" in ok.out
    assert_user_error(run_module("dldiy_core", ["toy-train", "--out", str(tmp_path / "r"),
                                                "--preset", "tiny"]), "already holds a run")
    assert run_module("dldiy_core", ["nope"]).code == 2


def test_output_flags_once_per_parser():
    from dldiy_core import ArgumentParser, add_output_args

    p = ArgumentParser(prog="x")
    add_output_args(p, resume=True)
    add_output_args(p, flag="--json", required=False, help="figures file")
    args = p.parse_args(["--out", "r", "--json", "f.json", "--force"])
    assert (args.out, args.json, args.force, args.resume) == ("r", "f.json", True, False)
    with pytest.raises(SystemExit):
        p.parse_args(["--out", "r", "--resume", "--force"])
    with pytest.raises(SystemExit):
        p.parse_args(["--json", "f.json"])  # --out is required
