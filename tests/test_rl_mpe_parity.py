"""Parity of our Physical Deception physics with mpe2's `simple_adversary_v3` (the maintained MPE),
stepped with the same continuous actions from the same state, away from the walls and the fake
landmark (the rules only the paper's scenario has). mpe2 is a test-only (dev) dependency.

mpe2 1.1 integrates position before velocity (p += v dt; v = v (1 - damping) + F dt), while the
original MPE that the paper's code uses (openai/multiagent-particle-envs `integrate_state`) and our
environment update velocity first. With both at rest at the start, the velocities agree at every
step and our position after step t equals mpe2's after step t + 1: the same dynamics, one step
apart. The test pins that relation, so a change on either side shows."""
import os

import numpy as np
import pytest

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
simple_adversary_v3 = pytest.importorskip("mpe2.simple_adversary_v3")

from soo_interp.rl.env import PhysicalDeceptionEnv  # noqa: E402

STEPS = 25


def mpe2_action(u: np.ndarray) -> np.ndarray:
    """Our force direction u in [-1, 1]^2 as mpe2's continuous action [noop, -x, +x, -y, +y]."""
    return np.array([0, max(-u[0], 0), max(u[0], 0), max(-u[1], 0), max(u[1], 0)], np.float32)


def test_movement_matches_mpe2_simple_adversary_step_for_step():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (STEPS + 1, 2, 2)) * 0.6   # [t, (blue, red), xy]
    start = np.array([[-0.2, 0.1], [0.1, -0.2]])             # blue, red: far from the walls

    ours = PhysicalDeceptionEnv(n_envs=1, episode_length=STEPS + 1)
    ours.set_state(pos=start, landmarks=[[0.9, 0.9], [-0.9, 0.9]])
    theirs = simple_adversary_v3.parallel_env(N=1, continuous_actions=True, max_cycles=STEPS + 2)
    theirs.reset(seed=0)
    world = theirs.unwrapped.world
    red, blue = world.agents  # adversary_0, agent_0
    for agent, p in ((blue, start[0]), (red, start[1])):
        agent.state.p_pos, agent.state.p_vel = p.copy(), np.zeros(2)

    ours_pos, ours_vel, their_pos, their_vel = [], [], [], []
    for t in range(STEPS + 1):
        ours.step({"blue": actions[t, :1, :], "red": actions[t, 1:, :]})
        theirs.step({"agent_0": mpe2_action(actions[t, 0]),
                     "adversary_0": mpe2_action(actions[t, 1])})
        ours_pos.append(ours.pos[0].copy())
        ours_vel.append(ours.vel[0].copy())
        their_pos.append(np.stack([blue.state.p_pos, red.state.p_pos]))
        their_vel.append(np.stack([blue.state.p_vel, red.state.p_vel]))
    ours_pos, their_pos = np.array(ours_pos), np.array(their_pos)
    assert not ours.trapped.any() and np.abs(ours_pos).max() < 0.95  # no wall, no trap
    np.testing.assert_allclose(np.array(ours_vel), np.array(their_vel), atol=1e-6)
    np.testing.assert_allclose(ours_pos[:-1], their_pos[1:], atol=1e-6)
    assert np.abs(ours_pos[5] - start).max() > 0.05  # they did move
