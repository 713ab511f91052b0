"""Summary statistics of long result tables: means with t intervals, and Wilson intervals of
proportions. One home for both, so analysis modules and `plots` use the same numbers.

Wilson rather than the normal approximation because deception rates sit near 0% and 100%, where
the normal interval leaves [0, 1] and has poor coverage at a few hundred prompts.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from .errors import ConfigError


def summarize(df: pd.DataFrame, by: Sequence[str] = ("layer", "component", "metric"),
              confidence: float = 0.95) -> pd.DataFrame:
    """Mean, sd, n and the t-based confidence interval of `value` per group of `by`."""
    from scipy import stats

    missing = [c for c in (*by, "value") if c not in getattr(df, "columns", ())]
    if missing:
        raise ConfigError(f"summarize needs a long DataFrame with the columns "
                          f"{', '.join((*by, 'value'))} (missing {', '.join(missing)}); pass "
                          "e.g. the frame measure() returned")
    g = df.groupby(list(by), sort=True)["value"]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    sem = out["sd"] / out["n"].clip(lower=1) ** 0.5
    t = out["n"].map(lambda n: stats.t.ppf(0.5 + confidence / 2, n - 1) if n > 1 else math.nan)
    out["ci_low"] = out["mean"] - t * sem
    out["ci_high"] = out["mean"] + t * sem
    return out


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the binomial proportion k/n (scipy); NaNs when n is 0."""
    from scipy.stats import binomtest

    if n <= 0:
        return (math.nan, math.nan)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))
