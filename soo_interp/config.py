"""Dataclass configs with a dict and YAML round trip (the CLI reads the same YAML)."""
from __future__ import annotations

import dataclasses
import re
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Sequence, TypeVar

import yaml

from .errors import ConfigError

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


def require_positive(where: str = "", **values: Any) -> None:
    """Refuse counts (batch sizes, prompts, folds, steps) that are not whole numbers >= 1, before
    they reach a `range()` or an allocation. `None` means 'use the default' and passes."""
    for name, v in values.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"{where}{name} must be a whole number >= 1, not {v!r}; e.g. "
                              f"--{name.replace('_', '-')} 8")


@dataclasses.dataclass
class Config:
    """Base for every config: `to_dict`, `from_dict` (unknown keys are an error), YAML I/O.
    Fields named in `positive` must be whole numbers >= 1 (checked on construction)."""

    positive: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        require_positive(f"{type(self).__name__}: ", **{k: getattr(self, k) for k in self.positive})

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
            if isinstance(default, Config) and isinstance(v, dict):  # a nested config
                v = type(default).from_dict(v)
            kwargs[k] = tuple(v) if isinstance(default, tuple) and isinstance(v, list) else v
        return cls(**kwargs)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            from .runs import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_yaml(cls: type[T], path_or_text: str | Path) -> T:
        from .runs import read_user_text

        p = Path(path_or_text)
        looks_like_file = "\n" not in str(path_or_text) and str(path_or_text).endswith((".yaml", ".yml"))
        text = read_user_text(p, "YAML config") if p.exists() or looks_like_file \
            else str(path_or_text)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse YAML config {path_or_text}: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"YAML config {path_or_text} must be a mapping of keys to values")
        return cls.from_dict(data)
