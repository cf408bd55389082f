"""Dataclass configs <-> command line: ``--preset NAME``, ``--config file.json``, ``--set a.b=v``.

Resolution order: dataclass defaults, then the preset, then the JSON file, then each ``--set``.
Presets are nested dicts of overrides, e.g. ``{"quick": {"train": {"epochs": 2}}}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError
from .io import atomic_write_text

C = TypeVar("C")


class ConfigError(UserError):
    """Unknown preset or key, malformed ``--set``, unreadable config file, wrong value type."""


def to_dict(cfg: Any) -> dict:
    """A (nested) dataclass as plain JSON types."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a JSON or string value to the annotated type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"config key '{key}': bad value {value!r}")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"config key '{key}': {value!r} is not one of {list(args)}")
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text) if text.startswith("[") else \
                    [v for v in text.split(",") if v.strip()]
            except json.JSONDecodeError as e:
                raise ConfigError(f"config key '{key}': bad list {value!r} ({e.msg})") from None
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        item = args[0] if args else Any
        seq = [_coerce(v, item, key) for v in value]
        return tuple(seq) if (origin or tp) is tuple else seq
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0",
                                                         "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, prefix=key)
    raise ConfigError(f"config key '{key}': unsupported type {tp!r}")


def from_dict(cls: type[C], data: Mapping[str, Any], prefix: str = "") -> C:
    """Build dataclass ``cls`` from a (partial) nested dict; unknown keys are errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix}': expected a section (object), got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"unknown config key '{full}' (known: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(value, hints[key], full)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config '{prefix or cls.__name__}': {e}") from None


def merge(base: dict, override: Mapping) -> dict:
    """Recursive dict merge; ``override`` wins."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def parse_set(expr: str) -> dict:
    """``"a.b=3"`` -> ``{"a": {"b": "3"}}`` (the value is typed later, from the dataclass)."""
    key, sep, value = expr.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"malformed --set '{expr}': expected KEY=VALUE, e.g. optim.lr=1e-3")
    out: dict = {parts[-1].strip(): value}
    for p in reversed(parts[:-1]):
        out = {p.strip(): out}
    return out


def load_json(path: str | Path) -> dict:
    """Read a JSON config file; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return data


def resolve(cls: type[C], presets: Mapping[str, Mapping] | None = None, preset: str | None = None,
            config_file: str | Path | None = None, sets: Sequence[str] = ()) -> C:
    """Defaults <- preset <- config file <- ``--set`` overrides, checked against ``cls``."""
    presets = presets or {}
    data = to_dict(cls())
    if preset is not None:
        if preset not in presets:
            raise ConfigError(f"unknown preset '{preset}' (known: {', '.join(sorted(presets))})")
        data = merge(data, presets[preset])
    if config_file is not None:
        data = merge(data, load_json(config_file))
    for expr in sets:
        data = merge(data, parse_set(expr))
    return from_dict(cls, data)


def add_config_args(parser: argparse.ArgumentParser, presets: Mapping[str, Mapping],
                    default_preset: str | None = None) -> None:
    """Add ``--preset``, ``--config`` and ``--set`` to a parser."""
    parser.add_argument("--preset", default=default_preset,
                        help=f"named settings: {', '.join(sorted(presets))}"
                             + (f" (default {default_preset})" if default_preset else ""))
    parser.add_argument("--config", metavar="FILE.json", help="JSON config (partial is fine)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.epochs=3 (repeatable)")


def config_from_args(cls: type[C], presets: Mapping[str, Mapping], args: argparse.Namespace) -> C:
    """Resolve ``cls`` from the flags added by :func:`add_config_args`."""
    return resolve(cls, presets, args.preset, args.config, args.sets)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as JSON (atomically)."""
    data = cfg if isinstance(cfg, dict) else to_dict(cfg)
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
