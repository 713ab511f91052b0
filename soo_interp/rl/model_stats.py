"""Statistics at the level of trained models, the unit of replication (evaluation episodes only
measure the noise of fixed networks): leave-one-model-out classification by one value, exact
permutation tests over which models carry the deceptive label, and an exact sign-flip test of
paired per-model changes (fine-tuning), and whether a tuned policy stays within its baseline's
interval."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from ..errors import ConfigError

MAX_EXACT = 200_000  # labelings / sign patterns enumerated exactly; above, a seeded random sample
N_RANDOM = 20_000


def _labelings(n: int, k: int, seed: int) -> tuple[np.ndarray, bool]:
    """(L, exact): rows of L are boolean labelings with k of n models deceptive; every labeling
    when there are at most MAX_EXACT, else N_RANDOM random ones (the observed one is added by
    the caller's +1)."""
    if math.comb(n, k) <= MAX_EXACT:
        rows = np.zeros((math.comb(n, k), n), bool)
        for r, idx in enumerate(itertools.combinations(range(n), k)):
            rows[r, list(idx)] = True
        return rows, True
    rng = np.random.default_rng(seed)
    rows = np.zeros((N_RANDOM, n), bool)
    for r in range(N_RANDOM):
        rows[r, rng.choice(n, k, replace=False)] = True
    return rows, False


def loo_accuracy(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Leave-one-model-out accuracy of a nearest-class-mean rule, for each row of `labels`
    (P x n booleans, True = deceptive; a 1-D array is one labeling): each model is classified by
    which class mean of the *other* models its value is nearer to, so the threshold and its
    direction are learned without it. A tie counts half. Needs >= 2 models per class."""
    v = np.asarray(values, float)
    L = np.atleast_2d(np.asarray(labels, bool))
    n_dec = L.sum(1, keepdims=True)
    if n_dec.min() < 2 or (L.shape[1] - n_dec).min() < 2:
        raise ConfigError("leave-one-model-out needs at least 2 models of each class")
    s_dec, s_hon = L @ v, (~L) @ v
    s_dec, s_hon = s_dec[:, None] - L * v, s_hon[:, None] - (~L) * v     # without model i
    c_dec, c_hon = n_dec - L, (L.shape[1] - n_dec) - (~L)
    d_dec, d_hon = np.abs(v - s_dec / c_dec), np.abs(v - s_hon / c_hon)
    correct = np.where(d_dec == d_hon, 0.5, (d_dec < d_hon) == L)
    return correct.mean(1)


def mean_diff(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of the deceptive models minus mean of the honest ones, per labeling row."""
    v = np.asarray(values, float)
    L = np.atleast_2d(np.asarray(labels, bool))
    return (L @ v) / L.sum(1) - ((~L) @ v) / (~L).sum(1)


def class_test(values, is_deceptive, seed: int = 0) -> dict:
    """Model-level comparison of deceptive and honest models on one value: the mean difference
    with its one-sided permutation p (deceptive higher), and the leave-one-model-out accuracy
    with its permutation p (a classifier that learns its direction: chance is 0.5)."""
    v = np.asarray(values, float)
    lab = np.asarray(is_deceptive, bool)
    if np.isnan(v).any():
        raise ConfigError("a model has no value (NaN); evaluate it on more episodes")
    L, exact = _labelings(len(v), int(lab.sum()), seed)
    diff, acc = mean_diff(v, lab)[0], loo_accuracy(v, lab)[0]
    d_all, a_all = mean_diff(v, L), loo_accuracy(v, L)
    extra = 0 if exact else 1  # a random sample counts the observed labeling once more
    return {"n_deceptive": int(lab.sum()), "n_honest": int((~lab).sum()),
            "mean_deceptive": float(v[lab].mean()), "mean_honest": float(v[~lab].mean()),
            "diff": float(diff),
            "p_diff": float(((d_all >= diff - 1e-12).sum() + extra) / (len(L) + extra)),
            "loo_accuracy": float(acc),
            "p_loo": float(((a_all >= acc - 1e-12).sum() + extra) / (len(L) + extra)),
            "labelings": len(L), "exact": exact}


def class_tests(models: pd.DataFrame, metrics: list[str], by: list[str] | None = None,
                seed: int = 0) -> pd.DataFrame:
    """`class_test` of each metric (a column of `models`: one row per trained model with a
    `baseline` column), within each group of `by`; one row per (group, metric)."""
    rows = []
    groups = models.groupby(by) if by else [((), models)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        for m in metrics:
            rows.append({**dict(zip(by or [], key)), "metric": m,
                         **class_test(g[m], g["baseline"] == "deceptive", seed)})
    return pd.DataFrame(rows)


def signflip_test(diffs, seed: int = 0) -> dict:
    """Exact sign-flip (paired permutation) test of per-model changes: mean change, one-sided p
    for a positive mean, one-sided p for a negative mean, two-sided p."""
    d = np.asarray(diffs, float)
    if len(d) < 1 or np.isnan(d).any():
        raise ConfigError("the sign-flip test needs at least one model and no NaN changes")
    if 2 ** len(d) <= MAX_EXACT:
        signs = np.array(list(itertools.product((1, -1), repeat=len(d))), float)
        extra = 0
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), (N_RANDOM, len(d)))
        extra = 1
    obs, perm = d.mean(), (signs * d).mean(1)
    tol = 1e-12

    def p(hits: np.ndarray) -> float:
        return float((hits.sum() + extra) / (len(perm) + extra))

    return {"n_models": len(d), "mean_change": float(obs), "p_increase": p(perm >= obs - tol),
            "p_decrease": p(perm <= obs + tol), "p_two_sided": p(np.abs(perm) >= abs(obs) - tol),
            "exact": extra == 0}


def within_base_interval(ci: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per metric, model and tuned condition: where the tuned policy's mean lies against the
    baseline's interval over evaluation seeds (`below`, `within`, `above`). `ci` is the
    `summarize` frame of a fine-tuning result (metric, model, condition, mean, ci_low, ci_high)."""
    need = {"metric", "model", "condition", "mean", "ci_low", "ci_high"}
    if not need <= set(ci.columns) or "base" not in set(ci["condition"]):
        raise ConfigError("within_base_interval needs the per-condition intervals of a "
                          "fine-tuning result with a `base` condition (summarize of finetune.csv)")
    ci = ci[ci["metric"].isin(metrics)]
    base = ci[ci["condition"] == "base"].set_index(["metric", "model"])
    out = ci[ci["condition"] != "base"][["metric", "model", "condition", "mean"]].copy()
    keys = pd.MultiIndex.from_frame(out[["metric", "model"]])
    out["base_mean"] = base["mean"].reindex(keys).to_numpy()
    out["base_ci_low"] = base["ci_low"].reindex(keys).to_numpy()
    out["base_ci_high"] = base["ci_high"].reindex(keys).to_numpy()
    out["position"] = np.select([out["mean"] < out["base_ci_low"],
                                 out["mean"] > out["base_ci_high"]], ["below", "above"], "within")
    return out.reset_index(drop=True)
