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
        # red trapped at its spawn, blue (always in sight there) beside it: trapped following
        assert ro.episodes["trapped_following"].tolist() == env.trapped.tolist()
        assert 0 < env.trapped.sum() < 3000
        assert np.allclose(ro.episodes["blue_return"], ret)
        b = ro.behaviour()
        assert b["lead_fake_rate"] == led.mean() and b["eligible_fraction"] == 0.0
        assert b["near_red_rate"] == 1.0  # keep_close's reward on every step
        assert np.isclose(b["blue_return"], ret.mean())
        assert np.allclose(ro.steps.groupby("episode")["blue_reward"].sum(), ret)


def test_red_trapped_while_moving_with_blue_counts_as_following():
    actors = {a: still_actor(a) for a in ("blue", "red")}
    for a in actors.values():  # both always push (0.5, 0): they move together, never apart
        with torch.no_grad():
            a.out.bias[0] = float(np.arctanh(0.5))
    cfg = EnvConfig(n_envs=1, baseline="honest")
    ro = rollout(actors, cfg, 3000, seed=11)
    env = PhysicalDeceptionEnv(n_envs=3000, baseline="honest")
    env.reset(seed=11)
    at_spawn = env.trapped.copy()
    trapped = ro.episodes["trapped"].to_numpy()
    assert trapped.sum() > at_spawn.sum() + 50  # most traps happen on the way, not at spawn
    # the state at the first trapped step, and whether blue was within sight of red all along
    st = ro.steps
    first = st[st["trapped"]].groupby("episode")["t"].min()
    t_trap = st["episode"].map(first)
    before = st[st["t"] <= t_trap]
    together = before.groupby("episode")["blue_red"].max() <= 0.125
    assert together.sum() > 50  # same moves: apart only where a wall stopped one of them
    following = ro.episodes["trapped_following"]
    assert following[together[together].index].all()
    assert not following[~ro.episodes["trapped"]].any()
    # blue still, red moving away: trapped red counts as following only where the trap came
    # while blue was still within 0.125 of it
    ro = rollout({**actors, "blue": still_actor("blue")}, cfg, 3000, seed=11)
    st, ep = ro.steps, ro.episodes.set_index("episode")
    first = st[st["trapped"]].groupby("episode")["t"].min()
    at_trap = st[st["t"] == st["episode"].map(first)].set_index("episode")["blue_red"]
    assert (at_trap > 0.125).sum() > 50 and (at_trap <= 0.125).sum() > 0
    assert ep.loc[at_trap.index, "trapped_following"].tolist() == (at_trap <= 0.125).tolist()
