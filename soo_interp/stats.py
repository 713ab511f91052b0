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
    missing = [c for c in (*by, "value") if c not in getattr(df, "columns", ())]
    if missing:
        raise ConfigError(f"summarize needs a long DataFrame with the columns "
                          f"{', '.join((*by, 'value'))} (missing {', '.join(missing)}); pass "
                          "e.g. the frame measure() returned")
    g = df.groupby(list(by), sort=True)["value"]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    half = [t_halfwidth(sd, n, confidence) for sd, n in zip(out["sd"], out["n"])]
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out


def t_halfwidth(sd: float, n: int, confidence: float = 0.95) -> float:
    """Half the width of the t interval of a mean of `n` values with sample sd `sd` (NaN below
    two values): the one t interval of the package."""
    from scipy import stats

    n = int(n)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / n ** 0.5)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of `values` (NaNs dropped) and its t interval (NaN bounds below two values)."""
    v = pd.Series(values, dtype=float).dropna()
    m = float(v.mean())
    h = t_halfwidth(float(v.std(ddof=1)), len(v), confidence)
    return m, m - h, m + h


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the binomial proportion k/n (scipy); NaNs when n is 0."""
    from scipy.stats import binomtest

    if n <= 0:
        return (math.nan, math.nan)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def rate_interval(rates: Sequence[float], ns: Sequence[int], confidence: float = 0.95,
                  n_boot: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over trained models (seeds) of their rates `rates[i]` = k_i / n_i, with an interval
    that carries both the spread between models and prompt sampling: a two-level bootstrap
    (models with replacement, then each drawn model's n_i prompts, as Binomial(n_i, rate_i)),
    widened to at least the Wilson interval of the pooled prompts, so a rate measured on a
    finite sample never gets [0, 0] (0 of 600 prompts is [0, 0.6%], not certainty)."""
    import numpy as np

    r, n = np.asarray(rates, float), np.asarray(ns, int)
    if len(r) == 0 or (n <= 0).any():
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(r), size=(n_boot, len(r)))
    boot = (rng.binomial(n[pick], r[pick]) / n[pick]).mean(1)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    wl, wh = wilson_interval(int(round(float((r * n).sum()))), int(n.sum()), confidence)
    return float(r.mean()), float(min(lo, wl)), float(max(hi, wh))


def difference_interval(a: Sequence[float], na: Sequence[int], b: Sequence[float],
                        nb: Sequence[int], confidence: float = 0.95, n_boot: int = 4000,
                        seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences a_i - b_i of two rates per model (e.g. sham minus SOO
    deception of the same seed), with the same two-level bootstrap (models drawn together,
    prompts of each arm apart), widened to at least Newcombe's hybrid score interval of the
    pooled difference (built from the two Wilson intervals): never [0, 0] on a finite sample."""
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = np.asarray(na, int), np.asarray(nb, int)
    if len(a) == 0 or len(a) != len(b) or (na <= 0).any() or (nb <= 0).any():
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(a), size=(n_boot, len(a)))
    boot = (rng.binomial(na[pick], a[pick]) / na[pick]
            - rng.binomial(nb[pick], b[pick]) / nb[pick]).mean(1)
    q = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [q, 1 - q])
    ka, kb = float((a * na).sum()), float((b * nb).sum())
    pa, pb = ka / na.sum(), kb / nb.sum()
    la, ua = wilson_interval(int(round(ka)), int(na.sum()), confidence)
    lb, ub = wilson_interval(int(round(kb)), int(nb.sum()), confidence)
    d = pa - pb
    nl = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    nh = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return float((a - b).mean()), float(min(lo, nl)), float(max(hi, nh))
