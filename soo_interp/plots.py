"""Figures from result DataFrames. Every function returns a matplotlib Figure (never shows it);
save with `fig.savefig(path)`."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

SITE_ORDER = ("attn", "mlp", "resid")


def soo_heatmap(df: pd.DataFrame, metric: str = "latent_soo", title: str | None = None,
                log: bool = False):
    """Layers x sites heatmap of the mean of `metric` over pairs (from `measure`)."""
    import numpy as np
    import seaborn as sns

    d = df[df["metric"] == metric]
    table = d.pivot_table(index="layer", columns="site", values="value", aggfunc="mean")
    table = table[[s for s in SITE_ORDER if s in table.columns]]
    if log:
        table = np.log10(table.clip(lower=1e-12))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * table.shape[1], 1.2 + 0.35 * table.shape[0]))
    sns.heatmap(table, annot=table.shape[0] <= 40, fmt=".3g", cmap="viridis", ax=ax,
                cbar_kws={"label": f"log10 {metric}" if log else metric})
    ax.set_title(title or f"{metric} by layer and site")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def soo_layer_plot(df: pd.DataFrame, metric: str = "latent_soo",
                   sites: Sequence[str] | None = None, title: str | None = None):
    """Mean of `metric` per layer, one line per site, with 95% CIs over pairs."""
    from .measure import summarize

    s = summarize(df[df["metric"] == metric])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for site in [x for x in SITE_ORDER if x in set(s["site"]) and (not sites or x in sites)]:
        d = s[s["site"] == site].sort_values("layer")
        ax.plot(d["layer"], d["mean"], marker="o", label=site)
        ax.fill_between(d["layer"], d["ci_low"], d["ci_high"], alpha=0.2)
    ax.set_xlabel("layer")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per layer (95% CI over pairs)")
    ax.legend()
    fig.tight_layout()
    return fig
