"""Bring your own model: wrap what a researcher already holds (no reload, no copy).

Every entry point (measure, train_soo, evaluate, probes, compare, sweep) passes its model
through `as_loaded_model`, which finds the Hugging Face module and tokenizer inside a
`LoadedModel`, a `(model, tokenizer)` pair, a `PreTrainedModel` with `tokenizer=`, an nnsight
`LanguageModel`/`TransformersModel` or a TransformerLens `TransformerBridge`. The wrappers the
user made are remembered, so the nnsight and TransformerLens backends run on them instead of
building their own.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch

from ..errors import ModelLoadError
from .loading import LoadedModel, load_model, load_tokenizer, resolve_model_path
from .sites import arch_of

ACCEPTED = ("a LoadedModel (load_model)", "a name or path", "a transformers PreTrainedModel with "
            "tokenizer=... (or a (model, tokenizer) pair)", "an nnsight LanguageModel or "
            "TransformersModel", "a TransformerLens TransformerBridge")


# HF module -> {"nnsight" | "transformer_lens": the user's wrapper}; the backends reuse these.
_USER_WRAPPERS: "weakref.WeakKeyDictionary[torch.nn.Module, dict[str, Any]]" = weakref.WeakKeyDictionary()


def user_wrapper(model: torch.nn.Module, kind: str) -> Any:
    """The nnsight model or TransformerBridge the user made around `model`, if any."""
    return _USER_WRAPPERS.get(model, {}).get(kind)


def _kind(obj: Any) -> str:
    mod = type(obj).__module__.split(".")[0]
    if mod == "nnsight" and hasattr(obj, "_module") and hasattr(obj, "trace"):
        return "nnsight"
    if mod == "transformer_lens" and "original_model" in getattr(obj, "__dict__", {}):
        return "transformer_lens"
    if isinstance(obj, torch.nn.Module):
        return "torch"
    return type(obj).__name__


def _name(model: torch.nn.Module, name: str | None) -> str:
    cfg = getattr(model, "config", None)
    return name or getattr(cfg, "_name_or_path", None) or getattr(cfg, "model_type", "model")


def as_loaded_model(obj: Any, tokenizer: Any = None, name: str | None = None) -> LoadedModel:
    """A `LoadedModel` sharing `obj`'s weights and tokenizer (never reloaded, never copied).

    Unsupported objects raise `ModelLoadError` listing the accepted kinds."""
    if isinstance(obj, LoadedModel):
        return obj
    if isinstance(obj, str):
        return load_model(obj)
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], torch.nn.Module):
        obj, tokenizer = obj
    kind = _kind(obj)
    if kind in ("nnsight", "transformer_lens"):
        hf = obj._module if kind == "nnsight" else obj.__dict__["original_model"]
        tokenizer = tokenizer or obj.tokenizer
        _USER_WRAPPERS.setdefault(hf, {})[kind] = obj
    elif kind == "torch":
        hf = obj
    else:
        raise ModelLoadError(f"cannot use a {kind} as a model; pass one of: " + "; ".join(ACCEPTED))
    if not hasattr(hf, "config"):
        raise ModelLoadError(f"a bare {type(hf).__name__} has no transformers config; pass one of: "
                             + "; ".join(ACCEPTED))
    if tokenizer is None:
        raise ModelLoadError(f"a {type(obj).__name__} needs its tokenizer; pass tokenizer=... "
                             "(or a (model, tokenizer) pair)")
    arch_of(hf)  # an unsupported family fails here, listing the supported ones
    if tokenizer.pad_token_id is None:
        raise ModelLoadError("the tokenizer has no pad token; set one first, e.g. "
                             "tokenizer.pad_token = tokenizer.eos_token")
    return LoadedModel(model=hf, tokenizer=tokenizer, name=_name(hf, name))


def remote_model(name: str, remote: bool | str = True) -> LoadedModel:
    """A hub model traced through nnsight's remote execution (NDIF; `remote="local"`: nnsight's
    offline stand-in, which loads the weights here): only its config and tokenizer are loaded."""
    import dataclasses

    from nnsight import TransformersModel

    path = resolve_model_path(name)
    obj = TransformersModel(path, task="text-generation", tokenizer=load_tokenizer(path))
    return dataclasses.replace(as_loaded_model(obj, name=name), remote=remote)
