"""RL SOO value, pair classification, and SOO fine-tuning vs sham."""
import numpy as np
import pandas as pd
import pytest
import torch

from soo_interp.errors import ConfigError
from soo_interp.rl.env import ACT_DIM, OBS_LAYOUT, RED_SLOT
from soo_interp.rl.finetune import FinetuneConfig, finetune, normalised_mse, soo_term
from soo_interp.rl.maddpg import MLP
from soo_interp.rl.soo_value import (
    classification_summary,
    hidden,
    other_observations,
    pair_table,
    red_sensitivity,
    soo_value,
)


def blue_actor(seed=0):
    torch.manual_seed(seed)
    return MLP(len(OBS_LAYOUT["blue"]), ACT_DIM, 16, tanh_out=True).eval()


def observations(n=300, seed=0):
    obs = np.random.default_rng(seed).uniform(-1, 1, (n, len(OBS_LAYOUT["blue"])))
    obs[:, RED_SLOT] = 0.0  # red out of sight
    return obs.astype(np.float32)


def test_other_observation_places_red_within_0_1_and_changes_nothing_else():
    obs = observations()
    other = other_observations(obs, np.random.default_rng(0))
    d = np.linalg.norm(other[:, RED_SLOT], axis=1)
    assert d.max() <= 0.1 and d.min() > 0
    keep = [i for i in range(obs.shape[1]) if i not in (6, 7)]
    assert np.array_equal(obs[:, keep], other[:, keep])


def test_value_is_the_floor_when_blue_ignores_red_and_higher_otherwise():
    obs, eligible = observations(), np.ones(300, bool)
    blind = blue_actor()
    with torch.no_grad():
        blind.fc1.weight[:, RED_SLOT] = 0.0
    assert soo_value(blind, obs, eligible, seed=0) == pytest.approx(np.log(1e-25), rel=1e-6)
    seeing = blue_actor()
    v = soo_value(seeing, obs, eligible, seed=0)
    assert -20 < v < 0
    with torch.no_grad():
        seeing.fc1.weight[:, RED_SLOT] *= 10   # red matters more -> less overlap
    assert soo_value(seeing, obs, eligible, seed=0) > v
    assert np.isnan(soo_value(seeing, obs, np.zeros(300, bool), seed=0))


def test_red_sensitivity_is_zero_only_for_a_blue_that_ignores_red():
    obs = np.random.default_rng(1).uniform(-0.1, 0.1, (200, len(OBS_LAYOUT["blue"])))
    obs = obs.astype(np.float32)
    seen = np.arange(200) < 150
    seeing, blind = blue_actor(), blue_actor()
    with torch.no_grad():
        blind.fc1.weight[:, RED_SLOT] = 0.0
    assert red_sensitivity(blind, obs, seen) == 0.0
    s = red_sensitivity(seeing, obs, seen)
    assert 0 < s < 2 * np.sqrt(2)
    with torch.no_grad():
        seeing.fc1.weight[:, RED_SLOT] *= 10
    assert red_sensitivity(seeing, obs, seen) > s
    assert np.isnan(red_sensitivity(seeing, obs, np.zeros(200, bool)))


def test_value_refuses_a_model_with_another_observation_layout():
    red = MLP(len(OBS_LAYOUT["red"]), ACT_DIM, 16, tanh_out=True)
    with pytest.raises(ConfigError, match="blue's policy"):
        soo_value(red, observations()[:, :8], np.ones(300, bool), seed=0)
    with pytest.raises(ConfigError, match="shape"):
        soo_value(blue_actor(), observations()[:, :8], np.ones(300, bool), seed=0)


def test_pair_table_counts_direction_and_same_kind_consistency():
    rows = []
    vals = {"deceptive-s0": [3, 3, 1], "deceptive-s1": [2, 2, 2], "honest-s0": [1, 1, 0]}
    for m, vs in vals.items():
        rows += [{"model": m, "baseline": m.split("-")[0], "seed": int(m[-1]), "eval_seed": e,
                  "soo_value": v} for e, v in enumerate(vs)]
    pairs = pair_table(pd.DataFrame(rows)).set_index(["first", "second"])
    assert pairs.loc[("deceptive-s0", "honest-s0"), "first_higher"] == 1.0
    assert pairs.loc[("deceptive-s0", "honest-s0"), "same_seed"]
    assert pairs.loc[("deceptive-s1", "honest-s0"), "first_higher"] == 1.0
    dd = pairs.loc[("deceptive-s0", "deceptive-s1")]
    assert dd["kind"] == "deceptive-deceptive" and dd["first_higher"] == pytest.approx(2 / 3)
    assert dd["consistency"] == pytest.approx(2 / 3)
    s = classification_summary(pairs.reset_index()).set_index("kind")
    assert s.loc["deceptive-honest", "n_pairs"] == 2
    assert s.loc["deceptive-honest", "mean_first_higher"] == 1.0


def test_normalised_mse_is_bounded_and_scale_free():
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    assert torch.allclose(normalised_mse(a, b), normalised_mse(10 * a, 10 * b))
    assert torch.allclose(normalised_mse(a, a), torch.zeros(5))
    assert torch.allclose(normalised_mse(a, -a), torch.full((5,), 2.0))


def test_soo_finetuning_raises_overlap_keeps_actions_and_sham_differs():
    actor, obs = blue_actor(1), observations(400, 1)
    with torch.no_grad():
        actor.fc1.weight[:, RED_SLOT] *= 20
    cfg = FinetuneConfig(steps=60, lr=1e-2, batch_size=64, anchor_weight=5.0)
    held = observations(200, 2)
    before = soo_value(actor, held, np.ones(200, bool), seed=9)
    soo, log = finetune(actor, obs, cfg, "soo", seed=0)
    sham, _ = finetune(actor, obs, cfg, "sham", seed=0)
    assert log[-1]["soo_term"] < log[0]["soo_term"]
    after = soo_value(soo, held, np.ones(200, bool), seed=9)
    assert after < before - 1.0                              # more overlap on unseen states
    with torch.no_grad():
        drift = (soo(torch.as_tensor(held)) - actor(torch.as_tensor(held))).abs().mean()
        h_ratio = hidden(soo, held).norm() / hidden(actor, held).norm()
    assert drift < 0.1 and 0.5 < h_ratio < 2                     # behaviour anchored, no collapse
    assert soo_value(sham, held, np.ones(200, bool), seed=9) != pytest.approx(after)
    with pytest.raises(ConfigError, match="condition"):
        finetune(actor, obs, cfg, "plain", seed=0)


def test_rl_soo_term_reads_only_eligible_rows_and_the_sham_shuffles_them():
    actor, obs = blue_actor(3), observations(40, 3)
    obs[::2, RED_SLOT] = 0.05  # red in sight on every other row: not eligible
    x = torch.as_tensor(obs)
    soo = soo_term("soo", 2.0, np.random.default_rng(0))(actor, x)
    s = x[1::2]
    o = torch.as_tensor(other_observations(s.numpy(), np.random.default_rng(0)))
    assert torch.allclose(soo, 2.0 * normalised_mse(hidden(actor, s), hidden(actor, o)).mean())
    rng = np.random.default_rng(0)
    o = torch.as_tensor(other_observations(s.numpy(), rng))[torch.as_tensor(rng.permutation(20))]
    sham = soo_term("sham", 2.0, np.random.default_rng(0))(actor, x)
    assert torch.allclose(sham, 2.0 * normalised_mse(hidden(actor, s), hidden(actor, o)).mean())
    assert not torch.allclose(sham, soo)
    assert soo_term("soo", 1.0, np.random.default_rng(0))(actor, x[:3]) is None  # 1 eligible
    with pytest.raises(ConfigError, match="method"):
        FinetuneConfig(method="lora")
