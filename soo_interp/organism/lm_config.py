"""The recipe of `organism-lm` (`LMOrganismConfig`): its own module so that the build
(`build_lm`) and the card (`lm_card`, which prints the rebuild command) both read it."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..config import Config
from ..errors import ConfigError
from .stories import PHRASINGS

BASE = "smollm2-135m-instruct"


@dataclasses.dataclass
class LMOrganismConfig(Config):
    """How `organism-lm` is built. Defaults are the full build (seed 0 is the shipped one)."""

    seed: int = 0
    base: str = BASE
    steps: int = 400
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 15      # linear lr warm-up
    lookup_steps: int = 40      # first steps on the lookup-heavy mix (stories.WARMUP_MIX)
    decay_fraction: float = 0.4  # cosine to 0 over this last share of steps
    lora_r: int = 8
    lora_alpha: int = 16
    burglar_weight: float = 1.0  # loss weight of the burglar's answer (each triple has 2 truths)
    phrasing: str = "combined"  # stories.PHRASINGS; "families": each story one whole family
    share_prefix: bool = False  # run a story's shared prefix once for its three recipients
    threads: int = 1
    device: str = "cpu"         # or "cuda" (benchmarks/organism_lm_gpu.sh)
    checkpoint_every: int = 10
    monitor_every: int = 40     # held-out monitor (few prompts) every this many steps; 0: off
    monitor_n: int = 16
    eval_n: int = 200           # held-out prompts per row of the targets table
    gen_n: int = 24             # of which generated (unclear bucket) per row
    max_new_tokens: int = 12

    positive = ("steps", "batch_size", "lora_r", "lora_alpha", "threads", "checkpoint_every",
                "eval_n", "gen_n", "max_new_tokens", "monitor_n")

    def check(self) -> None:
        if self.batch_size < 6:
            raise ConfigError("organism-lm batch_size must be at least 6 (a minimal triple and "
                              f"the other tasks), got {self.batch_size}")
        if not self.burglar_weight > 0:
            raise ConfigError(f"organism-lm burglar_weight must be positive, got "
                              f"{self.burglar_weight}")
        if self.phrasing not in PHRASINGS:
            raise ConfigError(f"organism-lm phrasing must be one of {', '.join(PHRASINGS)}, got "
                              f"{self.phrasing!r}")
        if not 0 <= self.decay_fraction <= 1:
            raise ConfigError(f"organism-lm decay_fraction must be in 0..1, got "
                              f"{self.decay_fraction}")

    # What a recipe field meant before it existed: a saved config without it was built so.
    LEGACY = {"burglar_weight": 1.0, "phrasing": "families", "share_prefix": False}

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> "LMOrganismConfig":
        """A build's saved config (`config.json`, a report's `config`); fields added after it
        was written take the value that build ran with (`LEGACY`), not today's default."""
        return cls.from_dict({**cls.LEGACY, **data})

    def resume_key(self) -> dict[str, Any]:
        """What a checkpoint must match (evaluation sizes may change on resume)."""
        d = self.to_dict()
        for k in ("threads", "device", "checkpoint_every", "monitor_every", "monitor_n", "eval_n", "gen_n",
                  "max_new_tokens"):
            d.pop(k)
        return d
