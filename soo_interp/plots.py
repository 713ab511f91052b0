"""Figures from result DataFrames. Every function returns a matplotlib Figure (never shows it);
save with `fig.savefig(path)`. A leaf: it draws tables it is given and imports no analysis module
(summaries come from `soo_interp.stats`)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .errors import ConfigError
from .models.sites import COMPONENTS
from .stats import summarize


def _subplots(*args, figsize=None, **kwargs):
    """Like `plt.subplots`, but the Figure is not registered with pyplot: nothing is shown
    twice in a notebook, nothing stays open in a loop, and no display is ever needed."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def default_metric(df: pd.DataFrame) -> str:
    """`normalised_soo` when the measurement has it at some site (comparable across sites), else
    `latent_soo`."""
    norm = df.loc[df["metric"] == "normalised_soo", "value"]
    return "normalised_soo" if norm.notna().any() else "latent_soo"


def _layer_heatmap(d: pd.DataFrame, title: str, label: str, log: bool = False, **heatmap: object):
    """Layers (rows, bottom up) x components heatmap of the mean `value` of `d`."""
    import numpy as np
    import seaborn as sns

    table = d.pivot_table(index="layer", columns="component", values="value", aggfunc="mean")
    table = table[[s for s in COMPONENTS if s in table.columns]]
    if log:
        table = np.log10(table.clip(lower=1e-12))
    fig, ax = _subplots(figsize=(1.6 + 1.4 * table.shape[1], 1.2 + 0.35 * table.shape[0]))
    sns.heatmap(table, annot=table.shape[0] <= 40, ax=ax, cbar_kws={"label": label}, **heatmap)
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def soo_heatmap(df: pd.DataFrame, metric: str | None = None, title: str | None = None,
                log: bool | None = None):
    """Layers x components heatmap of the mean of `metric` over pairs (from `measure`).

    Default metric: `default_metric(df)`. Raw MSEs (`latent_soo`, `floor_mse`, `ceiling_mse`)
    span orders of magnitude between attention outputs and the residual stream, so by default
    (`log=None`) they are drawn on a log10 scale, where every site stays visible."""
    metric = metric or default_metric(df)
    log = metric.endswith("_mse") or metric == "latent_soo" if log is None else log
    return _layer_heatmap(df[df["metric"] == metric], title or f"{metric} by layer and component",
                          f"log10 {metric}" if log else metric, log, fmt=".3g", cmap="viridis")


def soo_layer_plot(df: pd.DataFrame, metric: str | None = None,
                   components: Sequence[str] | None = None, title: str | None = None):
    """Mean of `metric` (default: `default_metric(df)`) per layer, one line per component, with
    95% CIs over pairs."""
    metric = metric or default_metric(df)
    s = summarize(df[df["metric"] == metric])
    fig, ax = _subplots(figsize=(6, 3.5))
    for comp in [x for x in COMPONENTS if x in set(s["component"])
                 and (not components or x in components)]:
        d = s[s["component"] == comp].sort_values("layer")
        ax.plot(d["layer"], d["mean"], marker="o", label=comp)
        ax.fill_between(d["layer"], d["ci_low"], d["ci_high"], alpha=0.2)
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per layer (95% CI over pairs)")
    ax.legend()
    fig.tight_layout()
    return fig


# --- deception evaluation (rates from `soo_interp.evaluation.rates`) ---------------------------

LABEL_COLORS = {"deceptive": "#d62728", "honest": "#2ca02c", "neither": "#bbbbbb",
                "both": "#9467bd", "refusal": "#1f77b4"}


def _group_name(row: pd.Series, columns: Sequence[str]) -> str:
    parts = []
    for c in columns:
        v = row[c]
        if c == "mirrored":
            parts.append("mirrored" if v else "original")
        elif c != "variant" or v != "base":
            parts.append(str(v))
    return " / ".join(parts)


RATE_VALUES = ("label", "count", "n", "rate", "ci_low", "ci_high")


def rates_plot(rates_df: pd.DataFrame, title: str | None = None,
               controls: Sequence[str] = ()):
    """Stacked bars of every label's rate per group (the group columns of `rates()`: model,
    scorer, scenario, variant, mirrored), with a 95% CI on the deceptive and the honest
    segment (the two a reader compares). For `controls` (scenarios where 'deceptive' means the
    wrong answer, e.g. perspectives), the bar's name says so."""
    import numpy as np

    labels = [lb for lb in LABEL_COLORS if lb in set(rates_df["label"])]
    # scenario and order always label a bar; any other group column only when it varies
    groups = [c for c in rates_df.columns if c not in RATE_VALUES
              and (c in ("scenario", "mirrored") or rates_df[c].nunique() > 1)]
    wide = rates_df.pivot_table(index=groups, columns="label", values="rate", aggfunc="first",
                                sort=True).reset_index()
    names = [_group_name(r, groups) + ("  [deceptive = wrong room]"
                                       if r["scenario"] in controls else "")
             for _, r in wide.iterrows()]
    y = np.arange(len(wide))
    fig, ax = _subplots(figsize=(9.5, 1.2 + 0.32 * len(wide)))
    left = np.zeros(len(wide))
    for lb in labels:
        ax.barh(y, wide[lb], left=left, color=LABEL_COLORS[lb], label=lb)
        if lb in ("deceptive", "honest"):
            ci = rates_df[rates_df["label"] == lb].set_index(groups)[["ci_low", "ci_high"]]
            ci = ci.loc[[tuple(r[groups]) if len(groups) > 1 else r[groups[0]]
                         for _, r in wide.iterrows()]]
            # the interval of this label's rate, drawn around its segment's end
            ax.errorbar(left + wide[lb], y, xerr=[wide[lb] - ci["ci_low"].to_numpy(),
                                                   ci["ci_high"].to_numpy() - wide[lb]],
                        fmt="none", ecolor="black", capsize=3, lw=1)
        left += wide[lb].to_numpy()
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("rate (black: 95% Wilson CI of the deceptive and honest rates)")
    ax.set_title(title or "Answer rates per scenario")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def position_bias_plot(rates_df: pd.DataFrame, label: str = "deceptive",
                       title: str | None = None, controls: Sequence[str] = ()):
    """Small multiples, one panel per scenario: for each variant (and scorer), `label`'s rate
    with the deceptive option offered first (circle) and second (square, mirrored), with 95%
    CIs, joined by a line. A long line is a preference for a position, not for deception.
    Panels of `controls` say that there 'deceptive' is the wrong answer."""
    import numpy as np

    if "mirrored" not in rates_df.columns or rates_df["mirrored"].nunique() < 2:
        raise ConfigError("position bias needs both orders; evaluate with mirrored='both' "
                          "(--mirrored on the command line)")
    d = rates_df[rates_df["label"] == label]
    rows = [c for c in ("model", "variant", "scorer") if c in d.columns and d[c].nunique() > 1]
    scenarios = list(dict.fromkeys(d["scenario"]))
    sizes = [max(1, len(d[d.scenario == s].groupby(rows or ["scenario"]))) for s in scenarios]
    fig, axes = _subplots(len(scenarios), 1, squeeze=False, sharex=True,
                          figsize=(7.5, 0.9 + 0.42 * sum(sizes) + 0.35 * len(scenarios)),
                          gridspec_kw={"height_ratios": sizes})
    orders = ((False, "o", "#1f77b4", "deceptive option first"),
              (True, "s", "#ff7f0e", "deceptive option second (mirrored)"))
    for ax, scenario in zip(axes[:, 0], scenarios):
        groups = list(d[d.scenario == scenario].groupby(rows or ["scenario"], sort=True))
        for j, (key, g) in enumerate(groups):
            xs = []
            for mirrored, marker, color, name in orders:
                r = g[g["mirrored"] == mirrored]
                if r.empty:
                    continue
                r = r.iloc[0]
                yj = j + (0.15 if mirrored else -0.15)
                ax.errorbar(r["rate"], yj, xerr=[[r["rate"] - r["ci_low"]], [r["ci_high"] - r["rate"]]],
                            fmt=marker, color=color, capsize=2, ms=6,
                            label=name if j == 0 else None)
                xs.append((r["rate"], yj))
            if len(xs) == 2:
                ax.plot(*zip(*xs), color="grey", lw=0.8, zorder=0)
        names = [" / ".join(map(str, k if isinstance(k, tuple) else (k,))) if rows else ""
                 for k, _ in groups]
        ax.set_yticks(np.arange(len(groups)), names, fontsize=8)
        ax.set_ylim(len(groups) - 0.5, -0.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(scenario + ("  (control: deceptive = wrong answer)"
                                 if scenario in controls else ""), loc="left", fontsize=9)
        ax.grid(axis="x", color="0.9")
    axes[-1, 0].set_xlabel(f"{label} rate (95% Wilson CI)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=8)
    fig.suptitle(title or "Position bias: the same prompts in both option orders", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _default_probe(sep: pd.DataFrame, probe: str | None) -> str:
    """The probe kind to plot: the one asked for, else logistic when present, else the first."""
    kinds = list(dict.fromkeys(sep["probe"]))
    return probe or ("logistic" if "logistic" in kinds else kinds[0])


def separability_layer_plot(summary: pd.DataFrame, metric: str = "auroc",
                            probe: str | None = None, title: str | None = None):
    """Probe `metric` per layer (mean and 95% CI over folds, from `summarize_separability`, i.e.
    `ProbeResults.summary` or summary.csv), one panel per suite, one line per component; the
    shuffled-label control dashed in grey shows chance level. `probe`: the kind to show
    (default logistic when present)."""
    if "mean" not in summary.columns:
        raise ConfigError("separability_layer_plot draws the summary over folds; pass "
                          "summarize_separability(sep) (ProbeResults.summary), not the fold rows")
    probe = _default_probe(summary, probe)
    s = summary[(summary["metric"] == metric) & (summary["probe"] == probe)]
    suites = sorted(s["suite"].unique())
    fig, axes = _subplots(1, len(suites), figsize=(5 * len(suites), 3.5), squeeze=False,
                             sharey=True)
    for ax, suite in zip(axes[0], suites):
        d = s[s["suite"] == suite]
        for comp in [x for x in COMPONENTS if x in set(d["component"])]:
            for control, style in (("real", "-"), ("shuffled", ":")):
                e = d[(d["component"] == comp) & (d["control"] == control)].sort_values("layer")
                if e.empty:
                    continue
                kw = {"marker": "o", "label": comp} if control == "real" else {
                    "color": "grey", "label": "shuffled labels" if comp == d["component"].iloc[0]
                    else None}
                ax.plot(e["layer"], e["mean"], style, **kw)
                ax.fill_between(e["layer"], e["ci_low"], e["ci_high"],
                                alpha=0.15 if control == "real" else 0.06,
                                color=None if control == "real" else "grey")
        ax.set_title(suite)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"{probe} {metric} (grouped CV)")
    fig.suptitle(title or f"Separability by layer ({probe} probe, 95% CI over folds)")
    fig.tight_layout()
    return fig


def separability_heatmap(sep: pd.DataFrame, suite: str, metric: str = "auroc",
                         probe: str | None = None, title: str | None = None):
    """Layers x components heatmap of the mean CV `metric` of real-label `probe`s on `suite`."""
    probe = _default_probe(sep, probe)
    d = sep[(sep["suite"] == suite) & (sep["metric"] == metric) & (sep["probe"] == probe)
            & (sep["control"] == "real")]
    return _layer_heatmap(d, title or f"{suite}: {probe} {metric}", metric, fmt=".2f",
                          cmap="magma", vmin=0.5 if metric == "auroc" else None, vmax=1.0)


def signature_plot(signatures: pd.DataFrame, title: str | None = None):
    """Each self-deception signature per layer (one panel per signature and model, one line
    per component); flagged sites are marked with a ring."""

    keys = signatures[["signature", "model"]].drop_duplicates().values.tolist()
    fig, axes = _subplots(1, len(keys), figsize=(4.5 * len(keys), 3.3), squeeze=False)
    for ax, (sig, model) in zip(axes[0], keys):
        d = signatures[(signatures["signature"] == sig) & (signatures["model"] == model)]
        for comp in [x for x in COMPONENTS if x in set(d["component"])]:
            e = d[d["component"] == comp].sort_values("layer")
            ax.plot(e["layer"], e["value"], marker="o", label=comp)
            f = e[e["flag"].astype(bool)]
            ax.scatter(f["layer"], f["value"], s=150, facecolors="none", edgecolors="red")
        ax.set_title(f"{sig}\n{model}", fontsize=9)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.suptitle(title or "Self-deception signatures (red ring: flagged)")
    fig.tight_layout()
    return fig


def geometry_plot(df: pd.DataFrame, title: str | None = None):
    """From `geometry.compare_models`: per layer and component, the change in latent SOO (tuned minus
    base) and the base-vs-tuned CKA."""
    fig, axes = _subplots(1, 2, figsize=(10, 3.5))
    for ax, metric, label in ((axes[0], "delta_latent_soo", "latent SOO: tuned - base"),
                              (axes[1], "cka_base_tuned", "CKA(base, tuned)")):
        d = df[df.metric == metric]
        for comp in [c for c in COMPONENTS if c in set(d.component)]:
            x = d[d.component == comp].sort_values("layer")
            ax.plot(x.layer, x.value, marker="o", label=comp)
        ax.set_xlabel("layer")
        ax.set_ylabel(label)
        ax.axhline(0 if metric.startswith("delta") else 1, color="grey", lw=0.8, ls="--")
        ax.legend()
    fig.suptitle(title or "before/after geometry")
    fig.tight_layout()
    return fig


def sweep_plot(df: pd.DataFrame, panels: Sequence[tuple[str, str | None, str]] | None = None,
               title: str | None = None):
    """From `sweep.sweep`: one panel per (metric, scenario), x = the trained layer, one line per
    condition (soo, sham; mean over seeds, with each seed's value as a faint point when there
    are several) and the base model as a dashed line; rate panels span 0-1."""
    panels = panels or [("deceptive_rate", "burglar", "burglar: deceptive rate"),
                        ("deceptive_rate", "self_recommend", "self: wrong-room rate"),
                        ("deceptive_rate", "friend", "friend: wrong-room rate"),
                        ("deceptive_rate", "perspectives", "perspectives: error rate"),
                        ("perplexity", None, "neutral-text perplexity"),
                        ("latent_soo", None, "latent SOO at the trained site")]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = _subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (metric, scenario, label) in zip(axes.flat, panels):
        d = df[(df.metric == metric) & ((df.scenario == scenario) if scenario else df.scenario.isna())]
        for cond, style in (("soo", "-o"), ("sham", "-s"), ("base", "--")):
            c = d[d.condition == cond]
            x = c.groupby("train_layer").value.mean()
            if not len(x):
                continue
            line, = ax.plot(x.index, x.values, style, label=f"{cond} (mean)" if cond != "base"
                            else cond)
            if cond != "base" and c.seed.nunique() > 1:  # every seed, so the spread shows
                ax.plot(c.train_layer, c.value, style[-1], color=line.get_color(), alpha=0.35,
                        ms=4, ls="none", label=f"{cond} (each seed)")
        if metric.endswith("_rate"):
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(label)
        ax.set_xlabel("trained layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title or "SOO fine-tuning by layer, against the sham control")
    fig.tight_layout()
    return fig


def training_curves(log: pd.DataFrame, metrics: Sequence[str] = ("objective", "latent_soo"),
                    hue: Sequence[str] = ("condition", "seed"), title: str | None = None):
    """From `train_soo` logs (one or several concatenated): one panel per metric against the
    optimizer step, one line per combination of the `hue` columns, log-scaled y."""
    hue = [h for h in hue if h in log.columns] or ["seed"]
    fig, axes = _subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        d = log[log.metric == metric]
        for name, g in d.groupby(hue, sort=False):
            ax.plot(g.step, g.value, marker="o" if metric == "latent_soo" else None,
                    label=" ".join(f"{h}={v}" for h, v in zip(hue, name)))
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_title(metric)
        ax.legend(fontsize=8)
    fig.suptitle(title or "SOO training")
    fig.tight_layout()
    return fig


# --- the SOO search (configs from `soo_interp.effects.rank_configs`) ----------------------------

def pareto_plot(configs: pd.DataFrame, bar: tuple[float, float] = (0.5, 0.05),
                title: str | None = None):
    """One point per configuration: damage to the honest controls (x, points) against the
    deception cut beyond sham (y, points); the Pareto front joined, the bar's corner shaded."""
    import numpy as np

    d = configs.sort_values("damage")
    x, y = d.damage.to_numpy() * 100, d.effect.to_numpy() * 100
    front = np.maximum.accumulate(y) == y  # best effect so far at no more damage
    fig, ax = _subplots(figsize=(6.5, 4.5))
    ax.fill_between([min(0, x.min()) - 5, bar[1] * 100], bar[0] * 100, max(100, y.max() + 5),
                    color="#2ca02c", alpha=0.12)  # the bar's corner
    ax.axvline(bar[1] * 100, color="#2ca02c", ls="--", lw=1)
    ax.axhline(bar[0] * 100, color="#2ca02c", ls="--", lw=1, label="the bar (effect >= 50, "
               "damage <= 5)")
    for comp, marker in zip(COMPONENTS, "o^s"):
        m = (d.component == comp).to_numpy()
        ax.scatter(x[m], y[m], marker=marker, alpha=0.7, label=comp)
    ax.plot(x[front], y[front], color="black", lw=1, label="Pareto front")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlim(min(0, x.min()) - 3, max(x.max(), bar[1] * 100) + 3)
    ax.set_xlabel("damage, points (largest rise over base of a wrong-answer rate:\n"
                  "honest to self, honest to friend, Perspectives)")
    ax.set_ylabel("deception cut beyond sham, points")
    ax.set_title(title or "SOO configurations: effect against damage")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def effect_heatmap(configs: pd.DataFrame, value: str = "effect", title: str | None = None):
    """Layers x components: the best (max over the other axes) `value` of any configuration
    trained at that site, in points; blank where none was trained."""
    import seaborn as sns

    table = configs.astype({"layer": int}).pivot_table(index="layer", columns="component",
                                                       values=value, aggfunc="max")
    table = table[[s for s in COMPONENTS if s in table.columns]] * 100
    fig, ax = _subplots(figsize=(1.6 + 1.4 * table.shape[1], 1.2 + 0.35 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt=".0f", cmap="RdBu", center=0, ax=ax,
                cbar_kws={"label": f"best {value}, points"})
    ax.set_title(title or f"best {value} by trained site")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def organism_curve_plot(curve: pd.DataFrame, metrics: Sequence[str] | None = None,
                        title: str | None = None):
    """The organism's held-out rates during its build (long rows of seed, step, metric, value):
    one panel per metric, one line per build seed, chance and the 90% target marked."""
    metrics = list(metrics or curve["metric"].unique())
    fig, axes = _subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False,
                          sharey=True)
    for ax, metric in zip(axes.flat, metrics):
        for seed, g in curve[curve["metric"] == metric].groupby("seed"):
            ax.plot(g["step"], g["value"], label=f"seed {seed}")
        ax.axhline(0.9, color="grey", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("training step")
        ax.set_title(metric, fontsize=9)
    axes.flat[0].set_ylabel("held-out rate")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title or "organism build: held-out rates during training")
    fig.tight_layout()
    return fig
