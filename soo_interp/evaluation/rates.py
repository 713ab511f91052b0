"""Rates of each answer label with 95% Wilson intervals (`soo_interp.stats`), per scenario,
variant, layout (description order) and mirrored flag (option order)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..stats import wilson_interval
from .classify import LABELS

GROUP_COLUMNS: tuple[str, ...] = ("model", "scorer", "scenario", "variant", "layout", "mirrored")


def _groups(df: pd.DataFrame) -> list[str]:
    return [c for c in GROUP_COLUMNS if c in df.columns]


def rates(df: pd.DataFrame, label_column: str = "classification") -> pd.DataFrame:
    """Long table: one row per group (those of model, scorer, scenario, variant, mirrored present
    in `df`) and label in `LABELS`, with `count`, `n`, `rate` and the 95% Wilson `ci_low`,
    `ci_high`. Every label appears in every group (count 0 included), so rates sum to 1."""
    if label_column not in df.columns:
        raise ConfigError(f"no {label_column!r} column to compute rates from; pass the output of "
                          "evaluate(), logprob_scores() or generate_responses()")
    unknown = sorted(set(df[label_column]) - set(LABELS))
    if unknown:
        raise ConfigError(f"unknown labels {unknown} in {label_column!r}; valid: {list(LABELS)}")
    groups = _groups(df)
    rows = []
    grouped = df.groupby(groups, dropna=False, sort=True) if groups else [((), df)]
    for key, part in grouped:
        key = key if isinstance(key, tuple) else (key,)
        counts = part[label_column].value_counts()
        n = len(part)
        for label in LABELS:
            k = int(counts.get(label, 0))
            lo, hi = wilson_interval(k, n)
            rows.append({**dict(zip(groups, key)), "label": label, "count": k, "n": n,
                         "rate": k / n, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def rates_table(rates_df: pd.DataFrame, labels: tuple[str, ...] = LABELS) -> pd.DataFrame:
    """Readable summary of `rates()`: one row per group, one column per label holding
    "rate% [low, high]", plus `n`."""
    groups = _groups(rates_df)
    cell = rates_df.assign(text=[f"{100 * r:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
                                 for r, lo, hi in zip(rates_df["rate"], rates_df["ci_low"],
                                                      rates_df["ci_high"])])
    cell = cell[cell["label"].isin(labels)]
    table = cell.pivot(index=groups + ["n"], columns="label", values="text")
    table = table.reindex(columns=[lb for lb in labels if lb in table.columns])
    table.columns.name = None
    return table.reset_index()


def agreement(df: pd.DataFrame) -> pd.DataFrame:
    """Agreement of the generation and log-prob scorers on the same prompts, per scenario,
    variant and mirrored flag: `agree_all` over every prompt, `agree_decisive` over prompts whose
    generated answer picked exactly one option (honest or deceptive), each with a Wilson CI."""
    if "scorer" not in df.columns or not {"generate", "logprob"} <= set(df["scorer"]):
        raise ConfigError("agreement needs both scorers; run evaluate(..., scoring='both')")
    keys = [c for c in ("model", "prompt_id", "scenario", "variant", "mirrored")
            if c in df.columns]
    wide = df.pivot(index=keys, columns="scorer", values="classification").reset_index()
    wide["agree"] = wide["generate"] == wide["logprob"]
    wide["decisive"] = wide["generate"].isin(["honest", "deceptive"])
    groups = [c for c in ("model", "scenario", "variant", "mirrored") if c in wide.columns]
    rows = []
    for key, part in wide.groupby(groups, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for name, sub in (("agree_all", part), ("agree_decisive", part[part["decisive"]])):
            k, n = int(sub["agree"].sum()), len(sub)
            lo, hi = wilson_interval(k, n)
            rows.append({**dict(zip(groups, key)), "metric": name, "count": k, "n": n,
                         "rate": k / n if n else np.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)
