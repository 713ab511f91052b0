"""`TrainState`: everything a training run carries from one optimizer step to the next, saved
and restored as one object (through the checkpoint format in `training.checkpoint`).

The data position is the optimizer step: the order of pairs is a seeded permutation per
(seed, epoch), so `divmod(step, steps_per_epoch)` says which accumulation group comes next. To
carry something new across a resume, add a field here and to `state_dict`/`load_state_dict`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, restore_rng, rng_snapshot, save_checkpoint


@dataclasses.dataclass
class TrainState:
    """Trainable weights, optimizer, LR scheduler, AMP grad scaler, step and log so far."""

    params: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any = None
    step: int = 0
    log: list[dict] = dataclasses.field(default_factory=list)

    def position(self, steps_per_epoch: int) -> tuple[int, int]:
        """(epoch, index of the accumulation group within it) of the next step."""
        return divmod(self.step, steps_per_epoch)

    def save(self, run_dir: Path, meta: dict[str, Any], rng: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint of this state (with the RNG state `rng`, default: now)."""
        return save_checkpoint(Path(run_dir), self.step, self.params, self.optimizer,
                               self.scheduler, self.scaler, rng or rng_snapshot(), meta, self.log)

    def load(self, checkpoint: Path, meta: dict[str, Any]) -> None:
        """Restore this state and the RNGs from `checkpoint`, refusing one made for another
        model, config or set of pairs (`meta`)."""
        self.step, self.log, rng = load_checkpoint(checkpoint, meta, self.params, self.optimizer,
                                                   self.scheduler, self.scaler)
        restore_rng(rng)


def new_state(model: torch.nn.Module, config: Any, total_steps: int, device: torch.device,
              scaler: Any = None) -> TrainState:
    """A fresh state for `model`'s trainable parameters: AdamW and the configured schedule
    (`transformers.get_scheduler`: constant or linear decay, after `warmup_steps`)."""
    from transformers import get_scheduler

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(params.values(), lr=config.lr, weight_decay=config.weight_decay)
    name = "constant_with_warmup" if config.lr_schedule == "constant" else config.lr_schedule
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=config.warmup_steps,
                              num_training_steps=total_steps)
    return TrainState(params, optimizer, scheduler, scaler)
