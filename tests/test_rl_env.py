"""The Physical Deception environment against its rules, on constructed states with known answers."""
import numpy as np
import pytest

from soo_interp.errors import ConfigError
from soo_interp.rl.env import OBS_LAYOUT, PhysicalDeceptionEnv

FAR = [[0.8, 0.8], [-0.8, -0.8]]  # goal, fake: far from everything below
ZERO = {"blue": np.zeros((2, 2)), "red": np.zeros((2, 2))}


def env2(**options):
    return PhysicalDeceptionEnv(n_envs=2, **options)


def test_sight_radius_hides_the_other_agent_beyond_0_125():
    env = env2()
    obs = env.set_state(pos=[[[0, 0], [0.12, 0]], [[0, 0], [0.13, 0]]], landmarks=[FAR, FAR])
    red_slot = slice(6, 8)
    assert np.allclose(obs["blue"][0, red_slot], [0.12, 0])
    assert np.allclose(obs["red"][0, 6:8], [-0.12, 0])
    assert np.allclose(obs["blue"][1, red_slot], 0) and np.allclose(obs["red"][1, 6:8], 0)
    assert obs["blue"].shape == (2, len(OBS_LAYOUT["blue"]))
    assert np.allclose(obs["blue"][0, 2:4], [0.8, 0.8]) and np.allclose(obs["blue"][0, 4:6], -0.8)


def test_red_is_trapped_within_0_16_of_the_fake_landmark_and_stops():
    env = env2()
    lm = [[0.8, 0.8], [0.0, 0.5]]
    obs = env.set_state(pos=[[[0.5, -0.5], [0.0, 0.35]], [[0.5, -0.5], [0.0, 0.33]]],
                        landmarks=[lm, lm])  # red 0.15 and 0.17 from the fake landmark
    assert env.trapped.tolist() == [True, False]
    assert obs["blue"][:, 8].tolist() == [1.0, 0.0]  # blue sees the trapped flag
    push = {"blue": np.ones((2, 2)), "red": np.tile([[0.0, -1.0]], (2, 1))}
    for _ in range(3):
        env.step(push)
    assert np.allclose(env.pos[0, 1], [0.0, 0.35])          # trapped red does not move
    assert env.pos[1, 1, 1] < 0.33 and env.pos[0, 0, 0] > 0.5  # free red and blue do
    assert env.trapped[0]


def test_binary_rewards_goal_follow_and_deception_bonus():
    lm = [[0.0, 0.0], [0.6, 0.6]]
    pos = [[[0.1, 0.0], [0.0, -0.1]],     # both within 0.16 of goal, 0.141 apart (out of sight)
           [[-0.5, -0.5], [-0.5, -0.4]]]  # neither at goal, red within sight of blue
    for baseline, bonus in (("deceptive", 10.0), ("honest", 0.0)):
        env = env2(baseline=baseline)
        env.set_state(pos=pos, landmarks=[lm, lm], trapped=[False, True])
        _, rew, term, trunc, _ = env.step(ZERO)
        assert rew["blue"].tolist() == [5.0, bonus]
        assert rew["red"].tolist() == [5.0, 1.0]
        assert not term["blue"].any() and not trunc["blue"].any()


def test_keep_close_control_task_pays_blue_within_sight_of_red_and_keeps_the_trap_bonus():
    lm = [[0.0, 0.0], [0.6, 0.6]]
    pos = [[[0.1, 0.0], [0.0, -0.1]],     # at the goal together, 0.141 apart: out of sight
           [[-0.5, -0.5], [-0.5, -0.4]],  # away from the goal, red 0.1 away: within sight
           [[0.05, 0.0], [0.0, 0.05]],    # at the goal together, 0.071 apart: within sight
           [[0.6, 0.6], [0.6, 0.5]]]      # blue at the fake landmark, red trapped beside it
    trapped = [False, False, False, True]
    for baseline, variant, blue in (
            ("deceptive", "keep_close", [5.0, 1.0, 6.0, 11.0]),
            ("honest", "keep_close", [5.0, 1.0, 6.0, 1.0]),
            ("deceptive", "standard", [5.0, 0.0, 5.0, 10.0])):
        env = PhysicalDeceptionEnv(n_envs=4, baseline=baseline, variant=variant)
        env.set_state(pos=pos, landmarks=[lm] * 4, trapped=trapped)
        _, rew, _, _, _ = env.step({"blue": np.zeros((4, 2)), "red": np.zeros((4, 2))})
        assert rew["blue"].tolist() == blue
        assert rew["red"].tolist() == [5.0, 1.0, 6.0, 1.0]  # red's rules do not change
    half = PhysicalDeceptionEnv(n_envs=4, variant="keep_close", keep_close_reward=0.5)
    half.set_state(pos=pos, landmarks=[lm] * 4, trapped=trapped)
    assert half.step({"blue": np.zeros((4, 2)), "red": np.zeros((4, 2))})[1]["blue"].tolist() \
        == [5.0, 0.5, 5.5, 10.5]
    with pytest.raises(ConfigError, match="unknown variant .follow.; choose from standard, keep_close"):
        env2(variant="follow")


def test_mpe_physics_and_walls():
    env = env2()
    env.set_state(pos=[[[0, 0], [0.5, 0]], [[0.99, 0], [0.5, 0]]], landmarks=[FAR, FAR])
    env.step({"blue": np.array([[1.0, 0.0], [1.0, 0.0]]), "red": np.zeros((2, 2))})
    assert np.allclose(env.vel[0, 0], [0.5, 0])     # 5 x action x dt from rest
    assert np.allclose(env.pos[0, 0], [0.05, 0])
    for _ in range(10):
        env.step({"blue": np.array([[1.0, 0.0], [1.0, 0.0]]), "red": np.zeros((2, 2))})
    assert env.pos[1, 0, 0] == 1.0 and env.vel[1, 0, 0] == 0.0  # held at the wall
    assert np.all(np.abs(env.pos) <= 1.0)


def test_spawn_box_and_blue_starts_near_red():
    env = PhysicalDeceptionEnv(n_envs=4000)
    env.reset(seed=3)
    assert np.abs(env.landmarks).max() <= 0.825 and np.abs(env.pos[:, 1]).max() <= 0.825
    assert np.abs(env.landmarks).max() > 0.8                  # uses the whole box
    d = np.linalg.norm(env.pos[:, 0] - env.pos[:, 1], axis=-1)
    assert d.max() <= 0.125 and d.mean() > 0.07               # uniform in the disc: mean 2r/3
    assert 0.45 < env.red_swap.mean() < 0.55


def test_red_landmark_order_is_hidden_by_the_swap():
    env = env2()
    lm = [[0.3, 0.0], [-0.3, 0.0]]
    obs = env.set_state(pos=[[[0, 0.5], [0, 0]]] * 2, landmarks=[lm, lm], red_swap=[False, True])
    assert np.allclose(obs["red"][0, 2:6], [0.3, 0, -0.3, 0])
    assert np.allclose(obs["red"][1, 2:6], [-0.3, 0, 0.3, 0])


def test_episodes_truncate_together_and_reset_is_seeded():
    env = PhysicalDeceptionEnv(n_envs=3, episode_length=4)
    a, _ = env.reset(seed=1)
    for t in range(4):
        _, _, _, trunc, _ = env.step({"blue": np.zeros((3, 2)), "red": np.zeros((3, 2))})
        assert trunc["red"].all() == (t == 3)
    assert env.agents == []
    b, _ = env.reset(seed=1)
    assert np.array_equal(a["blue"], b["blue"]) and env.agents == ["blue", "red"]


def test_bad_options_fail_with_the_valid_list():
    with pytest.raises(ConfigError, match="unknown keys.*sight_radius"):
        PhysicalDeceptionEnv(n_envs=2, sight_radus=0.2)
    with pytest.raises(ConfigError, match="baseline"):
        PhysicalDeceptionEnv(baseline="sneaky")
    with pytest.raises(ConfigError, match="missing"):
        env2().step({"blue": np.zeros((2, 2))})
