"""What every figure shares: a Figure outside pyplot and the layers x components heatmap."""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ..models.sites import COMPONENTS


def _subplots(*args, figsize=None, **kwargs):
    """Like `plt.subplots`, but the Figure is not registered with pyplot: nothing is shown
    twice in a notebook, nothing stays open in a loop, and no display is ever needed."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)



def _layer_heatmap(d: pd.DataFrame, title: str, label: str, log: bool = False,
                   marks: tuple[float, ...] = (), **heatmap: object):
    """Layers (rows, bottom up) x components heatmap of the mean `value` of `d`; the colour
    scale always reaches the values in `marks` and the colour bar has a tick at each."""
    import numpy as np
    import seaborn as sns

    table = d.pivot_table(index="layer", columns="component", values="value", aggfunc="mean")
    table = table[[s for s in COMPONENTS if s in table.columns]]
    if log:
        table = np.log10(table.clip(lower=1e-12))
    if marks:
        values = table.to_numpy(dtype=float)
        seen = tuple(values[np.isfinite(values)].tolist())
        heatmap = {"vmin": min(marks + seen), "vmax": max(marks + seen), **heatmap}
    fig, ax = _subplots(figsize=(1.6 + 1.4 * table.shape[1], 1.2 + 0.35 * table.shape[0]))
    sns.heatmap(table, annot=table.shape[0] <= 40, ax=ax, cbar_kws={"label": label}, **heatmap)
    if marks:
        bar = ax.collections[0].colorbar
        bar.set_ticks(sorted({round(float(t), 6) for t in bar.get_ticks()
                              if heatmap["vmin"] <= t <= heatmap["vmax"]} | set(marks)))
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
