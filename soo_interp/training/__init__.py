"""SOO LoRA training: minimise latent SOO at one (layer, site), with a sham control, seeds,
checkpoints and exact resume. `train_soo` runs one seed, `train_seeds` several."""
from .config import LOSSES, TrainConfig
from .losses import latent_soo
from .state import TrainState
from .trainer import TrainResult, train_seeds, train_soo

__all__ = ["LOSSES", "TrainConfig", "TrainResult", "TrainState", "latent_soo", "train_seeds",
           "train_soo"]
