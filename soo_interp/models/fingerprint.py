"""What identifies a model's weights: one fingerprint used by checkpoints (a resume must see the
same base model) and by activation caches (a cache is reused only for the same weights)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .sites import base_model


def model_fingerprint(model: Any, with_config: bool = True) -> str:
    """A cheap hash of a model: its config (minus its path) and, per parameter, name, shape,
    dtype and two partial sums. Identical across loads of one checkpoint in one dtype; different
    for a fine-tuned, perturbed or re-typed copy. `model`: a module or a `LoadedModel`.
    `with_config=False`: the weights alone (the same weights loaded from a GGUF file or from a
    `save_pretrained` copy, whose configs differ in bookkeeping fields, hash alike)."""
    if not isinstance(model, torch.nn.Module):  # a LoadedModel (HF modules have .model too)
        model = model.model
    h = hashlib.sha256()
    config = getattr(base_model(model), "config", None)
    if config is not None and with_config:
        cfg = {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    offloaded = _offloaded(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p = offloaded.get(name, p) if p.device.type == "meta" else p
            if p.device.type == "meta":  # nothing to read: name, shape and dtype only
                h.update(f"{name}:{tuple(p.shape)}:{p.dtype}:meta;".encode())
                continue
            flat = p.detach().reshape(-1)
            head, tail = flat[:4096].double().sum().item(), flat[-4096:].double().sum().item()
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype}:{head:.10e}:{tail:.10e};".encode())
    return h.hexdigest()[:32]


def _offloaded(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights accelerate offloaded (to the CPU or disk) under a device map, by parameter name:
    the model itself holds only meta tensors for them."""
    out = {}
    for mod_name, module in model.named_modules():
        hook = getattr(module, "_hf_hook", None)
        weights = getattr(hook, "weights_map", None) if getattr(hook, "offload", False) else None
        if weights is not None:
            for pname, _ in module.named_parameters(recurse=False):
                out[f"{mod_name}.{pname}" if mod_name else pname] = weights[pname]
    return out


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json", ".model")
_FULL_HASH_BYTES = 2 << 30  # folders up to 2 GiB are hashed whole, larger ones sampled
_SAMPLES, _CHUNK = 256, 1 << 20


# records soo-interp writes beside a built or shipped model (its build's run.json, the card's
# report.json and seeds.json, the checksum manifest): editing them changes no number
RECORD_FILES = frozenset({"run.json", "report.json", "seeds.json", "manifest.json"})


def folder_fingerprint(folder: str | Path) -> str:
    """A hash of a model or adapter folder's files (weights, configs, tokenizer), not of the
    records in `RECORD_FILES` (a card edit leaves the model, and runs resuming on it, alone):
    every byte of a folder up to 2 GiB; above that each file's size and 256 evenly spaced 1 MiB
    samples (an edit of every weight always shows; a single flipped byte of a huge file may
    not)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES
                   and p.name not in RECORD_FILES
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    whole = sum(p.stat().st_size for p in files) <= _FULL_HASH_BYTES
    h = hashlib.sha256()
    for p in files:
        size = p.stat().st_size
        h.update(f"{p.relative_to(folder).as_posix()}:{size};".encode())
        with p.open("rb") as f:
            if whole:
                for block in iter(lambda: f.read(_CHUNK), b""):
                    h.update(block)
                continue
            for i in range(_SAMPLES):
                f.seek(i * max(size - _CHUNK, 0) // (_SAMPLES - 1))
                h.update(f.read(_CHUNK))
    return h.hexdigest()[:32]
