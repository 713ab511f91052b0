"""Error types. Every message names the problem *and* the fix; the CLI prints it as one line.
Also the package's one signal policy (`signals_handled`): SIGINT and SIGTERM become `Interrupted`."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterable, Iterator


class SooError(Exception):
    """Base class of soo-interp's user-facing errors (the CLI exits non-zero with the message)."""


class SiteError(SooError):
    """An unknown layer or component."""


class UnsupportedArchitectureError(SooError):
    """A model family with no site table."""


class ModelLoadError(SooError):
    """A model, tokenizer or adapter that cannot be loaded."""


class PairsError(SooError):
    """Empty, malformed or mismatched prompt pairs."""


class AlignmentError(SooError):
    """Pairs that cannot be aligned token for token under `pooling='aligned'`."""


class OutputExistsError(SooError):
    """An output folder that exists, without overwrite/resume."""


class ConfigError(SooError):
    """A configuration value that does not make sense."""


class CheckpointError(SooError):
    """A corrupt, missing or mismatched checkpoint."""


class TrainingError(SooError):
    """Training that cannot go on (NaN loss, ...)."""


class ProbeError(SooError):
    """A probe suite, activation set or saved probe that cannot be used."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a command (training checkpoints first); `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def raise_interrupted(signum: int, _frame: Any = None) -> None:
    """A signal handler: stop with `Interrupted` (the CLI exits 128 + signum, folders cleaned)."""
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_handled(handler: Callable[[int, Any], None],
                    signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """`handler` for `signums` during the block, the previous handlers after. Outside the main
    thread (where Python cannot set handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class ExecutorError(SooError):
    """An execution engine (Ray, submitit) that cannot be reached or used."""


def short(e: BaseException, limit: int = 240) -> str:
    """A library's error message cut to its first line and `limit` characters (some run to
    thousands of characters, listing every tensor)."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def check_choice(name: str, value: object, choices: Iterable[object],
                 error: type[Exception] | None = None, hint: str = "") -> None:
    """Refuse `value` unless it is one of `choices`: the one "unknown NAME 'value'; choose from
    a, b" message of soo-interp (`error`: the class raised, ConfigError by default; `hint`:
    text appended, e.g. where the choice is set)."""
    options = tuple(choices)
    if value not in options:
        raise (error or ConfigError)(f"unknown {name} {value!r}; choose from "
                                     f"{', '.join(map(str, options))}{hint}")
