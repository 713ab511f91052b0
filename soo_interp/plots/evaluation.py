"""Deception-evaluation figures (rates from `soo_interp.evaluation.rates`)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..errors import ConfigError
from ._base import _subplots

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
    rows = [c for c in ("model", "variant", "layout", "scorer") if c in d.columns and d[c].nunique() > 1]
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
