"""MADDPG (Lowe et al. 2017) with the paper's settings: per-agent actor and centralised critic,
each BatchNorm on the input then two 64-unit leaky-ReLU layers; Adam, soft target updates,
gradient clipping, a uniform replay buffer and decaying Ornstein-Uhlenbeck exploration."""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..errors import ConfigError
from .env import ACT_DIM, AGENTS, OBS_LAYOUT


@dataclasses.dataclass
class MaddpgConfig(Config):
    """Learning settings; defaults are the paper's."""

    hidden: int = 64
    lr: float = 0.01
    gamma: float = 0.95
    tau: float = 0.01
    batch_size: int = 1024
    buffer_size: int = 1_000_000
    steps_per_update: int = 100   # one update round (every agent) per this many env steps
    grad_clip: float = 0.5
    noise_start: float = 0.3      # OU noise scale, decayed linearly to noise_end
    noise_end: float = 0.0
    explore_fraction: float = 0.625  # of the run's episodes (the paper: 25k of 40k)

    positive = ("hidden", "batch_size", "buffer_size", "steps_per_update")

    def check(self) -> None:
        if not 0 < self.gamma <= 1 or not 0 < self.tau <= 1:
            raise ConfigError("gamma and tau must be in (0, 1]")


class MLP(nn.Module):
    """BatchNorm on the input, two leaky-ReLU hidden layers, a linear (or tanh) output.
    `forward(x, with_hidden=True)` also returns both hidden layers (what the SOO value reads)."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, tanh_out: bool = False):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_in)
        self.fc1, self.fc2 = nn.Linear(n_in, hidden), nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)
        self.tanh_out = tanh_out

    def forward(self, x: torch.Tensor, with_hidden: bool = False):
        h1 = F.leaky_relu(self.fc1(self.norm(x)))
        h2 = F.leaky_relu(self.fc2(h1))
        pre = self.out(h2)
        y = torch.tanh(pre) if self.tanh_out else pre
        return (y, pre, (h1, h2)) if with_hidden else y


class Agent(nn.Module):
    """One agent: actor, centralised critic, their target copies."""

    def __init__(self, name: str, cfg: MaddpgConfig):
        super().__init__()
        obs_all = sum(len(OBS_LAYOUT[a]) for a in AGENTS)
        self.actor = MLP(len(OBS_LAYOUT[name]), ACT_DIM, cfg.hidden, tanh_out=True)
        self.critic = MLP(obs_all + ACT_DIM * len(AGENTS), 1, cfg.hidden)
        self.target_actor = copy.deepcopy(self.actor)
        self.target_critic = copy.deepcopy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)


def build_agents(cfg: MaddpgConfig) -> dict[str, Agent]:
    return {a: Agent(a, cfg) for a in AGENTS}


@torch.no_grad()
def act(actor: MLP, obs: np.ndarray) -> np.ndarray:
    """Deterministic actions of `actor` (eval mode: BatchNorm uses its running statistics)."""
    actor.eval()
    return actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()


class OUNoise:
    """Ornstein-Uhlenbeck noise per environment and action dimension (theta 0.15, sigma 0.2)."""

    def __init__(self, shape: tuple[int, ...], rng: np.random.Generator, theta=0.15, sigma=0.2):
        self.shape, self.rng, self.theta, self.sigma = shape, rng, theta, sigma
        self.state = np.zeros(shape)

    def sample(self, scale: float) -> np.ndarray:
        self.state += -self.theta * self.state + self.sigma * self.rng.standard_normal(self.shape)
        return scale * self.state


class ReplayBuffer:
    """Uniform replay over transitions, stored as float32 numpy arrays in a ring."""

    FIELDS: ClassVar[dict[str, int]] = {
        "obs_blue": len(OBS_LAYOUT["blue"]), "obs_red": len(OBS_LAYOUT["red"]),
        "act_blue": ACT_DIM, "act_red": ACT_DIM, "rew_blue": 1, "rew_red": 1,
        "next_blue": len(OBS_LAYOUT["blue"]), "next_red": len(OBS_LAYOUT["red"]), "done": 1}

    def __init__(self, capacity: int):
        self.capacity, self.size, self.head = capacity, 0, 0
        self.data = {k: np.zeros((capacity, d), np.float32) for k, d in self.FIELDS.items()}

    def add(self, **batch: np.ndarray) -> None:
        n = len(batch["done"])
        idx = (self.head + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self.data[k][idx] = np.asarray(v, np.float32).reshape(n, -1)
        self.head = int((self.head + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.size, n)
        return {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}


def update(agents: dict[str, Agent], batch: dict[str, torch.Tensor], cfg: MaddpgConfig,
           extra: dict[str, Callable[[MLP, torch.Tensor], torch.Tensor | None]] | None = None
           ) -> dict:
    """One update round: critic then actor of every agent, then soft target updates.
    `extra[name](actor, obs)` (optional) is a term added to that agent's actor loss (fine-tuning
    with the SOO term); None from it adds nothing."""
    obs = [batch[f"obs_{a}"] for a in AGENTS]
    nxt = [batch[f"next_{a}"] for a in AGENTS]
    acts = [batch[f"act_{a}"] for a in AGENTS]
    for m in agents.values():
        m.target_actor.eval()
        m.target_critic.eval()
    with torch.no_grad():
        next_acts = [agents[a].target_actor(o) for a, o in zip(AGENTS, nxt)]
    losses = {}
    for i, name in enumerate(AGENTS):
        ag = agents[name]
        ag.critic.train()
        with torch.no_grad():
            q_next = ag.target_critic(torch.cat(nxt + next_acts, 1))
            target = batch[f"rew_{name}"] + cfg.gamma * (1 - batch["done"]) * q_next
        q = ag.critic(torch.cat(obs + acts, 1))
        critic_loss = F.mse_loss(q, target)
        ag.critic_opt.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(ag.critic.parameters(), cfg.grad_clip)
        ag.critic_opt.step()

        ag.actor.train()
        a_i, pre, _ = ag.actor(obs[i], with_hidden=True)
        joint = [a_i if j == i else acts[j] for j in range(len(AGENTS))]
        actor_loss = -ag.critic(torch.cat(obs + joint, 1)).mean() + 1e-3 * (pre ** 2).mean()
        term = extra[name](ag.actor, obs[i]) if extra and name in extra else None
        if term is not None:
            actor_loss = actor_loss + term
        ag.actor_opt.zero_grad()
        actor_loss.backward()
        nn.utils.clip_grad_norm_(ag.actor.parameters(), cfg.grad_clip)
        ag.actor_opt.step()
        losses[name] = (critic_loss.item(), actor_loss.item())
    for ag in agents.values():
        soft_update(ag.target_actor, ag.actor, cfg.tau)
        soft_update(ag.target_critic, ag.critic, cfg.tau)
    return losses


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    for t, s in zip(target.state_dict().values(), source.state_dict().values()):
        if t.dtype.is_floating_point:
            t.mul_(1 - tau).add_(s, alpha=tau)
        else:
            t.copy_(s)
