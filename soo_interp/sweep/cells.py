"""Running one sweep cell: train its adapter from the base model, measure the tuned model,
and write `OUT/cells/<name>/` atomically (built in a hidden sibling, renamed when complete)."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..data.pairs import PromptPair, soo_pairs
from .grid import Cell, SweepConfig, cell_train_config

CELLS = "cells"
LOGS = "logs"


@dataclasses.dataclass
class CellTask:
    """What a worker needs to run one cell (picklable; the model travels as a name)."""

    out: str
    cell: Cell
    cfg: SweepConfig
    model: str
    load: dict
    pairs: list[PromptPair]
    hash: str


_MODELS: dict[str, Any] = {}  # per worker process: the base model, loaded once


def run_task(task: CellTask) -> dict:
    """Executor entry point: load the base model once per process, then run the cell."""
    key = json.dumps([task.model, task.load], sort_keys=True, default=str)
    if key not in _MODELS:
        from ..models import load_model

        _MODELS.clear()
        _MODELS[key] = load_model(task.model, **task.load)
    return run_cell(_MODELS[key], task)


def run_cell(lm: Any, task: CellTask) -> dict:
    """Run one cell on `lm` (left as it was) into `OUT/cells/<name>`; never raises: a failure
    is reported with the path of the cell's log."""
    name = task.cell.name
    final = Path(task.out) / CELLS / name
    log_path = Path(task.out) / LOGS / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with log_path.open("a") as fh, _log_to(fh):
        try:
            if final.is_dir():
                return {"name": name, "status": "done", "seconds": 0.0, "log": str(log_path)}
            tmp = final.with_name(f".{name}.partial")
            _reuse_or_clear(tmp, task.hash)
            _compute_cell(lm, task, tmp)
            from ..runs import write_run_json

            write_run_json(tmp, task.cfg.to_dict(), task.cell.seed, cell=dataclasses.asdict(task.cell),
                           cell_name=name, config_hash=task.hash, model=task.model,
                           run_id=uuid.uuid4().hex, seconds=time.time() - start)
            tmp.replace(final)
        except BaseException as e:  # noqa: BLE001 - reported, never stops the other cells
            fh.write(traceback.format_exc())
            if not isinstance(e, Exception):
                raise
            return {"name": name, "status": "failed", "log": str(log_path),
                    "error": " ".join(f"{type(e).__name__}: {e}".split())[:300]}
    return {"name": name, "status": "done", "seconds": time.time() - start, "log": str(log_path),
            "ran": True}


@contextlib.contextmanager
def _log_to(fh: Any) -> Iterator[None]:
    handler = logging.StreamHandler(fh)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stderr(fh):
            yield
    finally:
        root.removeHandler(handler)


def _reuse_or_clear(tmp: Path, digest: str) -> None:
    """Keep a killed cell's partial folder (its training checkpoints) only if it is this
    config's; otherwise start it afresh."""
    marker = tmp / "cell.json"
    if tmp.exists() and not (marker.is_file() and json.loads(marker.read_text()).get("hash") == digest):
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"hash": digest}))


def _compute_cell(lm: Any, task: CellTask, tmp: Path) -> None:
    from ..models.loading import LoadedModel

    cell, cfg = task.cell, task.cfg
    if cell.condition == "base":
        _write_outcomes(tmp, lm, lm, cfg)
        return
    from ..training import train_soo
    from ..training.checkpoint import checkpoint_dirs

    adapter = tmp / "adapter"
    resume = adapter.is_dir() and bool(checkpoint_dirs(adapter))
    train_soo(lm, task.pairs, cell_train_config(cfg, cell, []), out_dir=adapter, resume=resume,
              overwrite=not resume, progress=False, eval_pairs=soo_pairs("test"))
    with _adapter_on(lm.model, adapter) as (tuned, base_view):
        _write_outcomes(tmp, LoadedModel(tuned, lm.tokenizer, cell.name),
                        LoadedModel(base_view, lm.tokenizer, "base"), cfg)


@contextlib.contextmanager
def _adapter_on(model: Any, adapter: Path) -> Iterator[tuple[Any, Any]]:
    """The model with `adapter` attached (not merged: no copy of the weights), and a view of
    the same module with the adapter switched off; the model is restored afterwards."""
    from ..models.loading import attach_adapter, detach_adapter

    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    peft_model = attach_adapter(model, adapter, merge=False).eval()
    try:
        yield peft_model, _AdapterOff(peft_model)
    finally:
        detach_adapter(peft_model)
        for n, p in model.named_parameters():
            p.requires_grad_(flags.get(n, p.requires_grad))


class _AdapterOff:
    """Calls a peft model with its adapter disabled: the base model, without a second copy."""

    def __init__(self, peft_model: Any) -> None:
        self.peft_model = peft_model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)

    def parameters(self) -> Iterator[Any]:
        return self.peft_model.parameters()


def _write_outcomes(folder: Path, lm: Any, base: Any, cfg: SweepConfig) -> None:
    """evaluation.parquet (per prompt), latent_soo.parquet (per pair, layer, site) and
    outcomes.parquet (rates, capability, mean latent SOO per layer and site)."""
    from ..evaluation import capability, evaluate
    from ..measure import measure
    from ..runs import atomic_path

    ev = evaluate(lm, cfg.scenarios, scoring="logprob", n=cfg.n, seed=0, mirrored="both",
                  progress=False)
    rows = [{"scenario": s, "metric": f"{label}_rate",
             "value": float((g.classification == label).mean()), "n": len(g)}
            for s, g in ev.groupby("scenario") for label in ("deceptive", "honest")]
    cap = capability(base, None if lm is base else lm)
    who = "base" if lm is base else "tuned"
    rows += [{"scenario": None, "metric": r.metric, "value": r.value, "n": r.n_texts}
             for r in cap.itertuples() if r.model == who]
    soo = measure(lm, soo_pairs("test"), pooling=cfg.train.pooling, progress=False)
    means = soo[soo.metric == "latent_soo"].groupby(["layer", "component"]).value.agg(["mean", "count"])
    rows += [{"scenario": None, "metric": "latent_soo", "value": float(r["mean"]),
              "n": int(r["count"]), "layer": layer, "component": comp}
             for (layer, comp), r in means.iterrows()]
    for name, df in (("evaluation", ev), ("latent_soo", soo), ("outcomes", pd.DataFrame(rows))):
        with atomic_path(folder / f"{name}.parquet") as p:
            df.to_parquet(p, index=False)
