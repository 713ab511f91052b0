"""soo-interp: measure and train Self-Other Overlap (SOO) in language models.

Entry points, one calling convention (`entry(model, data, config, *, out=..., progress=True,
**overrides)`, see docs/guide/conventions.md): `load_model`, `measure`, `evaluate`,
`train_soo`, `fit_probes`, `compare_models`, `sweep`, `search`, `verdict`, with their configs
(`MeasureConfig`, `EvalConfig`, `TrainConfig`, `ProbeConfig`, `CompareConfig`, `SweepConfig`,
`SearchConfig`, `VerdictConfig`). The modules `metrics`, `tracing`, `stats` and `plots` are
attributes too. The experiment engine and the plots are imported on first use.
"""
import importlib
from typing import Any

from . import organism  # noqa: F401  (registers the built-in organism with load_model)
from .data.pairs import PromptPair, load_pairs, soo_pairs
from .evaluation import evaluate
from .evaluation.run import EvalConfig
from .measure import MeasureConfig, measure
from .models import Site, as_loaded_model, load_model
from .stats import summarize
from .training import TrainConfig, TrainResult, train_soo

__version__ = "0.1.0"

# attribute -> the module that defines it, imported on first use (`import soo_interp` stays
# as fast as its eager part)
_LAZY = {"fit_probes": "probes.run", "ProbeConfig": "probes.run",
         "compare_models": "geometry", "CompareConfig": "geometry",
         "sweep": "experiments.layer_sweep", "SweepConfig": "experiments.grid",
         "search": "experiments.search", "SearchConfig": "experiments.search",
         "verdict": "experiments.verdict", "VerdictConfig": "experiments.verdict"}
_MODULES = ("metrics", "tracing", "stats", "plots")

__all__ = ["CompareConfig", "EvalConfig", "MeasureConfig", "ProbeConfig", "PromptPair",
           "SearchConfig", "Site", "SweepConfig", "TrainConfig", "TrainResult", "VerdictConfig",
           "as_loaded_model", "compare_models", "evaluate", "fit_probes", "load_model",
           "load_pairs", "measure", "search", "soo_pairs", "summarize", "sweep", "train_soo",
           "verdict", *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'soo_interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
