"""Built-in models by name. A package that ships a model (the organism) registers a function that
returns its folder; `load_model` looks names up here, so the loader imports no model package."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

_BUILTINS: dict[str, Callable[[], Path]] = {}


def register_model(name: str, locate: Callable[[], Path]) -> None:
    """Make `load_model(name)` load the `save_pretrained` folder that `locate()` returns (it may
    verify the folder and raise a `SooError` with the fix)."""
    _BUILTINS[name] = locate


def builtin_models() -> tuple[str, ...]:
    """Names `load_model` accepts besides hub ids and folders."""
    return tuple(_BUILTINS)


def builtin_path(name: str) -> Path | None:
    """The folder of built-in model `name`, or None when `name` is not one."""
    locate = _BUILTINS.get(name)
    return Path(locate()) if locate is not None else None
