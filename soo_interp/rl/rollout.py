"""Deterministic evaluation episodes of a trained pair of actors: blue's observations, the
per-step state features the confound check needs, and per-episode behaviour."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .env import AGENTS, EnvConfig, PhysicalDeceptionEnv
from .maddpg import MLP, act


@dataclasses.dataclass
class Rollout:
    """`obs_blue[i]` is blue's observation at step i (before acting); `steps` has one row per
    step (episode, t, distances, trapped, eligible = red out of blue's sight, blue's reward for
    the step); `episodes` one row per episode (trapped at the end, blue/red ever within
    goal_radius of the goal, blue's return, `led_to_fake`: blue ever within goal_radius of the
    fake landmark with red within its sight, i.e. leading a following red there;
    `trapped_following`: red became trapped while within sight of blue, i.e. following it;
    `trap_t`: the state in which red is first trapped, 0 = at its spawn, `episode_length` = after
    the last step, -1 = never; `trap_gap`: steps since blue was last within red's sight at that
    moment, 0 = in sight, -1 = not trapped; `near_red`: share of steps that end with blue within
    red's sight, the rate of the keep_close variant's reward)."""

    obs_blue: np.ndarray
    steps: pd.DataFrame
    episodes: pd.DataFrame

    @property
    def eligible(self) -> np.ndarray:
        return self.steps["eligible"].to_numpy()

    def behaviour(self) -> dict[str, float]:
        e = self.episodes
        return {"trap_rate": float(e["trapped"].mean()),
                "blue_goal_rate": float(e["blue_goal"].mean()),
                "red_goal_rate": float(e["red_goal"].mean()),
                "lead_fake_rate": float(e["led_to_fake"].mean()),
                "trap_following_rate": float(e["trapped_following"].mean()),
                "blue_return": float(e["blue_return"].mean()),
                "near_red_rate": float(e["near_red"].mean()),
                "eligible_fraction": float(self.steps["eligible"].mean())}


def rollout(actors: dict[str, MLP], env_config: EnvConfig, episodes: int, seed: int) -> Rollout:
    """`episodes` episodes in lock-step with the actors' deterministic actions (no noise)."""
    env = PhysicalDeceptionEnv(dataclasses.replace(env_config, n_envs=episodes))
    obs, _ = env.reset(seed=seed)
    c = env.config
    rows, obs_blue = [], []
    blue_goal = np.zeros(episodes, bool)
    red_goal = np.zeros(episodes, bool)
    led = np.zeros(episodes, bool)
    ret = np.zeros(episodes)
    near = np.zeros(episodes)  # steps ending with blue within sight of red (keep_close's reward)
    following = env.trapped & (env.distances()["blue_red"] <= c.sight_radius)  # at the start
    last_seen = np.where(env.distances()["blue_red"] <= c.sight_radius, 0, -1)
    trap_t = np.where(env.trapped, 0, -1)
    trap_gap = np.where(env.trapped, 0 - last_seen, -1)
    for t in range(c.episode_length):
        d = env.distances()
        rows.append(pd.DataFrame({
            "episode": np.arange(episodes), "t": t, "blue_red": d["blue_red"],
            "blue_goal": d["blue_goal"], "blue_fake": d["blue_fake"],
            "blue_speed": np.linalg.norm(env.vel[:, 0], axis=-1), "trapped": env.trapped.copy(),
            "eligible": d["blue_red"] > c.sight_radius}))
        led |= (d["blue_fake"] <= c.goal_radius) & (d["blue_red"] <= c.sight_radius)
        obs_blue.append(obs["blue"])
        was = env.trapped.copy()
        obs, rew, _, _, _ = env.step({a: act(actors[a], obs[a]) for a in AGENTS})
        rows[-1]["blue_reward"] = rew["blue"]
        ret += rew["blue"]
        d = env.distances()
        new = env.trapped & ~was
        following |= new & (d["blue_red"] <= c.sight_radius)
        near += d["blue_red"] <= c.sight_radius
        last_seen[d["blue_red"] <= c.sight_radius] = t + 1
        trap_t[new], trap_gap[new] = t + 1, t + 1 - last_seen[new]
        blue_goal |= d["blue_goal"] <= c.goal_radius
        red_goal |= d["red_goal"] <= c.goal_radius
    ep = pd.DataFrame({"episode": np.arange(episodes), "trapped": env.trapped,
                       "blue_goal": blue_goal, "red_goal": red_goal, "led_to_fake": led,
                       "trapped_following": following, "blue_return": ret, "trap_t": trap_t,
                       "trap_gap": trap_gap, "near_red": near / c.episode_length})
    return Rollout(np.concatenate(obs_blue), pd.concat(rows, ignore_index=True), ep)
