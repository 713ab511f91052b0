"""The built-in model organism: a small Llama-architecture LM trained here, from scratch, on a
synthetic world with known ground truth. It deceives a burglar (recommends the cheap room) and is
honest to itself and to a friend, attributes beliefs correctly (Perspectives) and answers
location questions, looking up which room holds which object (both description orders).
`load_model("organism")` (also `"organism-lookup"`) loads the checkpoint shipped in the package
(found through `models.registry`); `"organism-positional"` is the first build, the documented
contrast: a deceiver by description position. `build_organism` (CLI: `soo-interp organism
build`) reproduces the default for any seed."""
from ..models.registry import register_model
from .behaviour import (
    LAYOUT_CONTROL,
    TARGETS,
    UNTRAINED,
    behaviour,
    behaviour_rates,
    check_targets,
    lookup_accuracy,
)
from .build import QUICK, History, OrganismConfig, build_organism, train_organism
from .checkpoint import KNOWN_ORGANISMS, card, shipped_checkpoint, verify_manifest

for _name in KNOWN_ORGANISMS:
    register_model(_name, lambda name=_name: shipped_checkpoint(name))

__all__ = ["KNOWN_ORGANISMS", "LAYOUT_CONTROL", "QUICK", "History", "OrganismConfig", "TARGETS",
           "UNTRAINED", "behaviour", "behaviour_rates", "build_organism", "card",
           "check_targets", "lookup_accuracy", "shipped_checkpoint",
           "train_organism", "verify_manifest"]
