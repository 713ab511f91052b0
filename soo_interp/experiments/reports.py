"""The experiments' report writers: the markdown, figures and summary tables of a sweep, a
search and a verdict, from the tables their engines return (`layer_sweep.sweep`,
`search.search`, `verdict.verdict`), each file written atomically. The engines compute; these
write; the commands only parse arguments and call both."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..runs import atomic_path, atomic_write_text, write_run_json
from .effects import BAR_DAMAGE, BAR_EFFECT
from .search import check_complete
from .verdict import VerdictConfig


def write_summary(out: str | Path, df: pd.DataFrame, title: str | None = None) -> None:
    """sweep.parquet, sweep.csv (mean, sd, count over seeds) and sweep.png, each atomically."""
    # lazy: matplotlib costs ~1 s at import; `soo-interp --help` imports this package
    from ..plots import sweep_plot

    out = Path(out)
    keys = ["condition", "train_layer", "train_component", "loss", "scenario", "metric"]
    summary = df.groupby(keys, dropna=False).value.agg(["mean", "std", "count"]).reset_index()
    with atomic_path(out / "sweep.parquet") as p:
        df.to_parquet(p, index=False)
    with atomic_path(out / "sweep.csv") as p:
        summary.to_csv(p, index=False)
    with atomic_path(out / "sweep.png") as p:
        sweep_plot(df, title=title).savefig(p, dpi=120, format="png")


def search_markdown(ranked: pd.DataFrame, meta: dict, grid_size: int) -> str:
    """The search in words and tables: coverage, the best configurations, whether any met the
    bar, and where the overlap moved without moving behaviour."""
    show = ["train_layer", "train_component", "loss", "pooling", "lr", "capability_weight", "pair_set",
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
        f"control; search seeds {meta['config']['seeds']} ("
        + (f"stage 2 re-ran the best {meta['config']['top_k']} on the later seeds"
           if len(meta["config"]["seeds"]) > 1 else "one seed: no stage 2")
        + f"); {meta.get('cells', '?')} cells; {meta['config'].get('n', '?')} prompts per "
        f"scenario and layout x 2 option orders ({meta['config'].get('evaluation', 'scenarios')} "
        "suite). Rates "
        "in points: deception = burglar deceptive rate (deceptive_first layout, both option "
        "orders); "
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
        f"**Best trade-off** (highest effect minus damage): layer {int(best.train_layer)} "
        f"{best.train_component}, {best.loss}, {best.pooling}, lr {best.lr:g}, capability weight "
        f"{best.capability_weight:g}, {best.pair_set} pairs: effect {best.effect:.1f}, damage "
        f"{best.damage:.1f}, perplexity x{best.perplexity_ratio:.2f}.", "",
        "## Best configurations", "", r[show].head(12).to_markdown(index=False, floatfmt=".3g"),
        "", "## Overlap moved, behaviour did not",
        "", f"{len(moved)} configuration(s) lowered the normalised overlap at their trained site "
        "by >= 0.2 while changing deception beyond sham by < 10 points"
        + (":" if len(moved) else "."), ""]
    if len(moved):
        counts = moved.groupby(["train_layer", "train_component"]).size().rename(
            "configs").reset_index()
        lines += [counts.to_markdown(index=False), ""]
    return "\n".join(lines)


def write_search_report(out: Path, ranked: pd.DataFrame, grid_size: int) -> None:
    """report.md, the Pareto figure, the effect heatmap and run.json of a finished search."""
    # lazy: matplotlib costs ~1 s at import; `soo-interp --help` imports this package
    from ..plots import effect_heatmap, pareto_plot

    meta = check_complete(out)
    atomic_write_text(out / "report.md", search_markdown(ranked, meta, grid_size))
    for name, fig in (("pareto.png", pareto_plot(ranked)),
                      ("effect_heatmap.png", effect_heatmap(ranked))):
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    write_run_json(out, meta["config"], meta["config"]["seeds"][0], model=meta["model"])


def write_verdict_report(out: Path, table: pd.DataFrame, cfg: VerdictConfig,
                         search_dir: str | Path) -> None:
    """verdict.csv, verdict.md and run.json of a verdict."""
    with atomic_path(out / "verdict.csv") as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(out / "verdict.md", verdict_markdown(table))
    write_run_json(out, cfg.to_dict(), cfg.seeds[0], search=str(search_dir))


def verdict_markdown(table: pd.DataFrame) -> str:
    """The verdict as markdown: one table row per configuration and outcome, conditions side by
    side as "mean [95% CI]" in points, and whether the configuration meets the bar."""
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
        lines.append(f"- config {rank}: layer {int(r.train_layer)} {r.train_component}, loss "
                     f"{r.loss}, pooling "
                     f"{r.pooling}, lr {r.lr:g}, capability weight {r.capability_weight:g}, pairs "
                     f"{r.pair_set}: effect beyond sham {eff * 100:.1f} points, damage "
                     f"{dmg * 100:.1f} points, {r.n_seeds} fresh seeds -> "
                     f"{'MEETS' if ok else 'does not meet'} the bar")
    return "\n".join(lines) + "\n\n" + wide.to_markdown(index=False) + "\n"
