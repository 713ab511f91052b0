"""Run folders: atomic writes, all-or-nothing output folders, seeding and `run.json` metadata."""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import OutputExistsError

RUN_JSON = "run.json"
_TRACKED_LIBRARIES = (
    "soo-interp", "torch", "transformers", "nnsight", "transformer-lens", "peft", "numpy",
    "pandas", "scikit-learn", "tokenizers", "safetensors",
)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run is repeatable on one machine."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _TRACKED_LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_metadata(config: dict[str, Any], seed: int | None, argv: list[str] | None = None) -> dict:
    """What `run.json` holds: config, seed, command line and library versions."""
    return {
        "config": config,
        "seed": seed,
        "command": list(sys.argv if argv is None else argv),
        "versions": library_versions(),
        "platform": platform.platform(),
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a library writer (parquet, savefig, safetensors);
    rename it over `path` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_out_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse an existing, non-empty output folder unless `overwrite` (call before any work)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"output folder {path} already exists; pass --overwrite (overwrite=True) to replace "
            "it, or choose another --out"
        )
    return path


@contextlib.contextmanager
def output_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """All-or-nothing output folder: work happens in a hidden sibling, renamed into place at the
    end. On any error the sibling is removed and an existing folder is left untouched."""
    final = check_out_dir(path, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def write_run_json(folder: Path, config: dict[str, Any], seed: int | None,
                   argv: list[str] | None = None, **extra: Any) -> Path:
    meta = run_metadata(config, seed, argv)
    meta.update(extra)
    out = Path(folder) / RUN_JSON
    atomic_write_json(out, meta)
    return out
