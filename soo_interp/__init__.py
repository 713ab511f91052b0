"""soo-interp: measure and train Self-Other Overlap (SOO) in language models.

Main entry points: `load_model`, `measure`, `train_soo`, `evaluate`, and the modules `metrics`,
`tracing`, `stats`, `plots`.
"""
from . import organism  # noqa: F401  (registers the built-in organism with load_model)
from .data.pairs import PromptPair, load_pairs, soo_pairs
from .evaluation import evaluate
from .measure import MeasureConfig, measure
from .models import Site, as_loaded_model, load_model
from .stats import summarize
from .training import TrainConfig, TrainResult, train_soo

__version__ = "0.1.0"
__all__ = ["MeasureConfig", "PromptPair", "Site", "TrainConfig", "TrainResult", "as_loaded_model",
           "evaluate",
           "load_model", "load_pairs", "measure", "soo_pairs", "summarize", "train_soo"]
