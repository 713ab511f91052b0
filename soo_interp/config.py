"""Dataclass configs with a dict and YAML round trip (the CLI reads the same YAML)."""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Sequence, TypeVar

import yaml

from .errors import ConfigError, check_choice
from .runs import atomic_write_text, check_seed, read_user_text

T = TypeVar("T", bound="Config")


MAX_LIST = 10_000  # index lists (layers, seeds) longer than this are a typo, not a request


def parse_int_list(spec: str | int | Sequence[int | str]) -> list[int]:
    """'0-3,5' / '-1' / [1, 2] -> the integers listed (ranges inclusive, negatives allowed), in
    order and without repeats: the one reader of index lists (layers, seeds). At most
    `MAX_LIST` values."""
    parts = spec.split(",") if isinstance(spec, str) else [spec] if isinstance(spec, int) else spec
    out: dict[int, None] = {}
    for part in parts:
        if isinstance(part, str):
            m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", part)
            if not m:
                raise ConfigError(f"cannot read {_short(spec)} as a list of integers; use e.g. "
                                  "0-3,5")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            values = range(lo, hi + 1)
        elif isinstance(part, Integral) and not isinstance(part, bool):
            values = range(int(part), int(part) + 1)
        else:
            raise ConfigError(f"cannot read {_short(spec)} as a list of integers; use e.g. 0-3,5")
        if len(out) + len(values) > MAX_LIST:
            raise ConfigError(f"{_short(spec)} lists more than {MAX_LIST} values; give the "
                              "indices you mean, e.g. 0-31")
        out.update(dict.fromkeys(values))
    if not out:
        raise ConfigError(f"cannot read {_short(spec)} as a list of integers; use e.g. 0-3,5")
    return list(out)


def _short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters (an error message stays one short line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it silently kept the
    last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (keep one)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, but a duplicate key is an error (the one YAML reader of soo-interp)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def require_positive(where: str = "", **values: Any) -> None:
    """Refuse counts (batch sizes, prompts, folds, steps) that are not whole numbers >= 1, before
    they reach a `range()` or an allocation. `None` means 'use the default' and passes."""
    for name, v in values.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"{where}{name} must be a whole number >= 1, not {v!r}; e.g. "
                              f"--{name.replace('_', '-')} 8")


# the only strings read as booleans (any case): "yes", "on", "1", "0" and the like are refused,
# so a quoted YAML "false" or a typo never silently becomes True
_TRUE, _FALSE = ("true",), ("false",)
_INT = re.compile(r"\s*[-+]?\d+\s*")


class _Mismatch(Exception):
    """A value that is not of (and cannot safely become) the expected type."""


def _convert(value: Any, hint: Any) -> Any:
    """`value` as type `hint`, converting only where nothing is lost or guessed: "1e-3" -> 0.001,
    "12" -> 12, exactly "true"/"false" (any case) -> True/False, 3 -> 3.0, a list -> a tuple,
    "a,b" -> ("a", "b"), a dict -> a nested config. Anything else (1.5 or "1.0" for a whole
    number, "yes" or 1 for a boolean, [1, 2] for a number) raises `_Mismatch`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option)
            except _Mismatch:
                continue
        raise _Mismatch
    if hint is Any:
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = parse_int_list(value) if args[0] is int else [
                s.strip() for s in value.split(",") if s.strip()]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_convert(v, args[0]) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif hint is int:
        if isinstance(value, Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value):
            return int(value)
    elif hint is float:
        if isinstance(value, (Integral, float)) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _Mismatch from None
        if isinstance(value, float) and math.isfinite(value):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Integral) and not isinstance(value, bool):
            return str(value)  # e.g. `layers: 5` in YAML
    elif isinstance(hint, type) and issubclass(hint, Config):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return hint.from_dict(value)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise _Mismatch


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"a list of {_type_name(typing.get_args(hint)[0])}"
    return {type(None): "null", bool: "true/false", int: "a whole number",
            float: "a finite number", str: "text"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_types(config: Any) -> None:
    """Check every field of dataclass `config` against its type hint, converting safely in
    place (see `_convert`); the first mismatch is one `ConfigError` naming the key, the value
    and the expected type. The one type check of every config, wherever its values came from
    (Python, flags or YAML)."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        try:
            object.__setattr__(config, f.name, _convert(value, hints[f.name]))
        except ConfigError as e:  # from a nested config: say which field it came through
            raise ConfigError(f"{type(config).__name__}.{f.name}: {e}") from None
        except _Mismatch:
            raise ConfigError(f"{type(config).__name__}: {f.name} = {_short(value)} is not "
                              f"{_type_name(hints[f.name])}") from None


@dataclasses.dataclass
class Config:
    """Base for every config: `to_dict`, `from_dict` (unknown keys are an error), YAML I/O.
    The one validation idiom: on construction (and `dataclasses.replace`) the base always
    checks, in order, every field's type (`check_types`), the seeds, the fields named in
    `positive` (whole numbers >= 1), the fields named in `choices` (each value, or each item
    of a tuple, one of the listed constants; the command line offers the same lists), then
    calls `check()`, where a subclass puts what is left (ranges, combinations). Subclasses
    never override `__post_init__`."""

    positive: ClassVar[tuple[str, ...]] = ()
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __post_init__(self) -> None:
        check_types(self)
        for seed in ([getattr(self, "seed", 0)] + list(getattr(self, "seeds", None) or [])):
            check_seed(seed)
        where = f"{type(self).__name__}: "
        layers = getattr(self, "layers", None)
        if isinstance(layers, str) and layers != "all":
            try:
                parse_int_list(layers)  # "abc" fails here, before any model is loaded
            except ConfigError:
                raise ConfigError(f"{where}layers = {_short(layers)} is not a list of layers; "
                                  "use e.g. 0-3,5 (or all)") from None
        require_positive(where, **{k: getattr(self, k) for k in self.positive})
        for name, options in self.choices.items():
            value = getattr(self, name)
            for v in value if isinstance(value, tuple) else (value,):
                check_choice(name, v, options, hint=f" ({where[:-2]}.{name})")
        self.check()

    def check(self) -> None:
        """What the base checks cannot say (ranges, combinations); raise `ConfigError`."""

    @classmethod
    def with_overrides(cls: type[T], config: T | None = None, **overrides: Any) -> T:
        """`config` (None: the defaults) with `overrides` (field names) set, checked as any
        config is: how every entry point reads its `config` and `**overrides`."""
        if config is None:
            config = cls()
        elif not isinstance(config, cls):
            raise ConfigError(f"config must be a {cls.__name__}, not {type(config).__name__}; "
                              f"e.g. {cls.__name__}() or None")
        return cls.from_dict({**config.to_dict(), **overrides}) if overrides else config

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = (v.to_dict() if isinstance(v, Config)
                           else list(v) if isinstance(v, tuple) else v)
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown keys {unknown}; valid keys are {sorted(names)}"
            )
        kwargs = {}
        for k, v in data.items():
            f = names[k]
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            if isinstance(default, Config) and isinstance(v, dict):  # a nested config: the keys
                v = {**default.to_dict(), **v}  # given over its default (`check_types` builds it)
            kwargs[k] = tuple(v) if isinstance(default, tuple) and isinstance(v, list) else v
        return cls(**kwargs)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_yaml(cls: type[T], path_or_text: str | Path) -> T:
        p = Path(path_or_text)
        looks_like_file = "\n" not in str(path_or_text) and str(path_or_text).endswith((".yaml", ".yml"))
        text = read_user_text(p, "YAML config") if p.exists() or looks_like_file \
            else str(path_or_text)
        try:
            data = load_yaml(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" on line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"cannot parse YAML config {_short(str(path_or_text))}: "
                              f"{getattr(e, 'problem', None) or _one_line(e)}{where}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"YAML config {path_or_text} must be a mapping of keys to values")
        return cls.from_dict(data)
