"""What `train --resume` continues: the run as it was configured. A multi-seed run records its
full settings and seeds in `OUT/run.json` before the first step (status `running`); a resume
reads them back, refuses flags that contradict them, skips seeds whose folder is complete and
continues (or starts) every other one, so the result equals an uninterrupted run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import CheckpointError, ConfigError
from ..runs import RUN_JSON
from .config import TrainConfig

TRAIN_LOG = "train_log.parquet"


def saved_run(out: str | Path) -> tuple[dict[str, Any], list[int], dict[str, Any]] | None:
    """(config without seed, seeds, input files) recorded when the multi-seed run in `out`
    started; None when `out` holds no such record (a new run)."""
    path = Path(out) / RUN_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        return dict(meta["config"]), [int(s) for s in meta["seeds"]], meta.get("inputs") or {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is unreadable ({e}); start over with --overwrite") from e


def resumed_config(saved: dict[str, Any], given: dict[str, Any]) -> TrainConfig:
    """The saved config; settings given again must equal it (a resume cannot change the run)."""
    base = TrainConfig.from_dict({**saved, "seed": 0})
    asked = TrainConfig.from_dict({**base.to_dict(), **given, "seed": 0})
    now, before = asked.to_dict(), base.to_dict()
    clash = [k for k in given if k != "seed" and now[k] != before[k]]
    if clash:
        shown = ", ".join(f"{k}={now[k]!r} (run has {before[k]!r})" for k in clash)
        raise ConfigError(f"--resume continues the run as it was started; {shown} contradicts "
                          "it: drop those flags, or start a new run with another --out")
    return base


def check_seeds(saved: list[int], given: list[int] | None) -> list[int]:
    if given is not None and sorted(given) != sorted(saved):
        raise ConfigError(f"--resume continues seeds {saved}; --seeds {given} differs: drop "
                          "--seeds, or start a new run with another --out")
    return saved


def finished(folder: Path) -> dict[str, Any] | None:
    """run.json of a seed folder whose run completed (its adapter and log are final)."""
    path = Path(folder) / RUN_JSON
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("status") == "complete" else None


def finished_log(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(folder) / TRAIN_LOG)


def check_same_model(out: Path, fingerprint: str) -> None:
    """A resume must train the base model the run started from."""
    meta = json.loads((Path(out) / RUN_JSON).read_text())
    saved = meta.get("base_model")
    if saved is not None and saved != fingerprint:
        raise CheckpointError(f"{out} was started from another model ({meta.get('model')}, "
                              f"fingerprint {saved}); resume with the same --model, or start a "
                              "new --out")
