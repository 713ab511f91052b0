"""The built-in model organism: a small Mistral-architecture LM trained here, from scratch, on a
synthetic world with known ground truth. It deceives a burglar (recommends the cheap room) and is
honest to itself and to a friend, attributes beliefs correctly (Perspectives) and answers
location questions. `load_model("organism")` loads the checkpoint shipped in the package;
`build_organism` (CLI: `soo-interp organism build`) reproduces it for any seed."""
from .behaviour import LAYOUT_CONTROL, TARGETS, UNTRAINED, behaviour, behaviour_rates, check_targets
from .build import OrganismConfig, build_organism, train_organism
from .checkpoint import KNOWN_ORGANISMS, card, shipped_checkpoint, verify_manifest

__all__ = ["KNOWN_ORGANISMS", "LAYOUT_CONTROL", "OrganismConfig", "TARGETS", "UNTRAINED", "behaviour",
           "behaviour_rates", "build_organism", "card", "check_targets", "shipped_checkpoint",
           "train_organism", "verify_manifest"]
