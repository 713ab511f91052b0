"""Linear detectors: a direction in activation space and a score along it.

Every detector has `fit(X, y)`, `score(X)` (higher = label 1), `predict(X)`, a unit `direction`
in the input space, and `save(path)` / `Detector.load(path)` as `path.safetensors` (tensors) +
`path.json` (kind, hidden size, labels, metadata). No pickle: a saved probe is plain data.

- `LogisticDetector`: features standardised, then L2-regularised logistic regression
  (scikit-learn). The strongest linear read-out; its direction is the weight vector mapped back
  to the input space (`coef / scale`).
- `MeanDiffDetector`: the difference of the class means (no fitting beyond two averages); the
  threshold is the midpoint of the projected means. Robust with few examples.
- `LatDetector`: LAT/RepE style: the first principal component of differences between randomly
  paired examples, signed so label 1 scores higher. Unsupervised apart from the sign.
"""
from __future__ import annotations

import abc
import inspect
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ProbeError, check_choice
from ..runs import atomic_path, atomic_write_json

ArrayLike = Any  # numpy array or torch tensor of shape [N, D]


def single_threaded():
    """Context limiting BLAS to one thread: probes are many small fits, which run several
    times faster without thread start-up and oversubscription (enter once around a loop)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def as_numpy(X: ArrayLike) -> np.ndarray:
    """[N, D] float64 numpy array from a tensor or array (probes fit in float64 on CPU)."""
    if hasattr(X, "detach"):
        X = X.detach().float().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ProbeError(f"activations must be a 2-D [examples, hidden] array, got shape {X.shape}")
    return X


def as_labels(y: ArrayLike, n: int) -> np.ndarray:
    y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y).astype(np.int64)
    if y.shape != (n,):
        raise ProbeError(f"labels have shape {y.shape}; expected ({n},), one per activation row")
    if set(np.unique(y).tolist()) != {0, 1}:
        raise ProbeError("a probe needs both classes (labels 0 and 1) among its training rows; "
                         f"got labels {sorted(set(y.tolist()))}")
    return y


class Detector(abc.ABC):
    """Base class: subclasses set `kind`, fill `self.params` (name -> 1-D/0-D float arrays) in
    `_fit`, and compute raw scores in `_score`."""

    kind: ClassVar[str] = "base"
    registry: ClassVar[dict[str, type["Detector"]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Detector.registry[cls.kind] = cls

    def __init__(self, seed: int = 0, **options: Any) -> None:
        self.seed = seed
        self.options = options
        self.params: dict[str, np.ndarray] = {}
        self.meta: dict[str, Any] = {}

    # -- interface ------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return bool(self.params)

    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.params["mean"].shape[0])

    @property
    def direction(self) -> np.ndarray:
        """Unit vector in input space along which the score grows."""
        self._check_fitted()
        d = self._direction()
        n = np.linalg.norm(d)
        return d / n if n > 0 else d

    def fit(self, X: ArrayLike, y: ArrayLike) -> "Detector":
        X = as_numpy(X)
        y = as_labels(y, X.shape[0])
        self.params = {"mean": X.mean(0)}
        self._fit(X, y)
        return self

    def score(self, X: ArrayLike) -> np.ndarray:
        """One real score per row; higher means label 1. Threshold: `self.threshold`."""
        self._check_fitted()
        X = as_numpy(X)
        if X.shape[1] != self.dim:
            raise ProbeError(
                f"this probe was fit on hidden size {self.dim}, but the activations have "
                f"{X.shape[1]} features (another model?); refit the probe on this model")
        return self._score(X)

    @property
    def threshold(self) -> float:
        return float(self.params.get("threshold", np.zeros(())))

    def predict(self, X: ArrayLike) -> np.ndarray:
        return (self.score(X) > self.threshold).astype(np.int64)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write `path.safetensors` and `path.json` atomically; returns both paths."""
        import torch
        from safetensors.torch import save_file

        self._check_fitted()
        path = Path(path)
        st, js = path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")
        tensors = {k: torch.tensor(np.asarray(v, dtype=np.float64))
                   for k, v in self.params.items()}
        with atomic_path(st) as tmp:
            save_file(tensors, str(tmp))
        atomic_write_json(js, {"kind": self.kind, "dim": self.dim, "seed": self.seed,
                               "options": self.options, "meta": self.meta,
                               "format": "soo-interp-probe/1"})
        return st, js

    @staticmethod
    def load(path: str | Path) -> "Detector":
        """Read a probe written by `save` (give the path without suffix, or either file)."""
        from safetensors.torch import load_file

        path = Path(path)
        if path.suffix in (".json", ".safetensors"):
            path = path.with_suffix("")
        st, js = path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")
        for f in (st, js):
            if not f.exists():
                raise ProbeError(f"probe file {f} does not exist; a saved probe is a .json and "
                                 "a .safetensors file with the same stem")
        try:
            info = json.loads(js.read_text())
            cls = Detector.registry[info["kind"]]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ProbeError(f"{js} is not a soo-interp probe description ({e}); re-save it "
                             f"with Detector.save; known kinds: {sorted(Detector.registry)}") from e
        det = cls(seed=info.get("seed", 0), **info.get("options", {}))
        det.params = {k: v.numpy() for k, v in load_file(str(st)).items()}
        det.meta = info.get("meta", {})
        if det.dim != info.get("dim"):
            raise ProbeError(f"{st} holds hidden size {det.dim} but {js} says {info.get('dim')}; "
                             "the two files do not belong together")
        return det

    # -- subclass hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Set `self.params` (at least `mean` and `w`) from training data."""

    def _score(self, X: np.ndarray) -> np.ndarray:
        return (X - self.params["mean"]) @ self.params["w"] + self.params.get("b", 0.0)

    def _direction(self) -> np.ndarray:
        return self.params["w"]

    def _check_fitted(self) -> None:
        if not self.params:
            raise ProbeError(f"{type(self).__name__} is not fitted; call fit(X, y) first")

    def _midpoint_threshold(self, X: np.ndarray, y: np.ndarray) -> None:
        s = self._score(X)
        self.params["threshold"] = np.asarray((s[y == 1].mean() + s[y == 0].mean()) / 2)


class LogisticDetector(Detector):
    """Standardised features + L2 logistic regression; `C` is the inverse regularisation."""

    kind = "logistic"

    def __init__(self, seed: int = 0, C: float = 1.0, max_iter: int = 2000) -> None:
        super().__init__(seed, C=C, max_iter=max_iter)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        scale = X.std(0)
        scale[scale < 1e-12] = 1.0  # constant features carry no signal; avoid dividing by 0
        Z = (X - self.params["mean"]) / scale
        clf = LogisticRegression(C=self.options["C"], max_iter=self.options["max_iter"],
                                 random_state=self.seed)
        clf.fit(Z, y)
        self.params.update(scale=scale, coef=clf.coef_[0], b=np.asarray(clf.intercept_[0]))

    def _score(self, X: np.ndarray) -> np.ndarray:
        p = self.params
        return ((X - p["mean"]) / p["scale"]) @ p["coef"] + p["b"]

    def _direction(self) -> np.ndarray:
        return self.params["coef"] / self.params["scale"]


class MeanDiffDetector(Detector):
    """Direction = mean(label 1) - mean(label 0); threshold at the projected midpoint."""

    kind = "mean_diff"

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.params["w"] = X[y == 1].mean(0) - X[y == 0].mean(0)
        self._midpoint_threshold(X, y)


class LatDetector(Detector):
    """First principal component of differences between randomly paired rows (LAT / RepE),
    signed so that label 1 projects higher; threshold at the projected midpoint."""

    kind = "lat"

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(X.shape[0])
        half = X.shape[0] // 2
        diffs = X[perm[:half]] - X[perm[half:2 * half]]
        diffs = diffs - diffs.mean(0)
        _, _, vt = np.linalg.svd(diffs, full_matrices=False)
        w = vt[0]
        if (X[y == 1] @ w).mean() < (X[y == 0] @ w).mean():
            w = -w
        self.params["w"] = w
        self._midpoint_threshold(X, y)


def detector_kinds() -> tuple[str, ...]:
    """The kinds `make_detector` builds: every concrete `Detector` subclass, in definition order
    (built in: logistic, mean_diff, lat; a user's subclass with its own `kind` joins them)."""
    return tuple(k for k, cls in Detector.registry.items() if not inspect.isabstract(cls))


def make_detector(kind: str, seed: int = 0, **options: Any) -> Detector:
    """A fresh detector of `kind` (one of `detector_kinds()`)."""
    check_choice("probe kind", kind, detector_kinds(), ProbeError)
    return Detector.registry[kind](seed=seed, **options)
