"""Before/after geometry: how a fine-tune moved self and other representations, per site.

`compare_models(model, tuned, pairs)` returns a long DataFrame with, for each (layer, site):
- `latent_soo` of base and tuned (and their difference `delta_latent_soo`),
- `self_other_cosine` (mean cosine between the pooled self and other vectors of a pair),
- `cka_base_tuned`: linear CKA between the base and tuned model's pooled activations over all
  prompts (1 = the tuned site represents the prompts like the base one, up to rotation/scale).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pandas as pd
import torch

from .config import Config
from .data.pairs import PromptPair, soo_pairs, validate_pairs
from .metrics import VECTOR_POOLINGS, collect_pooled
from .models.sites import resolve_sites
from .models.wrap import as_loaded_model
from .tracing import BACKENDS


@dataclasses.dataclass
class CompareConfig(Config):
    """What `compare_models` reads (the `soo-interp compare` flags and YAML)."""

    layers: str | tuple[int, ...] | None = None
    components: tuple[str, ...] = ("attn", "mlp", "resid")
    pooling: str = "last"
    backend: str = "hooks"
    batch_size: int = 16
    seed: int = 0
    chat_template: bool | str = "auto"

    positive = ("batch_size",)
    choices = {"pooling": VECTOR_POOLINGS, "backend": BACKENDS}


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment between two [n, d] activation sets (Kornblith 2019)."""
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    num = (y.T @ x).norm() ** 2
    den = (x.T @ x).norm() * (y.T @ y).norm()
    return float(num / den) if den > 0 else float("nan")


def compare_models(model: Any, tuned: Any, pairs: Sequence[PromptPair] | None = None,
                   config: CompareConfig | None = None, *, progress: bool = True,
                   **overrides: Any) -> pd.DataFrame:
    """Per-(layer, site) geometry of `model` (before) vs `tuned` (after: two models of one
    architecture, each a `LoadedModel` or anything `as_loaded_model` accepts) on the self and
    other prompts of `pairs` (None: the built-in `soo_pairs("test")`); `config` a
    `CompareConfig` (None: the defaults), `overrides` any of its fields.
    Long format: layer, component, model (base | tuned | both), metric, value."""
    cfg = CompareConfig.with_overrides(config, **overrides)
    pooling = cfg.pooling
    base, tuned = as_loaded_model(model), as_loaded_model(tuned)
    pairs = validate_pairs(soo_pairs("test") if pairs is None else pairs)
    site_list = resolve_sites(base.model, cfg.layers, cfg.components)
    texts = [p.self_text for p in pairs] + [p.other_text for p in pairs]
    n = len(pairs)
    acts = {name: collect_pooled(lm, texts, site_list, pooling, cfg.backend, cfg.batch_size,
                                 progress=progress, chat_template=cfg.chat_template)
            for name, lm in (("base", base), ("tuned", tuned))}
    rows = []
    for s in site_list:
        for name in ("base", "tuned"):
            a = acts[name][s]
            rows += [
                {"layer": s.layer, "component": s.component, "model": name, "metric": "latent_soo",
                 "value": float(((a[:n] - a[n:]) ** 2).mean())},
                {"layer": s.layer, "component": s.component, "model": name,
                 "metric": "self_other_cosine",
                 "value": float(torch.nn.functional.cosine_similarity(a[:n], a[n:]).mean())},
            ]
        rows.append({"layer": s.layer, "component": s.component, "model": "both",
                     "metric": "cka_base_tuned",
                     "value": linear_cka(acts["base"][s], acts["tuned"][s])})
    df = pd.DataFrame(rows)
    soo = df[df.metric == "latent_soo"].pivot(index=["layer", "component"], columns="model",
                                              values="value")
    delta = (soo["tuned"] - soo["base"]).rename("value").reset_index()
    delta = delta.assign(model="both", metric="delta_latent_soo")
    df = pd.concat([df, delta[df.columns]], ignore_index=True)
    df.insert(0, "pooling", pooling)
    return df
