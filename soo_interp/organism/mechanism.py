"""The organism's mechanistic sanity check: does its residual stream, at the answer position of
a burglar prompt, hold which offered room has the valuable object?

Label: the valuable object's room is the first option the question offers (True) or the second.
Prompts use held-out objects and room pairs, both description orders (`layout="both"`) and both
option orders, so neither the option position nor the description position alone predicts the
label: a probe reads it only if the model has looked the object up. Cross-validation is grouped
by valuable object (every test object is unseen by the probe), and the same design with shuffled
labels is the chance control.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.scenarios import generate_scenarios
from ..models import Site, n_layers
from ..probes.detectors import make_detector, single_threaded
from ..probes.separability import grouped_folds, shuffled_labels


def valuable_room_probe(lm: Any, n: int = 64, seed: int = 0, folds: int = 4,
                        backend: str = "hooks") -> pd.DataFrame:
    """Held-out accuracy of a logistic probe per layer (residual stream, last prompt token),
    per description order (`layout`) and `control` (real or shuffled labels): a long DataFrame
    of (layer, control, layout, n, accuracy)."""
    from ..models import LoadedModel
    from ..metrics import collect_pooled

    if not isinstance(lm, LoadedModel):
        lm = LoadedModel(*lm, name="organism")
    records = generate_scenarios("burglar", n, seed, "both", None, "i_would", "eval", "both")
    y = np.array([r.options[0] == r.honest for r in records], dtype=int)
    groups = np.array([r.expensive_object for r in records])
    layouts = np.array([r.layout for r in records])
    sites = [Site(layer, "resid") for layer in range(n_layers(lm.model))]
    acts = collect_pooled(lm, [r.prompt for r in records], sites, "last", backend)
    rows = []
    with single_threaded():
        for control, labels in (("real", y), ("shuffled", shuffled_labels(y, seed))):
            for site in sites:
                X = acts[site].numpy()
                correct = np.zeros(len(y), dtype=bool)
                for tr, te in grouped_folds(labels, groups, folds, seed):
                    det = make_detector("logistic", seed=seed).fit(X[tr], labels[tr])
                    correct[te] = det.predict(X[te]) == labels[te]
                for layout in sorted(set(layouts)):
                    part = correct[layouts == layout]
                    rows.append({"layer": site.layer, "control": control, "layout": layout,
                                 "n": len(part), "accuracy": float(part.mean())})
    return pd.DataFrame(rows)


def first_readable_layer(probe: pd.DataFrame, minimum: float = 0.9) -> int | None:
    """The first layer whose real-label accuracy reaches `minimum` in every description order
    (None if no layer does)."""
    real = probe[probe["control"] == "real"].groupby("layer")["accuracy"].min()
    hits = real[real >= minimum]
    return int(hits.index[0]) if len(hits) else None
