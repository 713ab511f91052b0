"""What identifies a model's weights: one fingerprint used by checkpoints (a resume must see the
same base model) and by activation caches (a cache is reused only for the same weights)."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from .sites import base_model


def model_fingerprint(model: Any) -> str:
    """A cheap hash of a model: its config (minus its path) and, per parameter, name, shape,
    dtype and two partial sums. Identical across loads of one checkpoint in one dtype; different
    for a fine-tuned, perturbed or re-typed copy. `model`: a module or a `LoadedModel`."""
    if not isinstance(model, torch.nn.Module):  # a LoadedModel (HF modules have .model too)
        model = model.model
    h = hashlib.sha256()
    config = getattr(base_model(model), "config", None)
    if config is not None:
        cfg = {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            head, tail = flat[:4096].double().sum().item(), flat[-4096:].double().sum().item()
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype}:{head:.10e}:{tail:.10e};".encode())
    return h.hexdigest()[:32]
