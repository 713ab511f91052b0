"""How red gets trapped. Each trap is classified by red's contact with blue before it, and
cross-play (every model's blue with every model's red, on the same evaluation episodes) tells
blue's part in the trap rate from red's: red is trained alongside blue, so a higher trap rate of
a deceptive run could come from a red that learned to walk into the fake landmark by itself."""
from __future__ import annotations

import pandas as pd

from ..errors import ConfigError
from .env import EnvConfig
from .rollout import Rollout, rollout

RECENT = 10  # a trap within this many steps of losing sight of blue counts as "after contact"
KINDS = ("trap_spawn", "trap_in_sight", "trap_after_contact", "trap_alone")


def trap_kinds(ro: Rollout, recent: int = RECENT) -> dict[str, float]:
    """Shares of all episodes whose red was trapped: at its spawn (`trap_spawn`); with blue within
    its sight (`trap_in_sight`, being led); within `recent` steps of losing sight of blue
    (`trap_after_contact`, led part of the way, then let go); or longer after (`trap_alone`,
    red on its own). They add up to the trap rate. `trap_t_mean`: mean step of the trap among
    trapped episodes, spawn traps left out."""
    e = ro.episodes
    moved = e["trap_t"] > 0
    kinds = {"trap_spawn": e["trap_t"] == 0,
             "trap_in_sight": moved & (e["trap_gap"] == 0),
             "trap_after_contact": moved & e["trap_gap"].between(1, recent),
             "trap_alone": moved & (e["trap_gap"] > recent)}
    t = e.loc[moved, "trap_t"]
    return {"trap_rate": float(e["trapped"].mean()),
            **{k: float(v.mean()) for k, v in kinds.items()},
            "trap_t_mean": float(t.mean()) if len(t) else float("nan")}


def cross_play(models: dict[str, tuple[dict, dict]], episodes: int, eval_seeds: int,
               seed0: int, recent: int = RECENT) -> pd.DataFrame:
    """One row per (blue's model, red's model, eval seed): `trap_kinds` and blue's goal rate of
    that blue playing with that red, on the same episodes (spawns) for every pair. `models`:
    name -> (actors, policy metadata), all of one environment variant; a model with itself is
    its own play (`self_play`)."""
    variants = {EnvConfig.from_dict(m["env"]).variant for _, m in models.values()}
    if len(variants) > 1:
        raise ConfigError(f"cross-play needs runs of one environment variant, got {sorted(variants)}")
    rows = []
    for e in range(eval_seeds):
        for bn, (blue, bm) in models.items():
            env = EnvConfig.from_dict(bm["env"])
            for rn, (red, rm) in models.items():
                ro = rollout({"blue": blue["blue"], "red": red["red"]}, env, episodes, seed0 + e)
                rows.append({"blue_model": bn, "blue_baseline": bm["baseline"], "red_model": rn,
                             "red_baseline": rm["baseline"], "self_play": bn == rn,
                             "eval_seed": seed0 + e, **trap_kinds(ro, recent),
                             "blue_goal_rate": ro.behaviour()["blue_goal_rate"]})
    return pd.DataFrame(rows)


def trap_table(play: pd.DataFrame) -> pd.DataFrame:
    """Long table (model, baseline, eval_seed, metric, value) of each model's own play
    (`trap_kinds` and blue's goal rate) and of its trap rate as blue with every other model's red
    (`trap_rate_as_blue`, red's class mixed) and as red with every other model's blue
    (`trap_rate_as_red`), per eval seed."""
    keys = ["model", "baseline", "eval_seed"]
    own = play[play["self_play"]].rename(columns={"blue_model": "model",
                                                  "blue_baseline": "baseline"})
    metrics = ["trap_rate", *KINDS, "trap_t_mean", "blue_goal_rate"]
    parts = [own.melt(id_vars=keys, value_vars=metrics, var_name="metric")]
    cross = play[~play["self_play"]]
    for role in ("blue", "red"):
        g = cross.groupby([f"{role}_model", f"{role}_baseline", "eval_seed"])["trap_rate"].mean()
        parts.append(g.reset_index().set_axis(keys + ["value"], axis=1)
                     .assign(metric=f"trap_rate_as_{role}"))
    return pd.concat(parts, ignore_index=True)[keys + ["metric", "value"]]


def class_pairs(play: pd.DataFrame, metrics: tuple[str, ...] = ("trap_rate", *KINDS)
                ) -> pd.DataFrame:
    """Mean of `metrics` over the pairs of each (blue's class, red's class), own play left out,
    with the number of pairs."""
    cross = play[~play["self_play"]]
    g = cross.groupby(["blue_baseline", "red_baseline"])
    return g[list(metrics)].mean().join(g["blue_model"].size().rename("n_rows")).reset_index()
