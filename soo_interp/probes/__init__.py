"""Linear probes: self/other separability per (layer, site), deception directions, and
self-deception signatures (see the guide, docs/guide/probing.md).

Modules: `detectors` (Detector and its kinds), `separability` (grouped cross-validation and
metrics), `suites` (labelled prompt sets, shipped in `builtin_suites/`), `activations` (pooled activation sets
with a safetensors cache), `signatures` (the three self-deception signatures), `run` (the
`soo-interp probe` pipeline), `rooms` (the room read-out: which room holds the valuable object).
"""
from .activations import ActivationSet, collect_activations
from .detectors import (
                        Detector,
                        LatDetector,
                        LogisticDetector,
                        MeanDiffDetector,
                        detector_kinds,
                        make_detector,
)
from .run import ProbeConfig, ProbeResults, compare_runs, fit_probes, probe_to_folder
from .separability import (
                        METRICS,
                        auroc,
                        classification_metrics,
                        cross_validate,
                        grouped_folds,
                        recall_at_fpr,
                        separability,
                        summarize_separability,
                        transfer,
)
from .signatures import SIGNATURES
from .suites import Suite, available_suites, load_suite

__all__ = ["ActivationSet", "Detector", "LatDetector", "LogisticDetector", "METRICS",
           "MeanDiffDetector", "ProbeConfig", "ProbeResults", "SIGNATURES", "Suite", "auroc",
           "available_suites", "classification_metrics", "collect_activations", "compare_runs",
           "cross_validate", "detector_kinds", "fit_probes", "grouped_folds", "load_suite", "make_detector",
           "probe_to_folder", "recall_at_fpr", "separability", "summarize_separability",
           "transfer"]
