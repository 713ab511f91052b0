"""nnsight 0.8 backend. Sites are read in forward order (nnsight requires it) inside one trace;
only the reduced values leave the trace."""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import torch

from ..models.sites import Site, arch_of
from ..models.tokenize import Batch
from .hooks import first_tensor
from .shadow import shadow_copy

_WRAPPED: "weakref.WeakKeyDictionary[torch.nn.Module, Any]" = weakref.WeakKeyDictionary()


def nnsight_model(model: torch.nn.Module, tokenizer: Any = None) -> Any:
    """The nnsight wrapper of a loaded HF model, made once per model around a shadow copy that
    shares its weights (nnsight patches each module's `forward`; the user's model keeps its own). A wrapper the user made (see `as_loaded_model`) is used as it is."""
    from ..models.wrap import user_wrapper

    if user_wrapper(model, "nnsight") is not None:
        return user_wrapper(model, "nnsight")
    if model not in _WRAPPED:
        from nnsight import TransformersModel

        _WRAPPED[model] = TransformersModel(shadow_copy(model), tokenizer=tokenizer)
    return _WRAPPED[model]


def _envoy(root: Any, path: str) -> Any:
    node = root
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


def trace_with_nnsight(model: torch.nn.Module, tokenizer: Any, batch: Batch,
                       sites: Sequence[Site], reduce_fn: Callable[..., Any],
                       stop_early: bool = True) -> dict[Site, Any]:
    arch = arch_of(model)
    nn_model = nnsight_model(model, tokenizer)
    nn_model._module.train(model.training)  # the shadow follows the model's train/eval mode
    values: list[Any] = []  # created outside the trace: appended values survive it
    with nn_model.trace(batch.as_kwargs()) as tracer:
        for site in sites:  # already in forward order
            act = first_tensor(_envoy(nn_model, arch.module_path(site)).output)
            values.append(reduce_fn(site, act, batch.attention_mask))
        if stop_early:
            tracer.stop()
    return dict(zip(sites, values))
