"""SOO fine-tuning of a deceptive blue policy, against a sham with the same data and steps.

Loss = SOO term + anchor_weight x behaviour anchor, on batches of eligible observations (red out
of sight) from the policy's own episodes:
- SOO term: *normalised* MSE between the hidden activations on self and other observations,
  ||h_s - h_o||^2 / (||h_s||^2 + ||h_o||^2), in [0, 2] and scale-free, so shrinking the
  activations cannot lower it (log-MSE has no floor and collapsed the policy in a feasibility
  check);
- anchor: MSE between the tuned and the frozen policy's actions on the real observations, plus
  the normalised MSE between their hidden activations there. Without the latter the SOO term
  wins by inflating the activations (measured: norms x5.8 in 60 steps); with it the self
  activations stay put and the *other* activations have to move towards them.
The sham (`condition="sham"`) runs the same loss, data, optimizer and steps, but pairs each
self observation with the other-observation of a *different* state (a shuffled pairing): the
same amount of activation-matching pressure, without the self/other correspondence.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from ..config import Config
from ..errors import ConfigError
from .maddpg import MLP
from .soo_value import check_blue_actor, hidden, other_observations

CONDITIONS = ("soo", "sham")


@dataclasses.dataclass
class FinetuneConfig(Config):
    steps: int = 500
    lr: float = 1e-3
    batch_size: int = 256
    anchor_weight: float = 1.0
    data_episodes: int = 200   # episodes of the policy's own play that supply observations
    episodes: int = 500        # evaluation episodes per eval seed
    eval_seeds: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.anchor_weight < 0:
            raise ConfigError("steps and batch_size must be >= 1, lr > 0, anchor_weight >= 0")


def normalised_mse(h_self: torch.Tensor, h_other: torch.Tensor) -> torch.Tensor:
    """Per-row ||a - b||^2 / (||a||^2 + ||b||^2): 0 when equal, 2 when opposite, scale-free."""
    num = ((h_self - h_other) ** 2).sum(dim=1)
    return num / ((h_self ** 2).sum(dim=1) + (h_other ** 2).sum(dim=1) + 1e-8)


def finetune(actor: MLP, obs: np.ndarray, cfg: FinetuneConfig, condition: str,
             seed: int) -> tuple[MLP, list[dict]]:
    """A fine-tuned copy of blue's `actor` and its per-step log. `obs`: eligible observations."""
    if condition not in CONDITIONS:
        raise ConfigError(f"condition {condition!r} is unknown; use one of {CONDITIONS}")
    check_blue_actor(actor, obs)
    if len(obs) < 2:
        raise ConfigError("fine-tuning needs at least 2 eligible observations; play more episodes")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    frozen, tuned = copy.deepcopy(actor).eval(), copy.deepcopy(actor).eval()
    opt = torch.optim.Adam(tuned.parameters(), lr=cfg.lr)
    log = []
    for step in range(cfg.steps):
        idx = rng.integers(0, len(obs), cfg.batch_size)
        s = torch.as_tensor(obs[idx])
        o = torch.as_tensor(other_observations(obs[idx], rng))
        if condition == "sham":
            o = o[torch.as_tensor(rng.permutation(cfg.batch_size))]
        h_s = hidden(tuned, s)
        soo = normalised_mse(h_s, hidden(tuned, o)).mean()
        with torch.no_grad():
            target, h_frozen = frozen(s), hidden(frozen, s)
        anchor = ((tuned(s) - target) ** 2).mean() + normalised_mse(h_s, h_frozen).mean()
        loss = soo + cfg.anchor_weight * anchor
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.append({"step": step, "soo_term": soo.item(), "anchor": anchor.item()})
    return tuned.eval(), log
