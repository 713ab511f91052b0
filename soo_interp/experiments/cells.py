"""The cell engine of sweeps and searches: run a cell (train its adapter from the base model,
then measure the tuned model) into `OUT/cells/<name>/` atomically (built in a hidden sibling,
renamed when complete; a killed cell resumes from its training checkpoints), one log per cell,
failures reported with their log rather than raised; and `run_cells`, which skips finished cells
and runs the rest on an executor of `soo_interp.executors`. What a cell measures is the task's
`measure` function: the sweep's and the search's differ, nothing else does."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import shutil
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..data.pairs import PromptPair, soo_pairs
from ..errors import ConfigError, SooError
from ..executors import Executor
from ..models import as_loaded_model, load_model
from ..models.fingerprint import model_fingerprint
from ..models.loading import (
    LoadedModel,
    adapter_attached,
    attach_adapter,
    model_config,
    name_fingerprint,
)
from ..runs import write_run_json
from ..training import train_soo
from ..training.checkpoint import checkpoint_dirs
from ..training.config import TrainConfig
from .grid import Cell, cell_hash

CELLS = "cells"
LOGS = "logs"
# measure(tuned, base, folder, task): writes the cell's results (at least outcomes.parquet)
Measure = Callable[[Any, Any, Path, "CellTask"], None]


@dataclasses.dataclass
class CellTask:
    """What a worker needs to run one cell (picklable: the model travels as a name, `measure`
    as a module-level function). `train` None: the base model, untrained. `settings`: what
    `measure` reads; with the model, pairs and `train` they make the cell's hash. `config`: the
    whole run's config, recorded in the cell's run.json."""

    out: str
    cell: Cell
    model: str
    load: dict
    train: TrainConfig | None
    pairs: list[PromptPair]
    measure: Measure
    settings: dict
    config: dict
    fingerprint: str = ""   # the base model's weights (and adapter), filled by `run_cells`

    @functools.cached_property
    def hash(self) -> str:
        return cell_hash(self.cell, self.model, self.settings, self.pairs, self.train,
                         self.fingerprint)


@dataclasses.dataclass
class CellRun:
    """What happened to each cell (`statuses`: name, status done|failed, log, seconds; `ran`:
    cells computed now, `reused`: found finished)."""

    statuses: list[dict]
    ran: int
    reused: int

    @property
    def failed(self) -> list[dict]:
        return [s for s in self.statuses if s["status"] == "failed"]

    def check(self) -> None:
        """Raise one line naming every failed cell's log (the finished ones are kept)."""
        if self.failed:
            logs = "; ".join(f"{s['name']}: {s.get('log')}" for s in self.failed)
            raise SooError(f"{len(self.failed)} cell(s) failed (logs: {logs}); fix the cause and "
                           "rerun the same command to run only those")


def resolve_model(model: Any) -> tuple[str, int, Any]:
    """(name, number of layers, LoadedModel or None): a name is resolved without loading
    weights (workers load it); an object is wrapped as it is."""
    if isinstance(model, str):
        return model, int(model_config(model).num_hidden_layers), None

    lm = as_loaded_model(model)
    return lm.name, lm.n_layers, lm


def model_identity(model: str, load: dict, lm: Any) -> str:
    """The fingerprint of the model the cells train from: the object's weights (with any
    adapter it carries), or the named model's files, its adapter's files and its load settings."""
    return model_fingerprint(lm) if lm is not None else name_fingerprint(model, load)


def _finished(task: CellTask) -> bool:
    run_json = Path(task.out) / CELLS / task.cell.name / "run.json"
    if not run_json.is_file():
        return False
    meta = json.loads(run_json.read_text())
    found = meta.get("config_hash")
    if meta.get("model_fingerprint") not in (None, task.fingerprint):
        raise ConfigError(f"cell {task.cell.name} in {Path(task.out) / CELLS} was computed from "
                          f"other model weights (fingerprint {meta['model_fingerprint']}, this "
                          f"model {task.fingerprint}): the model changed since; choose another --out "
                          "(a sweep also takes --overwrite, which recomputes every cell)")
    if found != task.hash:
        raise ConfigError(f"cell {task.cell.name} in {Path(task.out) / CELLS} was made with another "
                          f"config (hash {found}, this run {task.hash}); remove that cell folder, "
                          "choose another --out, or pass --overwrite")
    return True


def run_cells(tasks: Sequence[CellTask], lm: Any = None, executor: Any = None,
              progress: bool = True) -> CellRun:
    """Run every task whose cell folder is not finished (a finished one made with another config
    is refused) on `executor` (a `soo_interp.executors.Executor`; default: local workers). With
    `lm` (a model object) the cells run one after another in this process, on that object
    (executor local, workers 1)."""
    executor = executor or Executor(workers=1 if lm is not None else None)
    if lm is not None and (executor.name != "local" or executor.workers != 1):
        raise ConfigError("a model object can only run its cells in this process (executor local, "
                          "workers 1); pass a name or path to run cells in parallel")
    if tasks:
        fingerprint = model_identity(tasks[0].model, tasks[0].load, lm)
        tasks = [dataclasses.replace(t, fingerprint=fingerprint) for t in tasks]
    todo = [t for t in tasks if not _finished(t)]
    fn = run_task if lm is None else functools.partial(run_cell, lm)
    statuses = executor.run(fn, todo, [t.cell.name for t in todo], Path(todo[0].out) / LOGS,
                            progress) if todo else []
    for partial in (Path(tasks[0].out) / CELLS).glob(".*.partial") if tasks else ():
        if (partial.parent / partial.name[1:-len(".partial")]).is_dir():  # finished: stale
            shutil.rmtree(partial, ignore_errors=True)
    return CellRun(statuses, sum(bool(s.get("ran")) for s in statuses), len(tasks) - len(todo))


_MODELS: dict[str, Any] = {}  # per worker process: the base model, loaded once


def run_task(task: CellTask) -> dict:
    """Executor entry point: load the base model once per process, then run the cell."""
    key = json.dumps([task.model, task.load], sort_keys=True, default=str)
    if key not in _MODELS:
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

            write_run_json(tmp, task.config, task.cell.seed, cell=task.cell.coords(),
                           cell_name=name, config_hash=task.hash, model=task.model,
                           model_fingerprint=task.fingerprint,
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
    if task.train is None:
        task.measure(lm, lm, tmp, task)
        return

    adapter = tmp / "adapter"
    resume = adapter.is_dir() and bool(checkpoint_dirs(adapter))
    train_soo(lm, task.pairs, task.train, out=adapter, resume=resume,
              overwrite=not resume, progress=False, eval_pairs=soo_pairs("test"))
    with _adapter_on(lm.model, adapter) as (tuned, base_view):
        task.measure(LoadedModel(tuned, lm.tokenizer, task.cell.name),
                     LoadedModel(base_view, lm.tokenizer, "base"), tmp, task)


@contextlib.contextmanager
def _adapter_on(model: Any, adapter: Path) -> Iterator[tuple[Any, Any]]:
    """The model with `adapter` attached (not merged: no copy of the weights), and a view of
    the same module with the adapter switched off; the model is restored afterwards."""
    with adapter_attached(model, lambda m: attach_adapter(m, adapter, merge=False).eval()) as peft:
        yield peft, _AdapterOff(peft)


class _AdapterOff:
    """Calls a peft model with its adapter disabled: the base model, without a second copy."""

    def __init__(self, peft_model: Any) -> None:
        self.peft_model = peft_model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)

    def parameters(self) -> Iterator[Any]:
        return self.peft_model.parameters()
