"""The verdict: the search's best configurations re-run on fresh seeds, SOO against sham.

A winner picked on the seeds it was found on is inflated (the winner's curse). `verdict` takes
the `top` configurations of a *finished* search (`configs.csv`), trains each on seeds the search
never used, with its sham control and the base model, and reports those numbers alone: per
configuration and condition (soo | sham), the mean over seeds and its 95% interval of the
burglar deception (both layouts), the honest controls, location, Perspectives, the
log-probability margin, perplexity ratio, and the effect beyond sham; `meets_bar` applies the
bar of `soo_interp.experiments.effects` to the means. Each fresh seed is evaluated on its own prompts
(disjoint from the search's and from the other seeds'). Intervals of rates and of the effect
carry prompt sampling as well as the spread between seeds (`stats.rate_interval`,
`stats.difference_interval`), so a rate measured on finite prompts never gets [0, 0]; margins,
perplexity and damage get a t-interval over seeds.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Config
from ..errors import ConfigError
from .grid import Cell
from .search import SearchConfig, cell_outcomes, check_complete, claim_resumable, with_controls

OUTCOMES = ("deception", "deception_honest_first", "wrong_self", "wrong_friend",
            "wrong_self_honest_first", "wrong_friend_honest_first", "wrong_location",
            "wrong_perspectives", "margin", "perplexity_ratio")
RATE_OUTCOMES = tuple(o for o in OUTCOMES if o.startswith(("deception", "wrong_")))


@dataclasses.dataclass
class VerdictConfig(Config):
    """Which configurations (`top` of the search's ranking) on which fresh seeds."""

    top: int = 3
    seeds: tuple[int, ...] = (100, 101, 102)


def seed_interval(values: pd.Series) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds."""
    from scipy import stats

    v = values.dropna().astype(float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / len(v) ** 0.5)
    return m, m - h, m + h


def outcome_interval(g: pd.DataFrame, col: str, n_col: str, outcome: str) -> tuple[float, float, float]:
    """Rates: over seeds and prompts (`stats.rate_interval`); the rest: t over seeds."""
    from ..stats import rate_interval

    if outcome in RATE_OUTCOMES and n_col in g and g[n_col].notna().all():
        ok = g[col].notna()
        return rate_interval(g[col][ok].to_numpy(), g[n_col][ok].astype(int).to_numpy())
    return seed_interval(g[col]) if col in g else (float("nan"),) * 3


def verdict_table(eff: pd.DataFrame) -> pd.DataFrame:
    """Long table from the fresh-seed effects (with `rank`): per configuration, condition
    (base | soo | sham | soo-sham) and outcome, the mean over seeds and its 95% interval (see
    the module doc); `degenerate` counts the seeds flagged (`soo_interp.experiments.effects`)."""
    from ..stats import difference_interval
    from .effects import CONFIG_KEYS

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
            effect = seed_interval(g.effect)
        rows.append({**cfg, "condition": "soo-sham", "outcome": "effect", "mean": effect[0],
                     "ci_low": effect[1], "ci_high": effect[2]})
        if "degenerate" in g:
            rows.append({**cfg, "condition": "soo", "outcome": "degenerate_seeds",
                         "mean": float(g.degenerate.sum()), "ci_low": None, "ci_high": None})
    return pd.DataFrame(rows)


def fresh_cells(ranked: pd.DataFrame, cfg: VerdictConfig) -> list[Cell]:
    """SOO cells of the `top` ranked configurations on the verdict's seeds."""
    from .effects import CONFIG_KEYS

    top = ranked.head(cfg.top)[CONFIG_KEYS]
    return [Cell("soo", **{k: (int(v) if k == "layer" else v) for k, v in r.items()}, seed=s)
            for r in top.to_dict("records") for s in cfg.seeds]


def verdict(search_dir: str | Path, cfg: VerdictConfig, out: str | Path,
            progress: bool = True, executor: Any = None) -> pd.DataFrame:
    """Re-run the best configurations of a finished search on fresh seeds (see module doc).
    Cells are resumable under `out/cells/` and run on `executor` (a
    `soo_interp.executors.Executor`; default: local worker processes); returns the long
    verdict table."""
    from .effects import effects

    meta = check_complete(search_dir)
    scfg = SearchConfig.from_dict(meta["config"])
    used = sorted(set(cfg.seeds) & set(scfg.seeds))
    if used:
        raise ConfigError(f"verdict seeds {used} were used by the search; give fresh seeds "
                          f"(the search used {list(scfg.seeds)})")
    if not cfg.seeds or cfg.top < 1:
        raise ConfigError("the verdict needs at least one seed and --top >= 1")
    ranked = pd.read_csv(Path(search_dir) / "configs.csv")
    cells = fresh_cells(ranked, cfg)
    claim_resumable(Path(out), "verdict")
    blocks = {s: i + 1 for i, s in enumerate(sorted(cfg.seeds))}  # fresh prompts per seed
    eff = effects(cell_outcomes(meta["model"], with_controls(cells), Path(out), scfg, executor,
                                progress, blocks))
    return verdict_table(_with_rank_and_sham(eff, ranked, cfg.top))


def _with_rank_and_sham(eff: pd.DataFrame, ranked: pd.DataFrame, top: int) -> pd.DataFrame:
    """Attach each cell's search rank and its sham cell's outcomes (`sham.<outcome>`)."""
    from .effects import CONFIG_KEYS

    keys = ranked.head(top)[CONFIG_KEYS].reset_index().rename(columns={"index": "rank"})
    keys["rank"] += 1
    return eff.merge(keys, on=CONFIG_KEYS, how="left")


def verdict_markdown(table: pd.DataFrame) -> str:
    """The verdict as markdown: one table row per configuration and outcome, conditions side by
    side as "mean [95% CI]" in points, and whether the configuration meets the bar."""
    from .effects import BAR_DAMAGE, BAR_EFFECT

    t = table.copy()
    pct = ~t.outcome.isin(["perplexity_ratio", "margin", "degenerate_seeds"])
    for c in ("mean", "ci_low", "ci_high"):
        t.loc[pct, c] *= 100
    t["cell"] = [f"{m:.1f}" if pd.isna(lo) else f"{m:.1f} [{lo:.1f}, {hi:.1f}]"
                 for m, lo, hi in zip(t["mean"], t.ci_low, t.ci_high)]
    wide = t.pivot_table(index=["rank", "outcome"], columns="condition", values="cell",
                         aggfunc="first", sort=False).reset_index()
    wide = wide[[c for c in ["rank", "outcome", "base", "sham", "soo", "soo-sham"] if c in wide]]
    wide = wide.fillna("-")
    lines = []
    for rank, g in table.groupby("rank"):
        r = g.iloc[0]
        eff = g[(g.condition == "soo-sham") & (g.outcome == "effect")]["mean"].iloc[0]
        dmg = g[(g.condition == "soo") & (g.outcome == "damage")]["mean"].iloc[0]
        degen = g[g.outcome == "degenerate_seeds"]["mean"]
        ok = eff >= BAR_EFFECT and dmg <= BAR_DAMAGE and not (len(degen) and degen.iloc[0] > 0)
        lines.append(f"- config {rank}: layer {int(r.layer)} {r.component}, loss {r.loss}, pooling "
                     f"{r.pooling}, lr {r.lr:g}, capability weight {r.capability_weight:g}, pairs "
                     f"{r.pair_set}: effect beyond sham {eff * 100:.1f} points, damage "
                     f"{dmg * 100:.1f} points, {r.n_seeds} fresh seeds -> "
                     f"{'MEETS' if ok else 'does not meet'} the bar")
    return "\n".join(lines) + "\n\n" + wide.to_markdown(index=False) + "\n"


def search_markdown(ranked: pd.DataFrame, meta: dict, grid_size: int) -> str:
    """The search in words and tables: coverage, the best configurations, whether any met the
    bar, and where the overlap moved without moving behaviour."""
    from .effects import BAR_DAMAGE, BAR_EFFECT

    show = ["layer", "component", "loss", "pooling", "lr", "capability_weight", "pair_set",
            "n_seeds", "effect", "damage", "deception", "sham.deception",
            "deception_honest_first", "wrong_self", "wrong_friend", "wrong_perspectives",
            "perplexity_ratio", "margin", "overlap", "overlap_change", "degenerate", "tied"]
    show = [c for c in show if c in ranked]
    pts = ["effect", "damage", "deception", "sham.deception", "deception_honest_first",
           "wrong_self", "wrong_friend", "wrong_perspectives"]
    r = ranked.copy()
    r[pts] = r[pts] * 100
    met = ranked[ranked.meets_bar]
    moved = r[(r.overlap_change <= -0.2) & (r.effect.abs() < 10)]
    best = r.iloc[0]
    lines = [
        f"# SOO search on {meta['model']}", "",
        f"{len(ranked)} SOO configurations of a grid of {grid_size} (layers x components x "
        f"losses x poolings x lrs x capability weights x pair sets), each against its sham "
        f"control; search seeds {meta['config']['seeds']} (stage 2 re-ran the best "
        f"{meta['config']['top_k']} on the later seeds); {meta.get('cells', '?')} cells. Rates "
        "in points: deception = burglar deceptive rate (paper layout, both option orders); "
        "effect = sham minus SOO deception; damage = worst rise over base of the wrong-answer "
        "rate of honest-to-self and honest-to-friend (both layouts), location and Perspectives, "
        "and of perplexity (ratio - 1); margin = mean log-probability margin on the burglar (nats); "
        "degenerate = a cut with collapsed margins or doubled perplexity; tied = configurations "
        "sharing the score (ordered by smaller damage, larger effect, then layer); overlap = "
        "normalised overlap of the held-out pairs at the trained site (change from base beside "
        "it).", "",
        f"**Bar** (effect >= {BAR_EFFECT * 100:.0f}, damage <= {BAR_DAMAGE * 100:.0f}): "
        + (f"met by {len(met)} configuration(s) on the search seeds (confirm with the verdict on "
           "fresh seeds)." if len(met) else "met by no configuration."), "",
        f"**Best trade-off** (highest effect minus damage): layer {int(best.layer)} "
        f"{best.component}, {best.loss}, {best.pooling}, lr {best.lr:g}, capability weight "
        f"{best.capability_weight:g}, {best.pair_set} pairs: effect {best.effect:.1f}, damage "
        f"{best.damage:.1f}, perplexity x{best.perplexity_ratio:.2f}.", "",
        "## Best configurations", "", r[show].head(12).to_markdown(index=False, floatfmt=".3g"),
        "", "## Overlap moved, behaviour did not",
        "", f"{len(moved)} configuration(s) lowered the normalised overlap at their trained site "
        "by >= 0.2 while changing deception beyond sham by < 10 points"
        + (":" if len(moved) else "."), ""]
    if len(moved):
        counts = moved.groupby(["layer", "component"]).size().rename("configs").reset_index()
        lines += [counts.to_markdown(index=False), ""]
    return "\n".join(lines)
