"""Latent SOO and before/after geometry by layer and component (from `measure`, `geometry`)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..models.sites import COMPONENTS
from ..stats import summarize
from ._base import _layer_heatmap, _subplots


def default_metric(df: pd.DataFrame) -> str:
    """`normalised_soo` when the measurement has it at some site (comparable across sites), else
    `latent_soo`."""
    norm = df.loc[df["metric"] == "normalised_soo", "value"]
    return "normalised_soo" if norm.notna().any() else "latent_soo"



def soo_heatmap(df: pd.DataFrame, metric: str | None = None, title: str | None = None,
                log: bool | None = None):
    """Layers x components heatmap of the mean of `metric` over pairs (from `measure`).

    Default metric: `default_metric(df)`. Raw MSEs (`latent_soo`, `floor_mse`, `ceiling_mse`)
    span orders of magnitude between attention outputs and the residual stream, so by default
    (`log=None`) they are drawn on a log10 scale, where every site stays visible."""
    metric = metric or default_metric(df)
    log = metric.endswith("_mse") or metric == "latent_soo" if log is None else log
    marks = (0.0, 1.0) if metric == "normalised_soo" else ()  # floor and ceiling of the scale
    return _layer_heatmap(df[df["metric"] == metric], title or f"{metric} by layer and component",
                          f"log10 {metric}" if log else metric, log, marks, fmt=".3g",
                          cmap="viridis")


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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", useOffset=False)  # CKA near 1 read "1e-5+9.999e-1"
        ax.set_ylabel(label)
        ax.axhline(0 if metric.startswith("delta") else 1, color="grey", lw=0.8, ls="--")
        ax.legend()
    fig.suptitle(title or "before/after geometry")
    fig.tight_layout()
    return fig
