"""SOO fine-tuning of a deceptive blue policy, against shams of the same dose. Two methods:

`rl` (the paper's): continued MADDPG training of both agents for `rl_episodes` episodes (the
paper: 10,000) from a baseline's networks, with `soo_weight` x the SOO term below (on the
batch's eligible observations) added to blue's actor loss; conditions `soo`, `sham` (the term
on shuffled self/other pairs) and `plain` (no term: the task reward alone, the same dose of
training). Constant exploration noise `noise`; the same seed in every condition.

`supervised`: a fixed set of eligible observations, no task reward:
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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..errors import ConfigError, check_choice
from .checkpoint import load_agents
from .env import RED_SLOT
from .maddpg import MLP
from .soo_value import check_blue_actor, hidden, other_observations
from .training import RLTrainConfig, Run, play_round

CONDITIONS = {"rl": ("soo", "sham", "plain"), "supervised": ("soo", "sham")}
METHODS: tuple[str, ...] = tuple(CONDITIONS)
TRAIN_FIELDS = ("method", "rl_episodes", "soo_weight", "noise", "n_envs")  # what a tuned policy
# of the rl method depends on (evaluation settings aside)


@dataclasses.dataclass
class FinetuneConfig(Config):
    method: str = "rl"
    rl_episodes: int = 10_000  # rl: episodes of continued training (the paper's dose)
    soo_weight: float = 1.0    # rl: weight of the SOO term in blue's actor loss
    noise: float = 0.1         # rl: exploration noise scale, constant
    n_envs: int = 100          # rl: environments in lock-step
    steps: int = 500           # supervised: optimizer steps
    lr: float = 1e-3
    batch_size: int = 256
    anchor_weight: float = 1.0
    data_episodes: int = 200   # episodes of the policy's own play that supply observations
    episodes: int = 500        # evaluation episodes per eval seed
    eval_seeds: int = 3
    conditions: tuple[str, ...] = ()  # which of the method's conditions to run (empty: all)

    positive = ("rl_episodes", "n_envs", "steps", "batch_size", "data_episodes", "episodes",
                "eval_seeds")
    choices = {"method": METHODS}

    def check(self) -> None:
        if self.lr <= 0 or self.anchor_weight < 0 or self.soo_weight < 0 or self.noise < 0:
            raise ConfigError("FinetuneConfig: lr must be > 0, anchor_weight, soo_weight and "
                              "noise >= 0")
        unknown = sorted(set(self.conditions) - set(CONDITIONS[self.method]))
        if unknown:
            raise ConfigError(f"conditions {unknown} are not ones of the {self.method} method; use"
                              f" some of {list(CONDITIONS[self.method])}, e.g. soo,plain")

    @property
    def run_conditions(self) -> tuple[str, ...]:
        """The conditions to run, in the method's order."""
        return tuple(c for c in CONDITIONS[self.method]
                     if not self.conditions or c in self.conditions)


def normalised_mse(h_self: torch.Tensor, h_other: torch.Tensor) -> torch.Tensor:
    """Per-row ||a - b||^2 / (||a||^2 + ||b||^2): 0 when equal, 2 when opposite, scale-free."""
    num = ((h_self - h_other) ** 2).sum(dim=1)
    return num / ((h_self ** 2).sum(dim=1) + (h_other ** 2).sum(dim=1) + 1e-8)


def finetune(actor: MLP, obs: np.ndarray, cfg: FinetuneConfig, condition: str,
             seed: int) -> tuple[MLP, list[dict]]:
    """A fine-tuned copy of blue's `actor` and its per-step log. `obs`: eligible observations."""
    check_choice("condition", condition, CONDITIONS["supervised"])
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


def soo_term(condition: str, weight: float, rng: np.random.Generator
             ) -> Callable[[MLP, torch.Tensor], torch.Tensor | None]:
    """Blue's extra actor-loss term for the rl method: `weight` x the normalised MSE between the
    hidden activations on the batch's eligible observations (red out of sight: its slot is 0)
    and on copies with a fictitious red nearby (`soo`) or on the copies of shuffled rows
    (`sham`). Computed in eval mode, as the SOO value is."""
    def term(actor: MLP, obs: torch.Tensor) -> torch.Tensor | None:
        s = obs[(obs[:, RED_SLOT] == 0).all(dim=1)]
        if len(s) < 2:
            return None
        o = torch.as_tensor(other_observations(s.numpy(), rng))
        if condition == "sham":
            o = o[torch.as_tensor(rng.permutation(len(o)))]
        loss = weight * normalised_mse(hidden(actor, s), hidden(actor, o)).mean()
        actor.train()
        return loss
    return term


def finetune_rl(run_folder: Path, cfg: FinetuneConfig, condition: str
                ) -> tuple[dict[str, MLP], list[dict]]:
    """Both actors after `cfg.rl_episodes` episodes of continued MADDPG training from the
    networks of a baseline run (fresh optimizers and replay buffer, the run's seed), with the
    SOO term of `condition` in blue's actor loss (none for `plain`); and the per-round log."""
    check_choice("condition", condition, CONDITIONS["rl"])
    agents, meta = load_agents(run_folder)
    tcfg = RLTrainConfig.from_dict({**meta["config"], "episodes": cfg.rl_episodes,
                                    "n_envs": cfg.n_envs, "snapshots": []})
    run = Run(tcfg)
    for a, ag in agents.items():
        run.agents[a].load_state_dict(ag.state_dict())
    if condition != "plain":
        run.extra = {"blue": soo_term(condition, cfg.soo_weight,
                                      np.random.default_rng(tcfg.seed + 1))}
    log = []
    for r in range(tcfg.rounds):
        log.append({"round": r, **{k: float(v) for k, v in play_round(run, cfg.noise).items()}})
    return {a: ag.actor.eval() for a, ag in run.agents.items()}, log
