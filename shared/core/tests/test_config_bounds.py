"""Every setting is range-checked when the config is built; assert_config_bounds walks them."""

import json
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings

from dldiy_core import ConfigError, bounded, check_config, resolve
from dldiy_core import config as config_module
from dldiy_core.testing import assert_config_bounds, corrupted_bytes, reads_or_refuses


@dataclass
class Model:
    hidden: int = bounded(64, ge=1)
    dropout: float = bounded(0.1, ge=0, lt=1)
    kernels: list[int] = bounded([3, 5], ge=1, le=99)
    scale: float | None = bounded(None, gt=0)
    patience: float = bounded(math.inf, gt=0, finite=False)
    bias: float = bounded(0.0)
    kind: str = "mlp"
    fast: bool = False

    def check(self) -> None:
        if self.hidden % 2:
            raise ValueError(f"hidden={self.hidden} must be even")


@dataclass
class Cfg:
    lr: float = bounded(1e-3, gt=0, le=10)
    steps: int = bounded(10, ge=0)
    model: Model = field(default_factory=Model)


PRESETS = {"paper": {"lr": 0.1, "model": {"hidden": 512}}, "quick": {"steps": 2}}


def error(sets, cls=Cfg):
    with pytest.raises(ConfigError) as e:
        resolve(cls, PRESETS, None, None, sets)
    return str(e.value)


@pytest.mark.parametrize("sets, message", [
    (["model.hidden=0"], "config key 'model.hidden': 0 is out of range (must be >= 1)"),
    (["model.hidden=-4"], "config key 'model.hidden': -4 is out of range (must be >= 1)"),
    (["model.dropout=1.5"], "'model.dropout': 1.5 is out of range (must be >= 0 and < 1)"),
    (["model.dropout=1"], "'model.dropout': 1.0 is out of range"),
    (["model.dropout=-0.0001"], "'model.dropout': -0.0001 is out of range"),
    (["lr=0"], "config key 'lr': 0.0 is out of range (must be > 0 and <= 10)"),
    (["lr=-1"], "config key 'lr': -1.0 is out of range"),
    (["lr=nan"], "config key 'lr': nan is not a number (must be finite)"),
    (["lr=inf"], "config key 'lr': inf is infinite (must be finite)"),
    (["steps=-1"], "config key 'steps': -1 is out of range (must be >= 0)"),
    (["model.kernels=3,0"], "config key 'model.kernels': 0 is out of range (must be >= 1"),
    (["model.kernels=[3, 100]"], "'model.kernels': 100 is out of range"),
    (["model.scale=0"], "config key 'model.scale': 0.0 is out of range (must be > 0)"),
    (["model.bias=nan"], "config key 'model.bias': nan is not a number"),
    (["model.bias=-inf"], "config key 'model.bias': -inf is infinite"),
    (["model.patience=-inf"], "config key 'model.patience': -inf is out of range (must be > 0)"),
    (["model.patience=nan"], "'model.patience': nan is out of range"),
    (["model.hidden=7"], "config 'model': hidden=7 must be even"),
])
def test_out_of_range_settings_are_one_clear_error(sets, message):
    assert message in error(sets)


def test_in_range_settings_pass():
    cfg = resolve(Cfg, PRESETS, "paper", None, ["model.scale=2", "model.patience=inf",
                                                 "model.bias=-3", "model.scale=none"])
    assert (cfg.lr, cfg.model.hidden, cfg.model.patience, cfg.model.scale) == \
        (0.1, 512, math.inf, None)
    assert Model().kernels is not Model().kernels  # a list default is a fresh copy


def test_a_config_file_with_nan_or_out_of_range_is_refused(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"lr": NaN}')
    with pytest.raises(ConfigError, match="config key 'lr': nan is not a number"):
        resolve(Cfg, PRESETS, None, f)
    f.write_text(json.dumps({"model": {"hidden": -2}}))
    with pytest.raises(ConfigError, match="'model.hidden': -2 is out of range"):
        resolve(Cfg, PRESETS, None, f)


def test_check_config_on_a_config_built_in_python():
    check_config(Cfg())
    with pytest.raises(ConfigError, match="config key 'model.dropout': 2.0 is out of range"):
        check_config(Cfg(model=Model(dropout=2.0)))
    with pytest.raises(ConfigError, match="config 'model': hidden=3 must be even"):
        check_config(Cfg(model=Model(hidden=3)))


def test_an_out_of_range_default_is_caught():
    @dataclass
    class Bad:
        n: int = bounded(0, ge=1)
    assert "config key 'n': 0 is out of range" in error([], Bad)


# ---- assert_config_bounds -----------------------------------------------------------------

def test_assert_config_bounds_walks_every_field():
    # lr: 2 bounds + 3 non-finite; steps 1; hidden 1; dropout 2 + 3; kernels 2; scale 1 + 3;
    # patience 1; bias 3
    assert assert_config_bounds(Cfg, PRESETS) == 5 + 1 + 1 + 5 + 2 + 4 + 1 + 3


def test_assert_config_bounds_fails_on_an_undeclared_numeric_field():
    @dataclass
    class Section:
        width: int = 4
        rates: list[float] = field(default_factory=list)
        label: str = "x"

    @dataclass
    class Loose:
        ok: int = bounded(1, ge=0)
        section: Section = field(default_factory=Section)
    with pytest.raises(AssertionError, match="without a declared range .*section.width, "
                                             "section.rates"):
        assert_config_bounds(Loose)


def test_assert_config_bounds_fails_on_a_preset_out_of_range():
    with pytest.raises(ConfigError, match="'model.hidden': 0 is out of range"):
        assert_config_bounds(Cfg, {**PRESETS, "broken": {"model": {"hidden": 0}}})


def test_assert_config_bounds_fails_when_a_bound_is_not_enforced(monkeypatch):
    monkeypatch.setattr(config_module, "_check_value", lambda *a: None)
    with pytest.raises(AssertionError, match="was accepted"):
        assert_config_bounds(Cfg, PRESETS)


# ---- property: any damaged config file is a config or one clear error ----------------------

VALID = json.dumps({"lr": 0.5, "steps": 3, "model": {"hidden": 8, "kernels": [3, 5],
                                                     "dropout": 0.25}}).encode()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=corrupted_bytes(VALID))
def test_damaged_config_files_are_read_or_refused(tmp_path, blob):
    path = tmp_path / "cfg.json"
    path.write_bytes(blob)
    cfg = reads_or_refuses(lambda p: resolve(Cfg, PRESETS, None, p), path)
    if cfg is not None:
        check_config(cfg)


def test_errors_from_a_config_file_name_the_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"mr": 1}')
    with pytest.raises(ConfigError, match=f"^{f}: unknown config key 'mr'"):
        resolve(Cfg, PRESETS, None, f)
    f.write_text('{"model": {"hidden": 0}}')
    with pytest.raises(ConfigError, match=f"^{f}: config key 'model.hidden': 0 is out"):
        resolve(Cfg, PRESETS, None, f)
    with pytest.raises(ConfigError, match="^config key 'model.hidden': -1 is out"):
        resolve(Cfg, PRESETS, None, f, ["model.hidden=-1"])  # the --set is at fault
    assert resolve(Cfg, PRESETS, None, f, ["model.hidden=2"]).model.hidden == 2
