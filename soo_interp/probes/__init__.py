"""Linear probes: self/other separability per (layer, site), deception directions, and
self-deception signatures (see the README section "Probing self/other separability").

Modules: `detectors` (Detector and its kinds), `separability` (grouped cross-validation and
metrics), `suites` (labelled prompt sets in `probes/`), `activations` (pooled activation sets
with a safetensors cache), `signatures` (the three self-deception signatures), `run` (the
`soo-interp probe` pipeline).
"""
from .detectors import (DETECTORS, Detector, LatDetector, LogisticDetector, MeanDiffDetector,
                        make_detector)
from .separability import (METRICS, auroc, classification_metrics, cross_validate, grouped_folds,
                           recall_at_fpr, separability, summarize_separability)

__all__ = ["DETECTORS", "Detector", "LatDetector", "LogisticDetector", "METRICS",
           "MeanDiffDetector", "auroc", "classification_metrics", "cross_validate",
           "grouped_folds", "make_detector", "recall_at_fpr", "separability",
           "summarize_separability"]
