"""Probe figures: separability per layer and the self-deception signatures."""
from __future__ import annotations

import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..errors import ConfigError
from ..models.sites import COMPONENTS
from ._base import _layer_heatmap, _subplots


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
        ax.set_ylabel("signature value")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.suptitle(title or "Self-deception signatures (red ring: flagged)")
    fig.tight_layout()
    return fig


def room_probe_plot(rooms: pd.DataFrame, title: str | None = None,
                    ylabel: str = "held-out accuracy (of 2 rooms)", per_row: int = 4):
    """Room read-out accuracy per layer (from `soo_interp.probes.rooms.room_probe`, or any table
    of its columns, e.g. `organism.mechanistic`): one panel per scenario (at most `per_row` a
    row), one line per layout, real probe solid and shuffled-label control dotted, 95% CIs
    shaded, the 50% chance of picking one of two dashed."""
    scenarios = list(dict.fromkeys(rooms["scenario"]))
    ncols = min(per_row, len(scenarios))
    nrows = -(-len(scenarios) // ncols)
    fig, axes = _subplots(nrows, ncols, figsize=(3.6 * ncols, 3.3 * nrows), squeeze=False,
                          sharey=True)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(scenarios):]:
        ax.set_visible(False)
    for ax, scenario in zip(flat, scenarios):
        d = rooms[rooms["scenario"] == scenario]
        for i, layout in enumerate(dict.fromkeys(d["layout"])):
            for control, style in (("real", "-"), ("shuffled", ":")):
                e = d[(d["layout"] == layout) & (d["control"] == control)].sort_values("layer")
                ax.plot(e["layer"], e["accuracy"], style, marker="o", color=f"C{i}",
                        label=f"{layout}" + ("" if control == "real" else " (shuffled)"))
                ax.fill_between(e["layer"], e["ci_low"], e["ci_high"], color=f"C{i}",
                                alpha=0.15 if control == "real" else 0.06)
        ax.axhline(0.5, color="grey", ls="--", lw=1)
        ax.set_title(scenario)
        ax.set_xlabel("layer (residual stream)")
        ax.set_ylim(0, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for row in axes:
        row[0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title or "Which room holds the valuable object? Linear read-out, last token")
    fig.tight_layout()
    return fig
