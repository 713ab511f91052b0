"""Dataclass configs with a dict and YAML round trip (the CLI reads the same YAML)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T", bound="Config")


@dataclasses.dataclass
class Config:
    """Base for every config: `to_dict`, `from_dict` (unknown keys are an error), YAML I/O."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
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
            default = names[k].default
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
        p = Path(path_or_text)
        text = p.read_text() if p.exists() else str(path_or_text)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse YAML config {path_or_text}: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"YAML config {path_or_text} must be a mapping of keys to values")
        return cls.from_dict(data)
