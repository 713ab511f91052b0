"""Figures of the RL experiment, drawn from the summary tables `rl.report` computes (means and
95% t-intervals from `stats.summarize`). Each returns a matplotlib Figure."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..plots._base import _subplots

COLORS = {"deceptive": "#d62728", "honest": "#2ca02c", "base": "#7f7f7f", "soo": "#1f77b4",
          "sham": "#ff7f0e", "plain": "#9467bd"}


def _bars(ax, s: pd.DataFrame, x: str, color_by: str, points: bool = False) -> None:
    """Bars (rates) or points (log values, which have no natural zero) with 95% CIs."""
    xs = np.arange(len(s))
    err = np.nan_to_num(np.vstack([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]]).clip(min=0))
    colors = [COLORS.get(v, "#999999") for v in s[color_by]]
    if points:
        for i in xs:
            ax.errorbar(xs[i], s["mean"].iloc[i], yerr=err[:, i:i + 1], fmt="o", capsize=3,
                        color=colors[i])
    else:
        ax.bar(xs, s["mean"], yerr=err, capsize=3, color=colors)
    ax.set_xticks(xs, s[x], rotation=45, ha="right", fontsize=8)


def soo_value_plot(summary: pd.DataFrame):
    """Mean SOO value per model (95% CI over eval seeds), on its own and on shared states.
    `summary`: columns states, model, baseline, mean, ci_low, ci_high."""
    kinds = sorted(summary["states"].unique(), reverse=True)
    fig, axes = _subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.6), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        s = summary[summary["states"] == kind].reset_index(drop=True)
        _bars(ax, s, "model", "baseline", points=True)
        ax.set_title(f"SOO value, {kind} states (lower = more overlap)", fontsize=9)
        ax.set_ylabel("mean log(MSE + 1e-25)")
    fig.tight_layout()
    return fig


def behaviour_plot(summary: pd.DataFrame,
                   metrics=("trap_rate", "blue_goal_rate", "soo_value")):
    """Base vs SOO fine-tuned vs sham per deceptive run: behaviour and SOO value (95% CIs).
    `summary`: columns metric, model, condition, mean, ci_low, ci_high."""
    fig, axes = _subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        s = summary[summary["metric"] == m]
        order = {"base": 0, "soo": 1, "sham": 2, "plain": 3}
        s = s.sort_values(["model", "condition"], key=lambda c: c.map(order) if c.name ==
                          "condition" else c).reset_index(drop=True)
        s["label"] = s["model"] + " " + s["condition"]
        if m.endswith("_rate"):  # a rate's t-interval may cross 0 or 1; the rate cannot
            s[["ci_low", "ci_high"]] = s[["ci_low", "ci_high"]].clip(0.0, 1.0)
        _bars(ax, s, "label", "condition", points=m == "soo_value")
        ax.set_title(m, fontsize=9)
        ax.set_ylabel({"soo_value": "mean log(MSE + 1e-25)",
                       "red_sensitivity": "|action change| when red is blanked"}.get(m, "rate"))
    fig.tight_layout()
    return fig


def training_plot(logs: pd.DataFrame, metrics=("trap_rate", "blue_goal_rate", "return_blue")):
    """Training curves per run: trap rate, blue's goal-reaching and return per round."""
    fig, axes = _subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for (b, s), d in logs.groupby(["baseline", "seed"]):
            ax.plot(d["episodes"], d[m].rolling(5, min_periods=1).mean(), color=COLORS[b],
                    alpha=0.5 + 0.15 * (s % 3), label=f"{b} s{s}")
        ax.set_xlabel("episodes")
        ax.set_ylabel(f"{m} (mean of 5 rounds)")
        ax.set_title(m, fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def model_points_plot(table: pd.DataFrame, episodes: int | None,
                      metrics=("trap_rate", "trap_following_rate", "lead_fake_rate",
                               "soo_value_own")):
    """One point per trained model (95% CI over eval seeds) by class, for each metric, at
    `episodes` of training (None: every row of `table`). `table`: columns model, baseline,
    metric, mean, ci_low, ci_high (and train_episodes)."""
    t = table if episodes is None else table[table["train_episodes"] == episodes]
    fig, axes = _subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        s = t[t["metric"] == m]
        for x, b in enumerate(("deceptive", "honest")):
            d = s[s["baseline"] == b].sort_values("model")
            if not m.startswith("soo_value"):  # a rate's t-interval may cross 0; the rate cannot
                d = d.assign(ci_low=d["ci_low"].clip(0.0, 1.0), ci_high=d["ci_high"].clip(0.0, 1.0))
            xs = x + np.linspace(-0.2, 0.2, max(len(d), 1))[:len(d)]
            err = np.nan_to_num(np.vstack([d["mean"] - d["ci_low"],
                                           d["ci_high"] - d["mean"]]).clip(min=0))
            ax.errorbar(xs, d["mean"], yerr=err, fmt="o", capsize=2, color=COLORS[b])
        ax.set_xticks([0, 1], ["deceptive", "honest"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_title(m if episodes is None else f"{m} ({episodes} episodes)", fontsize=9)
    fig.tight_layout()
    return fig
