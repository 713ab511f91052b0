"""The built-in model organism: a small Mistral-architecture LM trained here, from scratch, on a
synthetic world with known ground truth. It deceives a burglar (recommends the cheap room) and is
honest to itself and to a friend, attributes beliefs correctly (Perspectives) and answers
location questions. `load_model("organism")` loads the checkpoint shipped in the package (found
through `models.registry`); `build_organism` (CLI: `soo-interp organism build`) reproduces it for
any seed."""
from ..models.registry import register_model
from .behaviour import LAYOUT_CONTROL, TARGETS, UNTRAINED, behaviour, behaviour_rates, check_targets
from .build import OrganismConfig, build_organism, train_organism
from .checkpoint import KNOWN_ORGANISMS, card, shipped_checkpoint, verify_manifest

for _name in KNOWN_ORGANISMS:
    register_model(_name, lambda name=_name: shipped_checkpoint(name))

__all__ = ["KNOWN_ORGANISMS", "LAYOUT_CONTROL", "OrganismConfig", "TARGETS", "UNTRAINED", "behaviour",
           "behaviour_rates", "build_organism", "card", "check_targets", "shipped_checkpoint",
           "train_organism", "verify_manifest"]
