"""A search over SOO training configurations, each against the sham control, in resumable cells.

A *cell* is one training run (or the untouched base model) and everything measured on it; it owns
one folder `cells/<id>/` (`outcomes.parquet` + `cell.json`, written all or nothing), so a killed
search rerun with the same command skips every finished cell. Conditions: `base`, `soo` (one per
layer x component x loss x pooling x lr x capability weight x pair set x seed) and `sham` (same
data, lr, capability term and seed with a plain LM loss; it does not depend on the layer,
component, loss or pooling, so one sham cell serves every SOO cell that shares the rest).

The search is staged: stage 1 trains `budget` SOO configurations drawn (seeded) from the grid on
the first search seed; stage 2 re-runs the `top_k` best on the other search seeds. A
configuration's score is its deception cut beyond sham minus its damage to the honest controls
(see `soo_interp.verdict`). Outcomes of a cell (long: metric, scenario, layout, at_layer,
at_component, value, n): deceptive rate of each scenario per layout (`paper`: the cheap room
described first; `honest_first`: swapped, a control for positional answers), both option orders;
perplexity and next-token KL to base on held-out neutral text; latent SOO and normalised overlap
of the held-out pairs at every (layer, component); optionally the self-deception signatures.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from .config import Config
from .data.pairs import PAIR_SETS
from .errors import ConfigError
from .models.sites import COMPONENTS

CELL_KEYS: tuple[str, ...] = ("condition", "layer", "component", "loss", "pooling", "lr",
                              "capability_weight", "pair_set", "seed")


@dataclasses.dataclass
class SearchConfig(Config):
    """The grid (`layers` None = every layer) and how much of it to train."""

    layers: str | None = None
    components: tuple[str, ...] = COMPONENTS
    losses: tuple[str, ...] = ("mse", "cosine", "kl_logits")
    poolings: tuple[str, ...] = ("last", "mean")
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    capability_weights: tuple[float, ...] = (0.0, 1.0)
    pair_sets: tuple[str, ...] = PAIR_SETS
    budget: int = 24                 # stage-1 SOO configurations, sampled from the grid
    top_k: int = 4                   # stage-2: best configurations re-run on the other seeds
    seeds: tuple[int, ...] = (0, 1)  # search seeds (the verdict must use others)
    epochs: int = 15
    n: int = 25                      # prompts per scenario x layout (x2 option orders)
    signatures: bool = False         # self-deception signatures per cell (probe fits; slower)
    sample_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run: a condition and its training configuration (None where it does not apply)."""

    condition: str
    layer: int | None = None
    component: str | None = None
    loss: str | None = None
    pooling: str | None = None
    lr: float | None = None
    capability_weight: float | None = None
    pair_set: str | None = None
    seed: int | None = None

    @property
    def cell_id(self) -> str:
        key = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return f"{self.condition}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def sham(self) -> "Cell":
        """The sham control of this SOO cell."""
        return Cell("sham", lr=self.lr, capability_weight=self.capability_weight,
                    pair_set=self.pair_set, seed=self.seed)

    def config_key(self) -> tuple:
        """The configuration without the seed (what the search ranks)."""
        return tuple(getattr(self, k) for k in CELL_KEYS if k != "seed")


def grid(cfg: SearchConfig, n_layers: int) -> list[Cell]:
    """Every distinct SOO configuration of the space (seed unset), in a fixed order."""
    from .models.sites import parse_layers

    layers = parse_layers(cfg.layers, n_layers)
    # kl_logits compares output distributions whatever the layer and component: its cells sit at
    # the last layer's residual stream (the logits' input), once, for the overlap read-out
    cells = [Cell("soo", *((n_layers - 1, "resid") if loss == "kl_logits" else (layer, comp)),
                  loss, pool, lr, w, ps)
             for layer, comp, loss, pool, lr, w, ps in itertools.product(
                 layers, cfg.components, cfg.losses, cfg.poolings, cfg.lrs,
                 cfg.capability_weights, cfg.pair_sets)]
    cells = list(dict.fromkeys(cells))
    if not cells:
        raise ConfigError("the search space has no cells: every axis (layers, components, losses, "
                          "poolings, lrs, capability_weights, pair_sets) needs at least one value")
    return cells


def stage1(cfg: SearchConfig, n_layers: int) -> list[Cell]:
    """`budget` configurations sampled without replacement (seeded), on the first search seed."""
    space = grid(cfg, n_layers)
    picked = random.Random(cfg.sample_seed).sample(space, min(cfg.budget, len(space)))
    return [dataclasses.replace(c, seed=cfg.seeds[0]) for c in picked]


def with_controls(cells: Iterable[Cell]) -> list[Cell]:
    """The SOO cells, their sham cells and the base cell, each once, base first."""
    cells = list(cells)
    out = [Cell("base")] + [c.sham() for c in cells] + cells
    return list(dict.fromkeys(out))


def cell_folder_done(folder: Path, cell: Cell) -> bool:
    """A finished cell folder; one holding another configuration is refused."""
    meta = folder / "cell.json"
    if not meta.exists():
        return False
    saved = json.loads(meta.read_text())["cell"]
    if saved != dataclasses.asdict(cell):
        raise ConfigError(f"{folder} holds another cell ({saved}); remove it or use a new --out")
    return True


def run_cells(model: str, cells: Sequence[Cell], out: Path, cfg: SearchConfig,
              progress: bool = True) -> pd.DataFrame:
    """Run every cell not finished under `out/cells/` (base first), then return all outcomes."""
    from tqdm.auto import tqdm

    from .outcomes import run_cell

    todo = [c for c in cells if not cell_folder_done(out / "cells" / c.cell_id, c)]
    for cell in tqdm(todo, disable=not progress, desc="cells", unit="cell"):
        run_cell(model, cell, out / "cells" / cell.cell_id, cfg)
    return load_outcomes(out, cells)


def load_outcomes(out: Path, cells: Sequence[Cell]) -> pd.DataFrame:
    """Outcomes of `cells` from their folders, with the cell's keys as columns."""
    frames = [pd.read_parquet(out / "cells" / c.cell_id / "outcomes.parquet")
              .assign(cell_id=c.cell_id, **dataclasses.asdict(c)) for c in cells]
    return pd.concat(frames, ignore_index=True)


STATUS = "search.json"


def _start(model: str, cfg: SearchConfig, out: Path) -> None:
    """Record the search (status `running`); a folder holding another search is refused."""
    from .runs import atomic_write_json, library_versions

    claim_resumable(out, "search")
    status = out / STATUS
    if status.exists():
        saved = json.loads(status.read_text())
        if saved["config"] != cfg.to_dict() or saved["model"] != model:
            raise ConfigError(f"{out} holds a search with another model or configuration; rerun "
                              "it with the same settings to resume, or choose another --out")
        return
    atomic_write_json(status, {"model": model, "config": cfg.to_dict(), "status": "running",
                               "versions": library_versions()})


def claim_resumable(out: Path, kind: str) -> None:
    """`out` as a `kind` run folder that a rerun resumes: new, empty, or an earlier `kind` run
    (a user's folder or another kind of run is refused)."""
    from .runs import check_out_dir, mark_run, run_kind

    check_out_dir(out, kind=kind, resume=True)
    out.mkdir(parents=True, exist_ok=True)
    if run_kind(out) is None:
        mark_run(out, kind)


def search(model: str, cfg: SearchConfig, out: str | Path, progress: bool = True) -> pd.DataFrame:
    """Stage 1 (sampled configurations, first seed) and stage 2 (the `top_k` best, other
    seeds), every SOO cell with its sham and the base. Resumable: rerun with the same arguments.
    Writes `outcomes.parquet`, `effects.csv` (per SOO cell), `configs.csv` (per configuration,
    best first) and, last, `search.json` with status `complete`. Returns the ranked configs."""
    from .effects import CONFIG_KEYS, effects, rank_configs
    from .models import load_model
    from .runs import atomic_path, atomic_write_json

    out = Path(out)
    n_layers = load_model(model).n_layers
    first = stage1(cfg, n_layers)  # fails on an empty space before anything is written
    _start(model, cfg, out)
    cells = with_controls(first)
    ranked = rank_configs(effects(run_cells(model, cells, out, cfg, progress)))
    best = set(ranked.head(cfg.top_k)[CONFIG_KEYS].itertuples(index=False, name=None))
    again = [dataclasses.replace(c, seed=s) for c in first for s in cfg.seeds[1:]
             if c.config_key()[1:] in best]
    cells = with_controls(first + again)
    outcomes = run_cells(model, cells, out, cfg, progress)
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
        done = len(list((Path(search_dir) / "cells").glob("*/cell.json")))
        raise ConfigError(f"the search in {search_dir} has not finished ({done} cells done); "
                          "rerun the same `soo-interp search` command to complete it first")
    return meta
