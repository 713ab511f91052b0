"""Cells and their identity: a sweep's grid and config, the one `Cell` a sweep or a search runs,
the training config a cell trains with, and each cell's config hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Sequence

from ..config import Config
from ..data.pairs import PromptPair
from ..data.scenarios import SCENARIOS
from ..errors import ConfigError
from ..models.sites import COMPONENTS
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
    choices = {"losses": LOSSES, "components": COMPONENTS}

    def check(self) -> None:
        if not self.losses or not self.components or not self.seeds:
            raise ConfigError("SweepConfig: give at least one component, seed and loss")

    def outcome_key(self) -> dict[str, Any]:
        """What every cell's results depend on besides its own coordinates (not the grid)."""
        train = {k: v for k, v in self.train.to_dict().items()
                 if k not in ("layer", "component", "loss", "seed", "sham", "max_steps", "checkpoint_every")}
        return {"train": train, "scenarios": list(self.scenarios), "n": self.n}


# a cell's own training settings beyond its site and loss (TrainConfig fields of the same
# name); None leaves the run's default
TRAIN_OVERRIDES: tuple[str, ...] = ("pooling", "lr", "capability_weight", "sham_text",
                                    "stop_grad_self")
LORA_SCOPES: tuple[str, ...] = ("target",)  # lora_scope: LoRA at the trained layer only


@dataclasses.dataclass(frozen=True)
class Cell:
    """One independent unit of a sweep, a search or a ladder: the base model, one SOO run or
    one sham run. `pooling`, `lr`, `capability_weight`, `sham_text`, `stop_grad_self`,
    `lora_scope` and `pair_set` are set where the cell's own training differs from the run's
    defaults (a search or a ladder sets them per cell; a sweep leaves them). A base cell with a
    `seed` is the untrained model evaluated on that seed's prompts."""

    condition: str                      # base | soo | sham
    layer: int | None = None
    component: str | None = None
    loss: str | None = None
    seed: int | None = None
    pooling: str | None = None
    lr: float | None = None
    capability_weight: float | None = None
    pair_set: str | None = None
    sham_text: str | None = None        # the sham's text: None (the pairs) | "neutral"
    stop_grad_self: bool | None = None  # True: the self side detached
    lora_scope: str | None = None       # None (the run's LoRA layers) | "target"

    @property
    def name(self) -> str:
        """Its folder name, e.g. `soo-L1.attn-mse-s0`, `sham-lr0.01-cw0-short-s0`, `base`."""
        if self.condition == "base":
            return "base" if self.seed is None else f"base-s{self.seed}"
        parts = [self.condition] + ([f"L{self.layer}.{self.component}", self.loss]
                                    if self.condition == "soo" else [])
        parts += [self.pooling, None if self.lr is None else f"lr{self.lr:g}",
                  None if self.capability_weight is None else f"cw{self.capability_weight:g}",
                  self.sham_text, "sgself" if self.stop_grad_self else None,
                  None if self.lora_scope is None else f"lora-{self.lora_scope}",
                  self.pair_set, f"s{self.seed}"]
        return "-".join(str(p) for p in parts if p is not None)

    def coords(self) -> dict[str, Any]:
        """The cell's coordinates; training settings left to the run's defaults are omitted
        (so a sweep's cells keep the identity they had before cells carried them)."""
        extra = (*TRAIN_OVERRIDES, "pair_set", "lora_scope")
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k not in extra}

    def sham(self) -> "Cell":
        """The sham control of this SOO cell: the LM loss ignores the site, loss and pooling."""
        return Cell("sham", seed=self.seed, lr=self.lr, capability_weight=self.capability_weight,
                    pair_set=self.pair_set)

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """`base` with this cell's condition, site, loss, seed and own settings. The sham's LM
        loss ignores the site and loss: fixed values keep its hash independent of the grid."""
        own = {k: getattr(self, k) for k in TRAIN_OVERRIDES if getattr(self, k) is not None}
        if self.lora_scope == "target":
            own["layers_to_transform"] = (self.layer,)
        elif self.lora_scope is not None:
            raise ConfigError(f"unknown lora_scope {self.lora_scope!r}; choose from "
                              f"{', '.join(LORA_SCOPES)} (or None for the run's LoRA layers)")
        if self.condition == "soo":
            return dataclasses.replace(base, layer=self.layer, component=self.component,
                                       loss=self.loss, seed=self.seed, sham=False, **own)
        return dataclasses.replace(base, layer=0, component="attn", loss="mse", seed=self.seed,
                                   sham=True, **own)


def plan_cells(cfg: SweepConfig, layers: Sequence[int]) -> list[Cell]:
    cells = [Cell("base")]
    cells += [Cell("soo", layer, comp, loss, seed) for layer in layers for comp in cfg.components
              for loss in cfg.losses for seed in cfg.seeds]
    cells += [Cell("sham", seed=seed) for seed in cfg.seeds] if cfg.sham else []
    return cells


def cell_hash(cell: Cell, model: str, settings: dict[str, Any], pairs: Sequence[PromptPair],
              train: TrainConfig | None, fingerprint: str = "") -> str:
    """Digest of everything a cell's results depend on (not the rest of the grid): its
    coordinates, the model (name and weights `fingerprint`), the measurement `settings`, the
    training pairs and config."""
    key = {"cell": cell.coords(), "model": model, "fingerprint": fingerprint, **settings,
           "pairs": [(p.self_text, p.other_text) for p in pairs]}
    if train is not None:
        key["train"] = train.to_dict()
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
