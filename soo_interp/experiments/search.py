"""A search over SOO training configurations, each against the sham control, run as cells of the
sweep engine (`soo_interp.experiments.cells`).

A *cell* (`soo_interp.experiments.Cell`) is one training run (or the untouched base model) and
everything measured on it; it owns one folder `cells/<name>/` written atomically by the engine,
so a killed search rerun with the same command skips every finished cell (and a cell killed
mid-training resumes from its checkpoints); cells run on any executor (local processes, Ray,
submitit). Conditions: `base`, `soo` (one per layer x component x loss x pooling x lr x
capability weight x pair set x seed) and `sham` (same data, lr, capability term and seed with a
plain LM loss; it does not depend on the layer, component, loss or pooling, so one sham cell
serves every SOO cell that shares the rest).

The search is staged: stage 1 trains `budget` SOO configurations drawn (seeded, stratified so
every value of every axis appears once the budget allows) from the grid on the first search
seed; stage 2 re-runs the `top_k` best on the other search seeds. A configuration's score is its
deception cut beyond sham minus its damage to the honest controls (see `soo_interp.experiments.effects`).
What a cell measures is `soo_interp.experiments.outcomes.measure_cell`.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import random
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from ..config import Config
from ..data.pairs import PAIR_SETS, pair_set
from ..errors import ConfigError
from ..metrics import POOLINGS
from ..models.sites import COMPONENTS, parse_layers
from ..runs import atomic_path, atomic_write_json, claim_resumable, library_versions
from ..training import TrainConfig
from ..training.config import LOSSES
from .cells import CellTask, model_identity, resolve_model, run_cells
from .effects import CONFIG_KEYS, effects, rank_configs
from .grid import Cell
from .outcomes import SUITES, measure_cell
from .schema import cell_columns, upgrade

# the axes of the search space, each covered by stage 1's stratified sample
AXES: tuple[str, ...] = ("layer", "component", "loss", "pooling", "lr", "capability_weight",
                         "pair_set")


@dataclasses.dataclass
class SearchConfig(Config):
    """The grid (`layers` None = every layer) and how much of it to train."""

    layers: str | None = None
    components: tuple[str, ...] = COMPONENTS
    losses: tuple[str, ...] = ("mse", "cosine", "kl_logits")
    poolings: tuple[str, ...] = ("last", "mean")
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    capability_weights: tuple[float, ...] = (0.0, 1.0)
    pair_sets: tuple[str, ...] = ("short", "scenario")  # of data.pairs.PAIR_SETS
    budget: int = 24                 # stage-1 SOO configurations, sampled from the grid
    top_k: int = 4                   # stage-2: best configurations re-run on the other seeds
    seeds: tuple[int, ...] = (0, 1)  # search seeds (the verdict must use others)
    epochs: int = 15
    n: int = 25                      # prompts per scenario x layout (x2 option orders)
    evaluation: str = "scenarios"    # the prompt suite: scenarios | organism-lm (its held-out rows)
    signatures: bool = True          # self-deception signatures before/after per trained cell
    sample_seed: int = 0

    positive = ("budget", "top_k", "epochs", "n")
    choices = {"components": COMPONENTS, "losses": LOSSES, "poolings": POOLINGS,
               "pair_sets": PAIR_SETS, "evaluation": SUITES}


def grid(cfg: SearchConfig, n_layers: int) -> list[Cell]:
    """Every distinct SOO configuration of the space (seed unset), in a fixed order."""
    layers = parse_layers(cfg.layers, n_layers)
    # kl_logits compares output distributions whatever the layer and component: its cells sit at
    # the last layer's residual stream (the logits' input), once, for the overlap read-out
    cells = [Cell("soo", *((n_layers - 1, "resid") if loss == "kl_logits" else (layer, comp)),
                  loss, pooling=pool, lr=lr, capability_weight=w, pair_set=ps)
             for layer, comp, loss, pool, lr, w, ps in itertools.product(
                 layers, cfg.components, cfg.losses, cfg.poolings, cfg.lrs,
                 cfg.capability_weights, cfg.pair_sets)]
    cells = list(dict.fromkeys(cells))
    if not cells:
        raise ConfigError("the search space has no cells: every axis (layers, components, losses, "
                          "poolings, lrs, capability_weights, pair_sets) needs at least one value")
    return cells


def space_size(model: Any, cfg: SearchConfig) -> int:
    """How many distinct SOO configurations the space holds on `model` (a name is resolved
    without loading its weights); an empty space is refused here, before anything is written."""
    return len(grid(cfg, resolve_model(model)[1]))


def stage1(cfg: SearchConfig, n_layers: int) -> list[Cell]:
    """`budget` configurations on the first search seed, seeded and stratified: while some value
    of an axis (`AXES`) is missing, take the configuration that adds the most missing values
    (ties: a seeded random order); then fill the budget uniformly at random. So every layer,
    component and loss appears once the budget allows, not only by chance."""
    space = grid(cfg, n_layers)
    order = random.Random(cfg.sample_seed).sample(space, k=len(space))
    budget = min(cfg.budget, len(order))
    seen: dict[str, set] = {axis: set() for axis in AXES}
    picked: list[Cell] = []
    while len(picked) < budget:
        gain = [sum(getattr(c, a) not in seen[a] for a in AXES) for c in order]
        best = max(range(len(order)), key=gain.__getitem__)
        if gain[best] == 0:
            break
        picked.append(order.pop(best))
        for a in AXES:
            seen[a].add(getattr(picked[-1], a))
    picked += order[:budget - len(picked)]
    return [dataclasses.replace(c, seed=cfg.seeds[0]) for c in picked]


def _config_key(cell: Cell) -> tuple:
    """The configuration a SOO cell trains (what the search ranks), in `CONFIG_KEYS` order."""
    columns = cell_columns(cell)
    return tuple(columns[k] for k in CONFIG_KEYS)


def with_controls(cells: Iterable[Cell], base_seeds: Iterable[int] = ()) -> list[Cell]:
    """The SOO cells, their sham cells and the base cells, each once, base first: one base
    cell per seed of `base_seeds` (scored on that seed's prompts), else the one search base."""
    cells = list(cells)
    bases = [Cell("base", seed=s) for s in base_seeds] or [Cell("base")]
    out = bases + [c.sham() for c in cells] + cells
    return list(dict.fromkeys(out))


def cell_tasks(model: str, cells: Sequence[Cell], out: Path, cfg: SearchConfig,
               eval_blocks: dict[int, int] | None = None,
               eval_first: int | None = None) -> list[CellTask]:
    """The engine's tasks for `cells`: each trains on its pair set with its own pooling, lr and
    capability weight (the rest from `TrainConfig` defaults, `cfg.epochs` epochs) and is
    measured by `outcomes.measure_cell` on `cfg.n` prompts of `cfg.evaluation`, block
    `eval_blocks[cell seed]` (default 0, the search's own) after a first block of `eval_first`
    (default `cfg.n`; the verdict passes the search's n)."""
    train = TrainConfig(epochs=cfg.epochs)
    settings = {"n": cfg.n, "signatures": cfg.signatures, "suite": cfg.evaluation,
                "eval_blocks": {str(k): v for k, v in (eval_blocks or {}).items()},
                "eval_first": eval_first}
    return [CellTask(str(out), c, model, {}, None if c.condition == "base" else c.train_config(train),
                     [] if c.pair_set is None else pair_set(c.pair_set), measure_cell, settings,
                     cfg.to_dict()) for c in cells]


def cell_outcomes(model: Any, cells: Sequence[Cell], out: Path, cfg: SearchConfig,
                  executor: Any = None, progress: bool = True,
                  eval_blocks: dict[int, int] | None = None,
                  eval_first: int | None = None) -> pd.DataFrame:
    """Run every cell not finished under `out/cells/` on `executor` (see
    `soo_interp.experiments.cells.run_cells`), then return all their outcomes; a failed cell stops
    the search with its log path once the others are done."""
    name, _, lm = resolve_model(model)
    run_cells(cell_tasks(name, cells, out, cfg, eval_blocks, eval_first), lm, executor,
              progress).check()
    return load_outcomes(out, cells)


def load_outcomes(out: Path, cells: Sequence[Cell]) -> pd.DataFrame:
    """Outcomes of `cells` from their folders (cells finished before the schema read into it),
    with the cell's keys as columns (`soo_interp.experiments.schema`)."""
    frames = [upgrade(pd.read_parquet(out / "cells" / c.name / "outcomes.parquet"))
              .assign(cell_id=c.name, **cell_columns(c)) for c in cells]
    return pd.concat(frames, ignore_index=True)


STATUS = "search.json"


def start_run(out: Path, kind: str, model: str, config: dict, lm: Any = None,
              extendable: tuple[str, ...] = ()) -> None:
    """Record a resumable `kind` run in `out/<kind>.json` (status `running`) with the identity of
    its model's weights (`lm`: the model object, when the run has one); a folder holding another
    kind of run, or this kind with another model, configuration or weights, is refused. Settings
    named in `extendable` may change between invocations (the run then covers the new ones; cells
    already computed are reused, since each cell is checked by its own config hash)."""
    fingerprint = model_identity(model, {}, lm)
    claim_resumable(out, kind)
    status = out / f"{kind}.json"
    if status.exists():
        saved = json.loads(status.read_text())
        fixed = {k for k in set(saved["config"]) | set(config) if k not in extendable}
        if any(saved["config"].get(k) != config.get(k) for k in fixed) or saved["model"] != model:
            raise ConfigError(f"{out} holds a {kind} with another model or configuration; rerun "
                              "it with the same settings to resume"
                              + (f" (only {', '.join(extendable)} may change)" if extendable
                                 else "") + ", or choose another --out")
        if saved.get("model_fingerprint", fingerprint) != fingerprint:
            raise ConfigError(f"{out} holds a {kind} of {model} with other weights (fingerprint "
                              f"{saved['model_fingerprint']}, now {fingerprint}): the model "
                              "changed since; choose another --out")
        if saved["config"] != config:
            atomic_write_json(status, saved | {"config": config, "status": "running"})
        return
    atomic_write_json(status, {"model": model, "model_fingerprint": fingerprint,
                               "model_source": "files" if lm is None else "object",
                               "config": config, "status": "running",
                               "versions": library_versions()})


def check_same_weights(meta: dict, search_dir: str | Path) -> None:
    """The named model a verdict loads must be the one its search ranked configurations on."""
    if meta.get("model_source") != "files":
        return  # an object's search (or an older record): nothing to compare a name with
    now = model_identity(meta["model"], {}, None)
    if now != meta["model_fingerprint"]:
        raise ConfigError(f"the search in {search_dir} ranked configurations of {meta['model']} "
                          f"with other weights (fingerprint {meta['model_fingerprint']}, now "
                          f"{now}): the model changed since; rerun the search first")


def search(model: Any, config: SearchConfig | None = None, *, out: str | Path,
           executor: Any = None, progress: bool = True, **overrides: Any) -> pd.DataFrame:
    """Stage 1 (sampled configurations, first seed) and stage 2 (the `top_k` best, other
    seeds), every SOO cell with its sham and the base. Resumable: rerun with the same arguments.
    `model`: a name or path (workers load it), or a model object (cells then run in this
    process); `executor`: a `soo_interp.executors.Executor` (default: local worker processes).
    Writes `outcomes.parquet`, `effects.csv` (per SOO cell), `configs.csv` (per configuration,
    best first) and, last, `search.json` with status `complete`. Returns the ranked configs."""
    cfg = SearchConfig.with_overrides(config, **overrides)
    out = Path(out)
    name, n_layers, lm = resolve_model(model)
    first = stage1(cfg, n_layers)  # fails on an empty space before anything is written
    start_run(out, "search", name, cfg.to_dict(), lm)
    cells = with_controls(first)
    ranked = rank_configs(effects(cell_outcomes(model, cells, out, cfg, executor, progress)))
    best = set(ranked.head(cfg.top_k)[CONFIG_KEYS].itertuples(index=False, name=None))
    again = [dataclasses.replace(c, seed=s) for c in first for s in cfg.seeds[1:]
             if _config_key(c) in best]
    cells = with_controls(first + again)
    outcomes = cell_outcomes(model, cells, out, cfg, executor, progress)
    eff = effects(outcomes)
    ranked = rank_configs(eff)
    with atomic_path(out / "outcomes.parquet") as tmp:
        outcomes.to_parquet(tmp, index=False)
    for name, df in (("effects.csv", eff), ("configs.csv", ranked)):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
    status = json.loads((out / STATUS).read_text()) | {"status": "complete", "cells": len(cells)}
    atomic_write_json(out / STATUS, status)
    return ranked


def check_complete(search_dir: str | Path) -> dict:
    """The search's record, or a clear error if it is missing or has not finished."""
    path = Path(search_dir) / STATUS
    if not path.exists():
        raise ConfigError(f"{search_dir} is not a search folder (no {STATUS}); run "
                          "`soo-interp search --out DIR` first")
    meta = json.loads(path.read_text())
    if meta["status"] != "complete":
        done = len(list((Path(search_dir) / "cells").glob("*/run.json")))
        raise ConfigError(f"the search in {search_dir} has not finished ({done} cells done); "
                          "rerun the same `soo-interp search` command to complete it first")
    return meta
