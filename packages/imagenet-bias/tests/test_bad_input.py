"""Bad input: one line naming the file or setting, exit 2, no traceback, inputs unchanged;
unreadable images are skipped, counted and listed while the run goes on."""

import datetime
import hashlib
import json
import shutil

import pytest
import torch
from conftest import tiny_args

from dldiy_core.testing import assert_user_error, run_cli
from dldiy_imagenet_bias.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIY_DATA", str(tmp_path / "cache"))


def digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_corrupt_and_non_image_files_are_skipped_counted_and_listed(tiny_setup, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(tiny_setup["images"], images)
    (images / "n02123045" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (images / "n02123045" / "notes.txt").write_text("hello")
    (images / "n02110185" / "empty.jpg").write_bytes(b"")
    setup = {**tiny_setup, "images": images}
    r = run_cli(main, ["eval", *tiny_args(setup), "--json", str(tmp_path / "e.json")])
    assert r.code == 0, r.err
    f = json.loads((tmp_path / "e.json").read_text())["figures"]
    assert f["n_images"] == 15 and f["n_skipped"] == 3
    r = run_cli(main, ["mistakes", *tiny_args(setup), "--json", str(tmp_path / "m.json")])
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"]
               for s in json.loads((tmp_path / "m.json").read_text())["skipped"]}
    assert set(skipped) == {"broken.png", "notes.txt", "empty.jpg"}


CASES = [
    # (extra args, fragments of the one error line)
    (["--set", "data.images=/nonexistent/folder"], ["/nonexistent/folder", "not found"]),
    (["--set", "attack.epsilons=[-0.1]"], ["attack.epsilons", "-0.1"]),
    (["--set", "attack.epsilons=[nan]"], ["attack.epsilons"]),
    (["--set", "attack.epsilons=[2]"], ["attack.epsilons", "[0, 1]"]),
    (["--set", "attack.steps=0"], ["attack.steps"]),
    (["--set", "eval.batch_size=0"], ["eval.batch_size"]),
    (["--set", "eval.precision=fp8"], ["eval.precision"]),
    (["--set", "eval.depthwise=fp16"], ["eval.depthwise"]),
    (["--set", "model.name=resnet9000"], ["model.name", "resnet9000"]),
    (["--set", "critic.prototypes=0"], ["critic.prototypes"]),
    (["--set", "nope.key=1"], ["nope"]),
    (["--preset", "huge"], ["huge"]),
]


@pytest.mark.parametrize("extra,fragments", CASES)
def test_bad_settings_are_one_line(tiny_setup, extra, fragments):
    assert_user_error(run_cli(main, ["attack", *tiny_args(tiny_setup), *extra]), *fragments)


def test_unknown_class_folder(tiny_setup, tmp_path):
    images = tmp_path / "imgs"
    shutil.copytree(tiny_setup["images"], images)
    (images / "not-a-class").mkdir()
    setup = {**tiny_setup, "images": images}
    assert_user_error(run_cli(main, ["eval", *tiny_args(setup)]), "not-a-class",
                      "unknown class id")
    shutil.rmtree(images / "not-a-class")
    (images / "n99999999").mkdir()
    assert_user_error(run_cli(main, ["eval", *tiny_args(setup)]), "n99999999", "unknown class")


def test_state_dict_that_does_not_fit_names_the_keys(tiny_setup, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_setup["weights"]))
    state.pop("classifier.3.bias")
    state["head.extra"] = torch.zeros(2)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad))
    r = run_cli(main, ["eval", *tiny_args(tiny_setup), "--set", f"model.weights={bad}"])
    assert_user_error(r, "bad.safetensors", "missing keys classifier.3.bias",
                      "unexpected keys head.extra")
    torch.save({"w": torch.zeros(1), "when": datetime.date(2018, 9, 8)}, tmp_path / "p.pth")
    assert_user_error(run_cli(main, ["eval", *tiny_args(tiny_setup), "--set",
                                     f"model.weights={tmp_path / 'p.pth'}"]),
                      "p.pth", "not a readable state_dict")
    (tmp_path / "trunc.safetensors").write_bytes(tiny_setup["weights"].read_bytes()[:1000])
    assert_user_error(run_cli(main, ["eval", *tiny_args(tiny_setup), "--set",
                                     f"model.weights={tmp_path / 'trunc.safetensors'}"]),
                      "trunc.safetensors")


def test_outputs_never_replace_inputs_or_reports(tiny_setup, tmp_path):
    before = digest(tiny_setup["root"])
    # a report folder that is (or holds) the images
    assert_user_error(run_cli(main, ["report", *tiny_args(tiny_setup), "--out",
                                     str(tiny_setup["images"])]), str(tiny_setup["images"]))
    assert_user_error(run_cli(main, ["criticize", *tiny_args(tiny_setup), "--out",
                                     str(tiny_setup["root"])]), str(tiny_setup["root"]))
    # --json onto the weights file
    assert_user_error(run_cli(main, ["eval", *tiny_args(tiny_setup), "--json",
                                     str(tiny_setup["weights"])]), str(tiny_setup["weights"]))
    assert digest(tiny_setup["root"]) == before
    # a folder that holds a report is refused without --force, replaced with it
    out = tmp_path / "rep"
    assert run_cli(main, ["explain", *tiny_args(tiny_setup), "--out", str(out)]).code == 0
    page = (out / "index.html").read_bytes()
    assert_user_error(run_cli(main, ["explain", *tiny_args(tiny_setup), "--out", str(out)]),
                      str(out))
    assert (out / "index.html").read_bytes() == page
    assert run_cli(main, ["explain", *tiny_args(tiny_setup), "--out", str(out),
                          "--force"]).code == 0
    # an output where a file is in the way
    (tmp_path / "afile").write_text("x")
    assert_user_error(run_cli(main, ["study", *tiny_args(tiny_setup), "--out",
                                     str(tmp_path / "afile" / "sub")]), "afile")


def test_bad_labels_answers_and_attributes(tiny_setup, tmp_path):
    (tmp_path / "real.json").write_text(json.dumps([[1]] * 3))
    assert_user_error(run_cli(main, ["eval", *tiny_args(tiny_setup), "--set",
                                     f"data.labels={tmp_path / 'real.json'}"]),
                      "real.json", "3 label lists for 15 images")
    (tmp_path / "real2.json").write_text(json.dumps([[5000]] * 15))
    assert_user_error(run_cli(main, ["eval", *tiny_args(tiny_setup), "--set",
                                     f"data.labels={tmp_path / 'real2.json'}"]),
                      "real2.json", "class ids")
    assert_user_error(run_cli(main, ["criticize", *tiny_args(tiny_setup), "--out",
                                     str(tmp_path / "c"), "--set", "critic.labels=[zebra]"]),
                      "critic.labels", "zebra")
    (tmp_path / "attrs.json").write_text("{not json")
    assert_user_error(run_cli(main, ["criticize", *tiny_args(tiny_setup), "--out",
                                     str(tmp_path / "c2"), "--set",
                                     f"critic.attributes={tmp_path / 'attrs.json'}"]),
                      "attrs.json")
    (tmp_path / "s").mkdir()
    (tmp_path / "a.json").write_text("{}")
    assert_user_error(run_cli(main, ["analyze", "--study", str(tmp_path / "s"), "--answers",
                                     str(tmp_path / "a.json")]), "study.json")
    assert_user_error(run_cli(main, ["analyze", "--study", str(tmp_path / "nope"),
                                     "--answers", str(tmp_path / "a.json")]), "nope")


def test_real_labels_replace_the_acceptable_sets(tiny_setup, tmp_path):
    (tmp_path / "real.json").write_text(json.dumps([list(range(1000))] * 14 + [[]]))
    r = run_cli(main, ["eval", *tiny_args(tiny_setup), "--set",
                       f"data.labels={tmp_path / 'real.json'}"])
    assert r.code == 0, r.err
    f = json.loads(r.out)
    assert f["n_images"] == 14 and f["top1"] == 1.0  # every class acceptable, one image dropped
