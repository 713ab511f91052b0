"""SOO LoRA training: minimise latent SOO at one (layer, site), with a sham control, seeds,
checkpoints and exact resume. `train_soo` runs one seed, `train_seeds` several."""
from .config import LOSSES, TrainConfig
from .trainer import TrainResult, latent_soo, train_seeds, train_soo

__all__ = ["LOSSES", "TrainConfig", "TrainResult", "latent_soo", "train_seeds", "train_soo"]
