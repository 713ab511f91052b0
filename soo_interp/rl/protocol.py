"""Protocol steps that read and write folders: SOO values of every trained run (with controls
and the state-distribution check), SOO fine-tuning vs sham of the deceptive runs.
Compute functions return DataFrames; `write_*` save them into all-or-nothing folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..runs import atomic_write_text, output_dir, write_run_json
from .checkpoint import POLICY, load_policy, save_policy
from .env import EnvConfig
from .finetune import TRAIN_FIELDS, FinetuneConfig, finetune, finetune_rl
from .rollout import rollout
from .soo_value import pair_table, red_sensitivity, soo_value
from .training import SNAPSHOTS
from .traps import RECENT, cross_play

EVAL_SEED0, DATA_SEED0 = 1000, 20_000  # eval and fine-tuning data episodes never overlap
SHARED_STATES = 4000
STATE_COLS = ("blue_goal", "blue_red", "blue_fake", "blue_speed", "trapped")


def find_runs(runs: str | Path, baseline: str | None = None,
              snapshot: int | None = None) -> list[Path]:
    """Complete run folders (with a policy) under a protocol folder, sorted by name; with
    `snapshot`, the runs' policies saved after that many episodes (`rl train --snapshots`)."""
    pattern = f"*/{SNAPSHOTS}/ep{snapshot}/{POLICY}.json" if snapshot else f"*/{POLICY}.json"
    found = sorted((p.parent for p in Path(runs).glob(pattern)), key=model_name)
    if baseline:
        found = [p for p in found if model_name(p).startswith(f"{baseline}-")]
    if not found:
        what = f"snapshots at {snapshot} episodes" if snapshot else f"{POLICY}.json"
        raise ConfigError(f"no trained {baseline or ''} runs with {what} under {runs}; run "
                          f"`soo-interp rl train --out {runs}` first")
    return found


def model_name(policy_folder: Path) -> str:
    """The run a policy folder belongs to (`deceptive-s0` for it and for its snapshots)."""
    p = Path(policy_folder)
    return p.parent.parent.name if p.parent.name == SNAPSHOTS else p.name


def soo_values(runs: list[Path], episodes: int, eval_seeds: int) -> tuple[pd.DataFrame, ...]:
    """(values, states): each model's SOO value per eval seed on its own eligible states and on
    a shared pool of every model's eligible states; per-model state statistics and behaviour."""
    models = {model_name(p): load_policy(p) for p in runs}
    vals, states = [], []
    for e in range(eval_seeds):
        seed, pools = EVAL_SEED0 + e, {}
        for name, (actors, meta) in models.items():
            ro = rollout(actors, EnvConfig.from_dict(meta["env"]), episodes, seed)
            pools[name] = ro.obs_blue[ro.eligible]
            vals.append({"model": name, "baseline": meta["baseline"], "seed": meta["seed"],
                         "train_episodes": meta["episodes"], "eval_seed": seed, "states": "own",
                         "n_steps": int(ro.eligible.sum()),
                         "soo_value": soo_value(actors["blue"], ro.obs_blue, ro.eligible, seed)})
            el = ro.steps[ro.steps["eligible"]]
            states.append({"model": name, "baseline": meta["baseline"], "seed": meta["seed"],
                           "train_episodes": meta["episodes"], "eval_seed": seed,
                           **ro.behaviour(),
                           **{f"eligible_{c}": float(el[c].mean()) for c in STATE_COLS}})
        pool = np.concatenate(list(pools.values()))
        pool = pool[np.random.default_rng(seed).permutation(len(pool))[:SHARED_STATES]]
        for name, (actors, meta) in models.items():
            vals.append({"model": name, "baseline": meta["baseline"], "seed": meta["seed"],
                         "train_episodes": meta["episodes"], "eval_seed": seed,
                         "states": "shared", "n_steps": len(pool),
                         "soo_value": soo_value(actors["blue"], pool, np.ones(len(pool)), seed)})
    return pd.DataFrame(vals), pd.DataFrame(states)


def value_pairs(values: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([pair_table(d.rename(columns={"soo_value": f"soo_value_{s}"}),
                                 f"soo_value_{s}") for s, d in values.groupby("states")],
                     ignore_index=True)


def write_value(runs: str | Path, out: str | Path | None = None, episodes: int = 200,
                eval_seeds: int = 5, overwrite: bool = False, snapshot: int | None = None) -> Path:
    """SOO values and behaviour of every run (or of its snapshot after `snapshot` episodes)
    into `out` (default RUNS/value, or RUNS/value-ep{snapshot})."""
    default = f"value-ep{snapshot}" if snapshot else "value"
    out = Path(out) if out else Path(runs) / default
    found = find_runs(runs, snapshot=snapshot)
    with output_dir(out, overwrite, kind="rl-value") as tmp:
        values, states = soo_values(found, episodes, eval_seeds)
        values.to_csv(tmp / "value.csv", index=False)
        value_pairs(values).to_csv(tmp / "value_pairs.csv", index=False)
        states.to_csv(tmp / "states.csv", index=False)
        write_run_json(tmp, {"runs": [str(p) for p in found], "episodes": episodes,
                             "eval_seeds": eval_seeds, "snapshot": snapshot}, EVAL_SEED0)
    return out


def write_traps(runs: str | Path, out: str | Path | None = None, episodes: int = 200,
                eval_seeds: int = 5, recent: int = RECENT, overwrite: bool = False) -> Path:
    """How red gets trapped, in own play and in cross-play of every run's blue with every run's
    red (`traps.cross_play`), into `out` (default RUNS/traps/traps.csv)."""
    if episodes < 1 or eval_seeds < 1 or recent < 0:
        raise ConfigError(f"episodes ({episodes}) and eval_seeds ({eval_seeds}) must be >= 1 and "
                          f"recent ({recent}) >= 0")
    out = Path(out) if out else Path(runs) / "traps"
    found = find_runs(runs)
    with output_dir(out, overwrite, kind="rl-traps") as tmp:
        play = cross_play({model_name(p): load_policy(p) for p in found}, episodes, eval_seeds,
                          EVAL_SEED0, recent)
        play.to_csv(tmp / "traps.csv", index=False)
        write_run_json(tmp, {"runs": [str(p) for p in found], "episodes": episodes,
                             "eval_seeds": eval_seeds, "recent": recent}, EVAL_SEED0)
    return out


def _evaluate(actors: dict, env: EnvConfig, cfg: FinetuneConfig, rows: list, **keys) -> None:
    for e in range(cfg.eval_seeds):
        seed = EVAL_SEED0 + e
        ro = rollout(actors, env, cfg.episodes, seed)
        metrics = {**ro.behaviour(),
                   "soo_value": soo_value(actors["blue"], ro.obs_blue, ro.eligible, seed),
                   "red_sensitivity": red_sensitivity(actors["blue"], ro.obs_blue, ~ro.eligible)}
        rows += [{**keys, "eval_seed": seed, "metric": k, "value": v} for k, v in metrics.items()]


def tuned_rl(path: Path, cfg: FinetuneConfig, condition: str, cache: Path
             ) -> tuple[dict, list[dict]]:
    """`finetune_rl` of one run and condition, kept in `cache/{run}-{condition}/` (policy and
    log) so that an interrupted `rl finetune` resumes where it stopped."""
    folder = cache / f"{path.name}-{condition}"
    wanted = {k: cfg.to_dict()[k] for k in TRAIN_FIELDS}
    if (folder / f"{POLICY}.json").exists():
        actors, meta = load_policy(folder)
        if meta["finetune"] != wanted:
            raise ConfigError(f"{folder} was tuned with {meta['finetune']}, not {wanted}; "
                              "delete it or use the same settings")
        return actors, pd.read_csv(folder / "log.csv").to_dict("records")
    actors, log = finetune_rl(path, cfg, condition)
    _, base = load_policy(path)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "log.csv", pd.DataFrame(log).to_csv(index=False))
    save_policy(folder, actors, {**{k: base[k] for k in ("baseline", "seed", "env")},
                                 "episodes": cfg.rl_episodes, "condition": condition,
                                 "finetune": wanted})
    return actors, log


def finetune_runs(runs: list[Path], cfg: FinetuneConfig, cache: Path | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, logs): behaviour and SOO value of each run before (base) and after SOO
    fine-tuning and the shams, on the same evaluation episodes. The rl method keeps its tuned
    policies in `cache` (required for it)."""
    rows, logs = [], []
    for path in runs:
        actors, meta = load_policy(path)
        env, seed = EnvConfig.from_dict(meta["env"]), int(meta["seed"])
        keys = {"model": model_name(path), "seed": seed}
        _evaluate(actors, env, cfg, rows, condition="base", **keys)
        if cfg.method == "supervised":
            data = rollout(actors, env, cfg.data_episodes, DATA_SEED0 + seed)
        for cond in cfg.run_conditions:
            if cfg.method == "rl":
                tuned, log = tuned_rl(path, cfg, cond, cache)
            else:
                blue, log = finetune(actors["blue"], data.obs_blue[data.eligible], cfg, cond,
                                     seed)
                tuned = {**actors, "blue": blue}
            _evaluate(tuned, env, cfg, rows, condition=cond, **keys)
            logs += [{**keys, "condition": cond, **r} for r in log]
    return pd.DataFrame(rows), pd.DataFrame(logs)


def write_finetune(runs: str | Path, out: str | Path | None = None,
                   cfg: FinetuneConfig | None = None, seeds: list[int] | None = None,
                   overwrite: bool = False) -> Path:
    cfg = cfg or FinetuneConfig()
    out = Path(out) if out else Path(runs) / "finetune"
    found = find_runs(runs, "deceptive")
    if seeds is not None:
        found = [p for p in found if p.name in {f"deceptive-s{s}" for s in seeds}]
        if not found:
            raise ConfigError(f"no deceptive runs with seeds {seeds} under {runs}")
    with output_dir(out, overwrite, kind="rl-finetune") as tmp:
        results, logs = finetune_runs(found, cfg, Path(f"{out}.policies"))
        results.to_csv(tmp / "finetune.csv", index=False)
        logs.to_csv(tmp / "finetune_log.csv", index=False)
        write_run_json(tmp, {**cfg.to_dict(), "runs": [str(p) for p in found]}, EVAL_SEED0)
    return out
