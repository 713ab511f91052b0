"""Driving a sweep: check the output folder, skip finished cells, run the rest on an executor,
and aggregate whatever cell folders exist into one long DataFrame."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..data.pairs import PromptPair, soo_pairs
from ..errors import ConfigError
from ..evaluation import capability, evaluate
from ..executors import Executor
from ..measure import measure
from ..models.sites import parse_layers
from ..runs import atomic_path, atomic_write_json, check_out_dir, claim_resumable, claimed, run_metadata
from .cells import CELLS, CellRun, CellTask, resolve_model, run_cells
from .grid import SweepConfig, plan_cells

SWEEP_JSON = "sweep.json"
_LOSS_LABEL = {"base": "none", "sham": "lm"}  # the sham control trains a plain LM loss
COLUMNS = ["condition", "train_layer", "train_component", "loss", "seed", "scenario", "metric",
           "value", "n"]


@dataclasses.dataclass
class SweepResult(CellRun):
    """What happened to each cell (see `CellRun`), and `df`, the aggregated long DataFrame."""

    df: pd.DataFrame


def _prepare_out(out: Path, cfg: SweepConfig, model: str, layers: Sequence[int],
                 overwrite: bool) -> None:
    """Accept a new folder or a soo-interp sweep of the same model and outcome settings (its
    finished cells are reused; the grid may grow); `overwrite` discards an earlier sweep. A
    user's folder or another kind of run is never touched."""
    check_out_dir(out, overwrite, kind="sweep", resume=True)
    meta = out / SWEEP_JSON
    if overwrite and out.exists():
        shutil.rmtree(out)
    elif meta.is_file():
        old = json.loads(meta.read_text())
        new = {"model": model, **cfg.outcome_key()}
        was = {"model": old.get("model"), **SweepConfig.from_dict(old["config"]).outcome_key()}
        diff = sorted(k for k in new if new[k] != was[k])
        diff += sorted(f"train.{k}" for k in new["train"] if new["train"][k] != was["train"].get(k))
        if diff:
            raise ConfigError(f"{out} holds a sweep made with other settings ({', '.join(diff)} "
                              "differ); rerun with the same settings to resume, choose another "
                              "--out, or pass --overwrite")
    claim_resumable(out, "sweep")
    atomic_write_json(meta, {**run_metadata(cfg.to_dict(), cfg.seeds[0]), "model": model,
                             "layers": list(layers)})


def sweep(model: Any, pairs: Sequence[PromptPair] | None = None, config: SweepConfig | None = None,
          *, out: str | Path, executor: Any = None, load: dict | None = None,
          overwrite: bool = False, progress: bool = True, **overrides: Any) -> SweepResult:
    """Run the sweep's missing cells into `out` and aggregate all of them.

    `model`: a name or path (each worker loads it with `load_model(model, **load)`), or a model
    object `as_loaded_model` accepts (then the cells run one after another in this process, on
    that object). `pairs`: the training pairs (None: the built-in `soo_pairs("train")`);
    `config` a `SweepConfig` (None: the defaults), `overrides` any of its fields, e.g.
    `sweep("organism", layers="0-1", out="runs/sweep")`. `executor`: a
    `soo_interp.executors.Executor` (None: local worker processes); without its own `workers`,
    `config.workers` cells run at once (1, in this process, for a model object). The output
    folder must be visible to every worker (on a cluster: a shared filesystem)."""
    cfg = SweepConfig.with_overrides(config, **overrides)
    out = Path(out)
    name, n_layers, lm = resolve_model(model)
    executor = executor or Executor()
    if executor.workers is None:
        executor = dataclasses.replace(executor, workers=1 if lm is not None else cfg.workers)
    layers = parse_layers(cfg.layers, n_layers)
    pairs = list(pairs) if pairs is not None else soo_pairs("train")
    with claimed(out):  # a second sweep into `out` at once is refused
        _prepare_out(out, cfg, name, layers, overwrite)
        settings = cfg.outcome_key()
        tasks = [CellTask(str(out), cell, name, dict(load or {}),
                          None if cell.condition == "base" else cell.train_config(cfg.train),
                          pairs, sweep_outcomes, settings, cfg.to_dict())
                 for cell in plan_cells(cfg, layers)]
        done = run_cells(tasks, lm, executor, progress)
        return SweepResult(done.statuses, done.ran, done.reused, df=aggregate(out))


def sweep_outcomes(lm: Any, base: Any, folder: Path, task: CellTask) -> None:
    """What a sweep cell measures: evaluation.parquet (per prompt), latent_soo.parquet (per
    pair, layer, site) and outcomes.parquet (rates, capability, mean latent SOO per layer and
    site); `task.settings` is the sweep's `outcome_key()`."""
    ev = evaluate(lm, scenarios=task.settings["scenarios"], scoring="logprob",
                  n=task.settings["n"], seed=0, mirrored="both", progress=False)
    rows = [{"scenario": s, "metric": f"{label}_rate",
             "value": float((g.classification == label).mean()), "n": len(g)}
            for s, g in ev.groupby("scenario") for label in ("deceptive", "honest")]
    cap = capability(base, None if lm is base else lm)
    who = "base" if lm is base else "tuned"
    rows += [{"scenario": None, "metric": r.metric, "value": r.value, "n": r.n_texts}
             for r in cap.itertuples() if r.model == who]
    soo = measure(lm, soo_pairs("test"), pooling=task.settings["train"]["pooling"], progress=False)
    means = soo[soo.metric == "latent_soo"].groupby(["layer", "component"]).value.agg(["mean", "count"])
    rows += [{"scenario": None, "metric": "latent_soo", "value": float(r["mean"]),
              "n": int(r["count"]), "layer": layer, "component": comp}
             for (layer, comp), r in means.iterrows()]
    for name, df in (("evaluation", ev), ("latent_soo", soo), ("outcomes", pd.DataFrame(rows))):
        with atomic_path(folder / f"{name}.parquet") as p:
            df.to_parquet(p, index=False)


def aggregate(out: str | Path) -> pd.DataFrame:
    """The long sweep table from the finished cell folders in `out` (whoever ran them): base
    and sham outcomes repeated at every trained (layer, site) of the grid, latent SOO read at
    that site. Columns: condition, train_layer, train_component, loss, seed, scenario, metric, value, n."""
    out = Path(out)
    cells = []
    for run_json in sorted((out / CELLS).glob("*/run.json")):
        meta = json.loads(run_json.read_text())
        cells.append((meta["cell"], pd.read_parquet(run_json.parent / "outcomes.parquet")))
    meta = json.loads((out / SWEEP_JSON).read_text())
    cfg = SweepConfig.from_dict(meta["config"])
    soo_cells = [c for c, _ in cells if c["condition"] == "soo"]
    grid = {(c["layer"], c["component"]) for c in soo_cells}
    grid |= {(layer, comp) for layer in meta["layers"] for comp in cfg.components}
    frames = []
    for cell, rows in cells:
        behaviour = rows[rows.metric != "latent_soo"]
        soo = rows[rows.metric == "latent_soo"].set_index(["layer", "component"])
        at = [(cell["layer"], cell["component"])] if cell["condition"] == "soo" else sorted(grid)
        for layer, comp in at:
            if (layer, comp) not in soo.index:
                continue
            own = soo.loc[[(layer, comp)]].reset_index(drop=True)
            frames.append(pd.concat([behaviour, own], ignore_index=True).assign(
                condition=cell["condition"], train_layer=layer, train_component=comp,
                loss=_LOSS_LABEL.get(cell["condition"], cell["loss"]), seed=cell["seed"]))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]
