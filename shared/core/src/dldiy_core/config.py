"""Dataclass configs <-> command line: ``--preset NAME``, ``--config file.json``, ``--set a.b=v``.

Resolution order: dataclass defaults, then the preset, then the JSON file, then each ``--set``.
Presets are nested dicts of overrides, e.g. ``{"quick": {"train": {"epochs": 2}}}``.

Every setting is checked when the config is built, so no out-of-range value starts a run:

- numeric fields declare their range with :func:`bounded` (``ge``/``gt``/``le``/``lt``; for a
  list, every item); ``dldiy_core.testing.assert_config_bounds`` fails for a numeric field
  without one;
- a float must be finite (NaN and infinities refused) unless ``bounded(..., finite=False)``;
- a dataclass may define ``check(self)`` for rules across fields: raise ``ValueError("epochs=0
  with max_steps=0: nothing to train")`` and the error names the section.

::

    @dataclass
    class ModelConfig:
        hidden: int = bounded(64, ge=1)
        dropout: float = bounded(0.1, ge=0, lt=1)
        kernels: list[int] = bounded([3, 5], ge=1)     # each item
        scale: float | None = bounded(None, gt=0)     # None passes

        def check(self) -> None:
            if self.hidden % 2:
                raise ValueError(f"hidden={self.hidden} must be even")

Errors are :class:`ConfigError` lines such as ``config key 'model.hidden': -4 is out of range
(must be >= 1)``. :func:`check_config` applies the same checks to a config built in Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError
from .io import atomic_write_text, read_input

C = TypeVar("C")


class ConfigError(UserError):
    """Unknown preset or key, malformed ``--set``, unreadable config file, wrong value type,
    a value out of range. ``key``: the setting (or section) at fault, when known."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The range of a numeric setting (see :func:`bounded`)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True

    def describe(self) -> str:
        parts = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                               ("<", self.lt)) if v is not None]
        return " and ".join(parts) or "any finite number"

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or None."""
        if isinstance(value, float) and math.isnan(value) and self.finite:
            return "is not a number (must be finite)"
        if isinstance(value, float) and math.isinf(value) and self.finite:
            return "is infinite (must be finite)"
        if ((self.ge is not None and not value >= self.ge)
                or (self.gt is not None and not value > self.gt)
                or (self.le is not None and not value <= self.le)
                or (self.lt is not None and not value < self.lt)):
            return f"is out of range (must be {self.describe()})"
        return None


_UNBOUNDED = Bounds()


def bounded(default: Any = dataclasses.MISSING, *, ge: float | None = None,
            gt: float | None = None, le: float | None = None, lt: float | None = None,
            finite: bool = True, default_factory: Any = dataclasses.MISSING, **field_kwargs: Any
            ) -> Any:
    """A dataclass field with a declared range, checked when the config is built.

    ``bounded(64, ge=1)``, ``bounded(0.1, ge=0, lt=1)``, ``bounded(None, gt=0)`` (None passes),
    ``bounded([3, 5], ge=1)`` (each item of a list), ``bounded(0.0)`` (any finite number:
    declared on purpose), ``bounded(math.inf, gt=0, finite=False)`` (infinity allowed).
    """
    if isinstance(default, (list, dict, set)):
        value, default = default, dataclasses.MISSING
        default_factory = lambda: type(value)(value)  # noqa: E731 (a fresh copy per instance)
    meta = {**field_kwargs.pop("metadata", {}),
            "bounds": Bounds(ge=ge, gt=gt, le=le, lt=lt, finite=finite)}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta,
                             **field_kwargs)


def field_bounds(f: dataclasses.Field) -> Bounds | None:
    """The :class:`Bounds` a field declares with :func:`bounded` (None: not declared)."""
    return f.metadata.get("bounds")


def _check_value(value: Any, bounds: Bounds | None, key: str) -> None:
    """Numbers (or list items) within ``bounds``; floats finite unless the field allows more."""
    items = value if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        why = (bounds or _UNBOUNDED).problem(v)
        if why:
            raise ConfigError(f"config key '{key}': {v!r} {why}", key=key)


def _run_check(obj: Any, prefix: str) -> None:
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config '{prefix or type(obj).__name__}': {e}", key=prefix
                              ) from None


def check_config(cfg: Any, prefix: str = "") -> None:
    """Check a config built in Python (bounds, finite floats, ``check()``), nested sections too.

    :func:`from_dict` and :func:`resolve` do this already; raises :class:`ConfigError`.
    """
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_config(value, key)
        else:
            _check_value(value, field_bounds(f), key)
    _run_check(cfg, prefix)


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
        raise ConfigError(f"config key '{prefix}': expected a section (object), got {data!r}",
                          key=prefix)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise ConfigError(f"unknown config key {full!r} (known: {', '.join(sorted(fields))})",
                              key=full)
        try:
            kwargs[key] = _coerce(value, hints[key], full)
        except ConfigError as e:
            e.key = full if e.key is None else e.key
            raise
        _check_value(kwargs[key], field_bounds(fields[key]), full)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config '{prefix or cls.__name__}': {e}", key=prefix) from None
    for name, f in fields.items():  # the defaults too (a section built from a partial dict)
        if name not in kwargs:
            value = getattr(obj, name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                check_config(value, f"{prefix}.{name}" if prefix else name)
            else:
                _check_value(value, field_bounds(f), f"{prefix}.{name}" if prefix else name)
    _run_check(obj, prefix)
    return obj


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
        raise ConfigError(f"malformed --set {expr!r}: expected KEY=VALUE, e.g. optim.lr=1e-3")
    out: dict = {parts[-1].strip(): value}
    for p in reversed(parts[:-1]):
        out = {p.strip(): out}
    return out


def load_json(path: str | Path) -> dict:
    """Read a JSON config file; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(read_input(path, "config file").decode())
    except UserError as e:
        raise ConfigError(str(e)) from None
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
    file_keys: list[str] = []
    if config_file is not None:
        file_data = load_json(config_file)
        file_keys = list(flatten(file_data)) or list(file_data)
        data = merge(data, file_data)
    set_keys: list[str] = []
    for expr in sets:
        override = parse_set(expr)
        set_keys += list(flatten(override))
        data = merge(data, override)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        if e.key is not None and _touches(e.key, file_keys) and not _touches(e.key, set_keys):
            raise ConfigError(f"{config_file}: {e}", key=e.key) from None  # name the file
        raise


def _touches(key: str, keys: Sequence[str]) -> bool:
    """Whether one of ``keys`` sets ``key``, a setting inside it, or the section holding it."""
    if not key:
        return bool(keys)
    return any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in keys)


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
