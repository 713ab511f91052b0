"""Evaluation rollouts: behaviour measures on policies whose play is known by hand."""
import numpy as np
import torch

from soo_interp.rl.env import OBS_LAYOUT, EnvConfig, PhysicalDeceptionEnv
from soo_interp.rl.maddpg import MLP
from soo_interp.rl.rollout import rollout


def still_actor(name: str) -> MLP:
    """An actor whose action is always 0 (all weights zero): the agent never moves."""
    actor = MLP(len(OBS_LAYOUT[name]), 2, 8, tanh_out=True)
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
    return actor.eval()


def test_still_agents_lead_to_fake_and_return_match_their_spawn():
    actors = {a: still_actor(a) for a in ("blue", "red")}
    for variant in ("standard", "keep_close"):
        cfg = EnvConfig(n_envs=1, baseline="honest", variant=variant)
        ro = rollout(actors, cfg, 3000, seed=7)
        env = PhysicalDeceptionEnv(n_envs=3000, baseline="honest", variant=variant)
        env.reset(seed=7)  # the same spawns; nobody moves, so every step repeats step 0
        d = env.distances()
        near_red = d["blue_red"] <= 0.125
        led = (d["blue_fake"] <= 0.16) & near_red
        ret = 50 * (5.0 * (d["blue_goal"] <= 0.16) + (variant == "keep_close") * near_red)
        assert near_red.all()  # blue spawns within sight of red
        assert ro.episodes["led_to_fake"].tolist() == led.tolist() and 0 < led.sum() < 3000
        assert np.allclose(ro.episodes["blue_return"], ret)
        b = ro.behaviour()
        assert b["lead_fake_rate"] == led.mean() and b["eligible_fraction"] == 0.0
        assert np.isclose(b["blue_return"], ret.mean())
        assert np.allclose(ro.steps.groupby("episode")["blue_reward"].sum(), ret)
