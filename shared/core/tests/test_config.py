from dataclasses import dataclass, field
from typing import Literal

import pytest

from dldiy_core.config import ConfigError, parse_set, resolve, save_config, to_dict


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    kind: Literal["adam", "sgd"] = "adam"


@dataclass
class Cfg:
    name: str = "x"
    layers: list[int] = field(default_factory=lambda: [8, 8])
    dropout: float | None = None
    fast: bool = False
    optim: Optim = field(default_factory=Optim)


PRESETS = {"paper": {"optim": {"lr": 0.1, "kind": "sgd"}}, "quick": {"layers": [2]}}


def test_defaults_preset_file_set_in_order(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"optim": {"lr": 0.5}, "name": "file"}')
    cfg = resolve(Cfg, PRESETS, "paper", f, ["optim.lr=2e-3", "fast=true", "layers=4,5",
                                              "dropout=0.25"])
    assert cfg.optim == Optim(lr=2e-3, kind="sgd")
    assert (cfg.name, cfg.layers, cfg.fast, cfg.dropout) == ("file", [4, 5], True, 0.25)
    assert resolve(Cfg, PRESETS, None, None, ["dropout=none"]).dropout is None
    assert resolve(Cfg, PRESETS, None, None, ["optim.betas=[0.5, 0.6]"]).optim.betas == (0.5, 0.6)


def test_round_trip_through_saved_json(tmp_path):
    cfg = resolve(Cfg, PRESETS, "quick", None, ["optim.kind=sgd"])
    save_config(cfg, tmp_path / "config.json")
    assert resolve(Cfg, PRESETS, None, tmp_path / "config.json") == cfg
    assert to_dict(cfg)["optim"]["kind"] == "sgd"


@pytest.mark.parametrize("sets, message", [
    (["optim.lrr=1"], "unknown config key 'optim.lrr'"),
    (["nokey"], "malformed --set 'nokey'"),
    (["optim..lr=1"], "malformed --set"),
    (["optim.lr=fast"], "config key 'optim.lr': expected a number"),
    (["fast=maybe"], "expected true/false"),
    (["optim.kind=rmsprop"], "is not one of ['adam', 'sgd']"),
    (["optim=3"], "config key 'optim': expected a section"),
])
def test_bad_overrides_name_the_key(sets, message):
    with pytest.raises(ConfigError) as e:
        resolve(Cfg, PRESETS, None, None, sets)
    assert message in str(e.value)


def test_unknown_preset_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'fast' .known: paper, quick"):
        resolve(Cfg, PRESETS, "fast")
    with pytest.raises(ConfigError, match="missing.json: config file not found"):
        resolve(Cfg, PRESETS, None, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        resolve(Cfg, PRESETS, None, tmp_path / "bad.json")


def test_parse_set_nests():
    assert parse_set("a.b.c= 1") == {"a": {"b": {"c": " 1"}}}


def test_a_folder_as_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, expected a file"):
        resolve(Cfg, PRESETS, None, tmp_path)
