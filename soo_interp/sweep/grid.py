"""The grid of a layer sweep: its config, its cells, and each cell's config hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Sequence

from ..config import Config
from ..data.pairs import PromptPair
from ..data.scenarios import SCENARIOS
from ..errors import ConfigError
from ..training.config import LOSSES, TrainConfig


def _sweep_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=15, lr=1e-4)


@dataclasses.dataclass
class SweepConfig(Config):
    """A layer ablation: the grid, and the `TrainConfig` every cell starts from (its layer,
    component, loss, seed and sham are set per cell)."""

    train: TrainConfig = dataclasses.field(default_factory=_sweep_train_defaults)
    layers: str | None = None            # "0-3" / None for every layer
    components: tuple[str, ...] = ("attn",)
    losses: tuple[str, ...] = ("mse",)
    seeds: tuple[int, ...] = (0,)
    sham: bool = True
    scenarios: tuple[str, ...] = SCENARIOS
    n: int = 50                          # prompts per scenario variant (x2 mirrored)
    workers: int = 2                     # cells at once (local processes; 1 = this process)

    positive = ("n", "workers")

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [x for x in self.losses if x not in LOSSES]
        if bad or not self.losses or not self.components or not self.seeds:
            raise ConfigError(f"SweepConfig: give at least one component, seed and loss (losses from "
                              f"{', '.join(LOSSES)}; got {list(self.losses)})")

    def outcome_key(self) -> dict[str, Any]:
        """What every cell's results depend on besides its own coordinates (not the grid)."""
        train = {k: v for k, v in self.train.to_dict().items()
                 if k not in ("layer", "component", "loss", "seed", "sham", "max_steps", "checkpoint_every")}
        return {"train": train, "scenarios": list(self.scenarios), "n": self.n}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One independent unit of a sweep: the base model, one SOO run or one sham run."""

    condition: str                      # base | soo | sham
    layer: int | None = None
    component: str | None = None
    loss: str | None = None
    seed: int | None = None

    @property
    def name(self) -> str:
        if self.condition == "soo":
            return f"soo-L{self.layer}.{self.component}-{self.loss}-s{self.seed}"
        return "base" if self.condition == "base" else f"sham-s{self.seed}"


def plan_cells(cfg: SweepConfig, layers: Sequence[int]) -> list[Cell]:
    cells = [Cell("base")]
    cells += [Cell("soo", layer, comp, loss, seed) for layer in layers for comp in cfg.components
              for loss in cfg.losses for seed in cfg.seeds]
    cells += [Cell("sham", seed=seed) for seed in cfg.seeds] if cfg.sham else []
    return cells


def cell_train_config(cfg: SweepConfig, cell: Cell, layers: Sequence[int]) -> TrainConfig:
    if cell.condition == "soo":
        return dataclasses.replace(cfg.train, layer=cell.layer, component=cell.component,
                                   loss=cell.loss,
                                   seed=cell.seed, sham=False)
    # sham: the LM loss ignores layer/component/loss; fixed values keep its hash grid-independent
    return dataclasses.replace(cfg.train, layer=0, component="attn", loss="mse",
                               seed=cell.seed, sham=True)


def cell_hash(cfg: SweepConfig, cell: Cell, model_name: str, pairs: Sequence[PromptPair]) -> str:
    """Digest of everything a cell's results depend on (not the rest of the grid)."""
    key = {"cell": dataclasses.asdict(cell), "model": model_name, **cfg.outcome_key(),
           "pairs": [(p.self_text, p.other_text) for p in pairs]}
    if cell.condition != "base":
        key["train"] = cell_train_config(cfg, cell, []).to_dict()
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


