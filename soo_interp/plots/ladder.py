"""The SOO control ladder: one panel per outcome, arms side by side, every seed a point."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from ._base import _subplots

LADDER_PANELS: tuple[tuple[str, str], ...] = (
    ("deception", "burglar deception (paper layout)"),
    ("deception_honest_first", "burglar deception (honest room first)"),
    ("wrong_self", "wrong to self"), ("wrong_friend", "wrong to a friend"),
    ("wrong_location", "wrong location"), ("wrong_perspectives", "wrong Perspectives"),
    ("margin", "burglar margin (nats)"), ("perplexity_ratio", "perplexity / untuned"),
    ("overlap", "normalised overlap at the site"), ("linear_soo", "latent SOO, every linear"),
    ("damage", "damage (worst rise)"))


def ladder_plot(runs: pd.DataFrame, panels: Sequence[tuple[str, str]] = LADDER_PANELS,
                title: str | None = None):
    """From the ladder's per-seed table (`runs.csv`: arm, pair_set, seed and one column per
    outcome): one panel per outcome, the arms along x in their order, one colour per pair set,
    each seed a point and the mean over seeds a short bar; rate panels span 0-1."""
    import textwrap

    import numpy as np

    panels = [(c, label) for c, label in panels if c in runs.columns]
    arms = list(dict.fromkeys(runs.arm))
    sets = list(dict.fromkeys(runs.pair_set))
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = _subplots(rows, cols, figsize=(1.0 + max(3.0, 0.55 * len(arms)) * cols,
                                               3.0 * rows), squeeze=False)
    width = 0.8 / len(sets)
    palette = [f"C{i}" for i in range(len(sets))]
    for ax, (col, label) in zip(axes.flat, panels):
        for k, (ps, colour) in enumerate(zip(sets, palette)):
            d = runs[runs.pair_set == ps]
            x = np.array([arms.index(a) for a in d.arm]) - 0.4 + width * (k + 0.5)
            ax.plot(x, d[col], "o", color=colour, alpha=0.6, ms=4, label=ps)
            means = d.groupby("arm", sort=False)[col].mean()
            for arm, m in means.items():
                c = arms.index(arm) - 0.4 + width * (k + 0.5)
                ax.plot([c - width / 2.5, c + width / 2.5], [m, m], color=colour, lw=2)
        if col.startswith(("deception", "wrong_")):
            ax.set_ylim(-0.03, 1.03)
        ax.set_title(textwrap.fill(label, 28), fontsize=9)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(arms, rotation=60, ha="right", fontsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    axes.flat[0].legend(seen.values(), seen.keys(), fontsize=7, title="pair set",
                        title_fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title or "SOO control ladder: each seed a point, bars the means over seeds")
    fig.tight_layout()
    return fig
