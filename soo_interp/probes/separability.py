"""Cross-validated separability of two labelled classes at every (layer, site).

Folds are grouped (scikit-learn `StratifiedGroupKFold`): every example of one group, a template
or a pair, sits in the same fold, so a probe cannot score well by memorising an item or a
phrasing it saw in training. Each (layer, site, probe) is also fit on labels shuffled with the
run's seed (`control='shuffled'`), the chance level the real score should be read against.

Metrics per test fold: accuracy and balanced accuracy (at the probe's own threshold), AUROC, and
recall at 1% false-positive rate (threshold = the 99th percentile of the negatives' scores).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ProbeError
from ..stats import summarize
from .detectors import as_numpy, make_detector, single_threaded

METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "auroc", "recall_at_1pct_fpr")
CONTROLS: tuple[str, ...] = ("real", "shuffled")


def auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN when a class is missing."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, scores))


def recall_at_fpr(scores: np.ndarray, y: np.ndarray, fpr: float = 0.01) -> float:
    """Share of positives scoring above the (1 - fpr) quantile of the negatives' scores."""
    neg, pos = scores[y == 0], scores[y == 1]
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    thr = np.quantile(neg, 1.0 - fpr)
    return float((pos > thr).mean())


def classification_metrics(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """The four separability metrics of one set of scores."""
    from sklearn.metrics import balanced_accuracy_score

    y = np.asarray(y)
    pred = (scores > threshold).astype(int)
    bal = balanced_accuracy_score(y, pred) if len(np.unique(y)) == 2 else float("nan")
    return {"accuracy": float((pred == y).mean()), "balanced_accuracy": float(bal),
            "auroc": auroc(scores, y), "recall_at_1pct_fpr": recall_at_fpr(scores, y)}


def check_foldable(y: np.ndarray, groups: np.ndarray, folds: int, what: str = "suite") -> None:
    """Raise `ProbeError` when grouped `folds`-fold CV cannot run on these labels and groups."""
    if folds < 2:
        raise ProbeError(f"--folds {folds} is too few; cross-validation needs at least 2 folds")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ProbeError(f"{what} has one class only (label {classes.tolist()}); a probe needs "
                         "examples of both labels")
    n_groups = len(np.unique(groups))
    if n_groups < folds:
        raise ProbeError(f"{what} has {n_groups} groups but {folds}-fold grouped cross-"
                         f"validation needs at least {folds}; lower --folds to {max(2, n_groups)} "
                         "or add templates/pairs")
    for c in classes:
        g = len(np.unique(groups[y == c]))
        if g < folds:
            raise ProbeError(f"{what}: label {int(c)} appears in {g} groups, too few for {folds} "
                             f"folds (needs at least {folds}); lower --folds or add examples")


def grouped_folds(y: np.ndarray, groups: np.ndarray, folds: int,
                  seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) for each fold; no group is ever on both sides."""
    from sklearn.model_selection import StratifiedGroupKFold

    check_foldable(y, groups, folds)
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for tr, te in cv.split(np.zeros(len(y)), y, groups):
        yield tr, te


def shuffled_labels(y: np.ndarray, seed: int) -> np.ndarray:
    """Labels randomly permuted (seeded) across all rows: the chance-level control, run
    through the same grouped design as the real labels."""
    return np.random.default_rng(seed).permutation(y)


def cross_validate(X: Any, y: np.ndarray, groups: np.ndarray, probe: str = "logistic",
                   folds: int = 5, seed: int = 0,
                   probe_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Grouped CV of one probe on one activation matrix: rows of (fold, metric, value)."""
    X = as_numpy(X)
    y, groups = np.asarray(y), np.asarray(groups)
    rows = []
    for fold, (tr, te) in enumerate(grouped_folds(y, groups, folds, seed)):
        det = make_detector(probe, seed=seed, **dict(probe_options or {})).fit(X[tr], y[tr])
        for metric, value in classification_metrics(det.score(X[te]), y[te], det.threshold).items():
            rows.append({"fold": fold, "metric": metric, "value": value})
    return rows


def separability(acts: Mapping[Any, Any], y: Sequence[int], groups: Sequence[Any],
                 probes: Sequence[str] = ("logistic", "mean_diff"), folds: int = 5,
                 seed: int = 0, controls: Sequence[str] = CONTROLS,
                 **labels: Any) -> pd.DataFrame:
    """Grouped-CV metrics of every probe kind at every site of `acts` ({Site: [N, D]}).

    Returns a long DataFrame: (`labels`..., layer, site, probe, control, fold, metric, value);
    `labels` (e.g. model=..., suite=...) become constant leading columns.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    check_foldable(y, groups, folds, labels.get("suite", "suite"))
    y_ctrl = shuffled_labels(y, seed)
    rows = []
    with single_threaded():
        for site, X in acts.items():
            for probe in probes:
                for control in controls:
                    yy = y if control == "real" else y_ctrl
                    for r in cross_validate(X, yy, groups, probe, folds, seed):
                        rows.append({**labels, "layer": site.layer, "component": site.component,
                                     "probe": probe, "control": control, **r})
    return pd.DataFrame(rows)


def transfer(acts: Mapping[Any, Any], y: Sequence[int], groups: Sequence[Any],
             origins: Sequence[str], probes: Sequence[str] = ("logistic",), seed: int = 0,
             **labels: Any) -> pd.DataFrame:
    """Out-of-distribution read-out: for each origin of a mixed suite (e.g. the contrast file and
    the generated scenarios), fit on all of its examples and score every group of the others
    (e.g. each scenario/variant). Long DataFrame: (`labels`..., layer, site, probe, train,
    test, metric, value); `test` is a group name or 'all' for every held-out example."""
    y, groups, origins = np.asarray(y), np.asarray(groups), np.asarray(origins)
    rows = []
    with single_threaded():
        for site, X in acts.items():
            X = as_numpy(X)
            for probe in probes:
                for origin in np.unique(origins):
                    tr = origins == origin
                    if len(np.unique(y[tr])) < 2 or tr.all():
                        continue
                    det = make_detector(probe, seed=seed).fit(X[tr], y[tr])
                    scores = det.score(X)
                    tests = [("all", ~tr)] + [(g, ~tr & (groups == g))
                                              for g in np.unique(groups[~tr])]
                    for test, m in tests:
                        for metric, value in classification_metrics(scores[m], y[m],
                                                                    det.threshold).items():
                            rows.append({**labels, "layer": site.layer, "component": site.component,
                                         "probe": probe, "train": str(origin), "test": str(test),
                                         "metric": metric, "value": value})
    return pd.DataFrame(rows)


def summarize_separability(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-based CI over folds per (suite, layer, site, probe, control, metric); every
    metric lies in [0, 1], so the CI is clipped to it."""
    by = [c for c in ("model", "suite", "layer", "component", "probe", "control", "metric")
          if c in df.columns]
    out = summarize(df.dropna(subset=["value"]), by=by, confidence=confidence)
    out[["ci_low", "ci_high"]] = out[["ci_low", "ci_high"]].clip(0.0, 1.0)
    return out
