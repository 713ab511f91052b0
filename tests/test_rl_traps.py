"""Kinds of trap and cross-play, on policies whose play is known by hand."""
import numpy as np
import pytest
import torch

from soo_interp.errors import ConfigError
from soo_interp.rl.env import EnvConfig
from soo_interp.rl.rollout import rollout
from soo_interp.rl.traps import KINDS, class_pairs, cross_play, trap_kinds, trap_table
from tests.test_rl_rollout import still_actor


def pushing_actor(name: str, x: float = 0.5):
    """Always pushes (x, 0)."""
    actor = still_actor(name)
    with torch.no_grad():
        actor.out.bias[0] = float(np.arctanh(x))
    return actor


def test_trap_time_and_gap_match_the_steps_and_kinds_add_up():
    actors = {"blue": still_actor("blue"), "red": pushing_actor("red")}  # red walks away
    ro = rollout(actors, EnvConfig(n_envs=1, baseline="honest"), 2000, seed=3)
    st, ep = ro.steps, ro.episodes.set_index("episode")
    first = st[st["trapped"]].groupby("episode")["t"].min()
    assert (ep.loc[first.index, "trap_t"] == first).all()  # recorded states agree
    late = ep[ep["trapped"] & ~ep.index.isin(first.index)]
    assert (late["trap_t"] == 50).all() and (ep.loc[~ep["trapped"], "trap_t"] == -1).all()
    seen = st[st["blue_red"] <= 0.125].set_index("episode")["t"]
    for e in first.index[:200]:  # gap = trap step - last state with blue in red's sight
        last = seen[seen.index == e]
        last = last[last <= first[e]].max()
        assert ep.loc[e, "trap_gap"] == first[e] - last
    ends = st.groupby("episode")["blue_red"].apply(lambda d: (d.iloc[1:] <= 0.125).sum())
    assert np.allclose(ep["near_red"] * 50 - (ep["near_red"] * 50).round(), 0)
    assert (ep["near_red"] * 50 >= ends.reindex(ep.index)).all()  # + the state after the last step
    assert (ep["near_red"] * 50 <= ends.reindex(ep.index) + 1).all()
    k = trap_kinds(ro, recent=10)
    assert np.isclose(sum(k[c] for c in KINDS), k["trap_rate"])
    assert k["trap_alone"] > 0.005 and k["trap_after_contact"] > 0.005  # red leaves blue behind
    assert k["trap_spawn"] == (ep["trap_t"] == 0).mean() > 0
    assert np.isclose(k["trap_in_sight"] + k["trap_spawn"],
                      ep["trapped_following"].mean())  # blue is always in sight at the spawn


def test_cross_play_pairs_every_blue_with_every_red_on_the_same_episodes():
    meta = {"env": EnvConfig(n_envs=1, baseline="honest").to_dict()}
    models = {"still": ({"blue": still_actor("blue"), "red": still_actor("red")},
                        {**meta, "baseline": "honest"}),
              "walker": ({"blue": still_actor("blue"), "red": pushing_actor("red")},
                         {**meta, "baseline": "deceptive"})}
    play = cross_play(models, 500, 2, seed0=5)
    assert len(play) == 2 * 2 * 2 and play["self_play"].sum() == 4
    # both blues stand still, so a pair's traps depend on its red only
    by_red = play.groupby(["red_model", "eval_seed"])["trap_rate"].nunique()
    assert (by_red == 1).all()
    t = trap_table(play).set_index(["model", "metric", "eval_seed"])["value"]
    for s in (5, 6):
        assert t["walker", "trap_rate_as_red", s] > t["still", "trap_rate_as_red", s]
        assert t["still", "trap_rate_as_blue", s] == t["walker", "trap_rate", s]
        assert t["still", "trap_spawn", s] == t["still", "trap_rate", s]  # nobody moves
    pairs = class_pairs(play).set_index(["blue_baseline", "red_baseline"])
    assert pairs.loc[("honest", "deceptive"), "n_rows"] == 2
    other = {**meta["env"], "variant": "keep_close"}
    with pytest.raises(ConfigError, match="one environment variant"):
        cross_play({**models, "k": (models["still"][0], {"env": other, "baseline": "honest"})},
                   10, 1, seed0=5)
