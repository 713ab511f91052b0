"""Training and its outcomes: curves, the layer sweep, the SOO search, the organism's build."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..models.sites import COMPONENTS
from ._base import _subplots


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
        ax.set_ylabel("rate" if metric.endswith("_rate") else metric)
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
        ax.set_ylabel(f"{metric} (log scale)")
        ax.set_title(metric)
        ax.legend(fontsize=8)
    fig.suptitle(title or "SOO training")
    fig.tight_layout()
    return fig

# --- the SOO search (configs from `soo_interp.experiments.effects.rank_configs`) ----------------------------

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
        m = (d.train_component == comp).to_numpy()
        if m.any():  # the legend lists only what is drawn
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

    table = configs.astype({"train_layer": int}).pivot_table(
        index="train_layer", columns="train_component", values=value, aggfunc="max")
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
