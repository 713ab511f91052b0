"""The verdict: the search's best configurations re-run on fresh seeds, SOO against sham.

A winner picked on the seeds it was found on is inflated (the winner's curse). `verdict` takes
the `top` configurations of a *finished* search (`configs.csv`), trains each on seeds the search
never used, with its sham control and the base model, and reports those numbers alone: per
configuration and condition (soo | sham), the mean over seeds and its 95% interval of the
burglar deception (both layouts), the honest controls, location, Perspectives, the
log-probability margin, perplexity ratio, damage, degenerate seeds and the effect beyond sham;
its markdown (`soo_interp.experiments.reports.verdict_markdown`) says whether each configuration
meets the bar of `soo_interp.experiments.effects` (mean effect and damage, no degenerate seed).
Each fresh seed is evaluated on its own `n` prompts per scenario and layout (both option orders;
drawn from the search's prompt suite, after the search's block and disjoint from the other
seeds'), and so is the base model it is compared with (one base cell per seed). Intervals of
rates and of the effect carry prompt sampling as well as the spread between seeds
(`stats.rate_interval`, `stats.difference_interval`), so a rate measured on finite prompts never
gets [0, 0]; margins, perplexity and damage get a t-interval over seeds.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Config
from ..errors import ConfigError
from ..runs import atomic_path, claim_resumable
from ..stats import difference_interval, mean_interval, rate_interval
from .effects import CONFIG_KEYS, effects
from .grid import Cell
from .outcomes import check_prompt_space
from .schema import cell_fields, upgrade
from .search import (
    SearchConfig,
    cell_outcomes,
    check_complete,
    check_same_weights,
    with_controls,
)

OUTCOMES = ("deception", "deception_honest_first", "wrong_self", "wrong_friend",
            "wrong_self_honest_first", "wrong_friend_honest_first", "wrong_location",
            "wrong_perspectives", "margin", "perplexity_ratio")
RATE_OUTCOMES = tuple(o for o in OUTCOMES if o.startswith(("deception", "wrong_")))


@dataclasses.dataclass
class VerdictConfig(Config):
    """Which configurations (`top` of the search's ranking) on which fresh seeds."""

    top: int = 3
    seeds: tuple[int, ...] = (100, 101, 102)
    n: int = 100  # fresh prompts per seed, scenario and layout (x2 option orders)

    positive = ("top", "n")


def outcome_interval(g: pd.DataFrame, col: str, n_col: str, outcome: str) -> tuple[float, float, float]:
    """Rates: over seeds and prompts (`stats.rate_interval`); the rest: t over seeds."""
    if outcome in RATE_OUTCOMES and n_col in g and g[n_col].notna().all():
        ok = g[col].notna()
        return rate_interval(g[col][ok].to_numpy(), g[n_col][ok].astype(int).to_numpy())
    return mean_interval(g[col]) if col in g else (float("nan"),) * 3


def verdict_table(eff: pd.DataFrame) -> pd.DataFrame:
    """Long table from the fresh-seed effects (with `rank`): per configuration, condition
    (base | soo | sham | soo-sham) and outcome, the mean over seeds and its 95% interval (see
    the module doc); `degenerate` counts the seeds flagged (`soo_interp.experiments.effects`)."""
    rows = []
    for rank, g in eff.groupby("rank"):
        cfg = {"rank": rank, **g.iloc[0][CONFIG_KEYS].to_dict(), "n_seeds": len(g)}
        series = [("base", out, f"base.{out}", "base.n_prompts") for out in OUTCOMES]
        series += [(cond, out, col, n_col) for out in OUTCOMES
                   for cond, col, n_col in (("soo", out, "n_prompts"),
                                            ("sham", f"sham.{out}", "sham.n_prompts"))]
        series += [("soo", "damage", "damage", ""), ("sham", "damage", "sham.damage", "")]
        for cond, out, col, n_col in series:
            mean, low, high = outcome_interval(g, col, n_col, out)
            rows.append({**cfg, "condition": cond, "outcome": out, "mean": mean,
                         "ci_low": low, "ci_high": high})
        if "n_prompts" in g and g.n_prompts.notna().all():
            n = g.n_prompts.astype(int).to_numpy()
            effect = difference_interval(g["sham.deception"], n, g.deception, n)
        else:
            effect = mean_interval(g.effect)
        rows.append({**cfg, "condition": "soo-sham", "outcome": "effect", "mean": effect[0],
                     "ci_low": effect[1], "ci_high": effect[2]})
        if "degenerate" in g:
            rows.append({**cfg, "condition": "soo", "outcome": "degenerate_seeds",
                         "mean": float(g.degenerate.sum()), "ci_low": None, "ci_high": None})
    return pd.DataFrame(rows)


def fresh_cells(ranked: pd.DataFrame, cfg: VerdictConfig) -> list[Cell]:
    """SOO cells of the `top` ranked configurations on the verdict's seeds."""
    top = ranked.head(cfg.top)[CONFIG_KEYS]
    return [Cell("soo", **cell_fields({k: (int(v) if k == "train_layer" else v)
                                       for k, v in r.items()}), seed=s)
            for r in top.to_dict("records") for s in cfg.seeds]


def verdict(search_dir: str | Path, config: VerdictConfig | None = None, *, out: str | Path,
            executor: Any = None, progress: bool = True, **overrides: Any) -> pd.DataFrame:
    """Re-run the best configurations of the finished search in `search_dir` (which names the
    model) on fresh seeds (see module doc); `config` a `VerdictConfig` (None: the defaults),
    `overrides` any of its fields, e.g. `verdict("runs/search", top=2, out="runs/verdict")`.
    Cells are resumable under `out/cells/` and run on `executor` (a
    `soo_interp.executors.Executor`; default: local worker processes); writes the cells'
    outcomes to `out/outcomes.parquet` and returns the long verdict table."""
    cfg = VerdictConfig.with_overrides(config, **overrides)
    meta = check_complete(search_dir)
    check_same_weights(meta, search_dir)
    scfg = SearchConfig.from_dict(meta["config"])
    used = sorted(set(cfg.seeds) & set(scfg.seeds))
    if used:
        raise ConfigError(f"verdict seeds {used} were used by the search; give fresh seeds "
                          f"(the search used {list(scfg.seeds)})")
    if not cfg.seeds:
        raise ConfigError("the verdict needs at least one fresh seed, e.g. --seeds 100-102")
    check_prompt_space(scfg.evaluation, cfg.n, len(cfg.seeds), scfg.n)
    ranked = upgrade(pd.read_csv(Path(search_dir) / "configs.csv"))  # also an older search's
    cells = fresh_cells(ranked, cfg)
    claim_resumable(Path(out), "verdict")
    blocks = {s: i + 1 for i, s in enumerate(sorted(cfg.seeds))}  # fresh prompts per seed
    outcomes = cell_outcomes(meta["model"], with_controls(cells, cfg.seeds), Path(out),
                             dataclasses.replace(scfg, n=cfg.n), executor, progress, blocks,
                             eval_first=scfg.n)
    with atomic_path(Path(out) / "outcomes.parquet") as tmp:
        outcomes.to_parquet(tmp, index=False)
    return verdict_from_outcomes(outcomes, ranked, cfg.top)


def verdict_from_outcomes(outcomes: pd.DataFrame, ranked: pd.DataFrame, top: int) -> pd.DataFrame:
    """The verdict table from its cells' outcomes (a verdict's `outcomes.parquet`) and the
    search's ranking (`configs.csv`): what `verdict` returns, recomputable from shipped files."""
    return verdict_table(_with_rank_and_sham(effects(outcomes), ranked, top))


def _with_rank_and_sham(eff: pd.DataFrame, ranked: pd.DataFrame, top: int) -> pd.DataFrame:
    """Attach each cell's search rank and its sham cell's outcomes (`sham.<outcome>`)."""
    keys = ranked.head(top)[CONFIG_KEYS].reset_index().rename(columns={"index": "rank"})
    keys["rank"] += 1
    return eff.merge(keys, on=CONFIG_KEYS, how="left")
