"""TransformerLens 4 backend through `TransformerBridge`, wrapping the already-loaded HF model
(same weights, adapters merged) and fed our own ids and attention mask (never `to_tokens`)."""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import torch

from ..errors import UnsupportedArchitectureError
from ..models.placement import input_device
from ..models.sites import Site, tl_hook_name
from ..models.tokenize import Batch
from ..models.wrap import user_wrapper
from .hooks import StopForward
from .shadow import shadow_copy

_BRIDGES: "weakref.WeakKeyDictionary[torch.nn.Module, Any]" = weakref.WeakKeyDictionary()


def tl_bridge(model: torch.nn.Module, tokenizer: Any = None) -> Any:
    """The TransformerBridge of a loaded HF model, built once, around a shadow copy that shares
    its weights: TransformerLens swaps modules and switches attention to eager on the copy
    (numerically equal to SDPA within float tolerance), never on the user's model. A bridge the
    user made (see `as_loaded_model`) is used as it is."""
    if user_wrapper(model, "transformer_lens") is not None:
        return user_wrapper(model, "transformer_lens")
    if model not in _BRIDGES:
        from transformer_lens.model_bridge import TransformerBridge

        name = getattr(model.config, "_name_or_path", None) or model.config.model_type
        try:
            _BRIDGES[model] = TransformerBridge.boot_transformers(
                name, hf_model=shadow_copy(model), tokenizer=tokenizer,
                device=str(input_device(model)),
                dtype=next(model.parameters()).dtype)
        except Exception as e:  # noqa: BLE001 - TL raises many types for unknown models
            raise UnsupportedArchitectureError(
                f"TransformerLens cannot wrap this {model.config.model_type} model ({e}); use "
                "--backend hooks or nnsight") from e
    return _BRIDGES[model]


def trace_with_transformer_lens(model: torch.nn.Module, tokenizer: Any, batch: Batch,
                                sites: Sequence[Site], reduce_fn: Callable[..., Any],
                                stop_early: bool = True) -> dict[Site, Any]:
    bridge = tl_bridge(model, tokenizer)
    bridge.train(model.training)  # the shadow follows the model's train/eval mode
    results: dict[Site, Any] = {}
    last = max(sites)

    def hook_for(site: Site) -> Callable[..., None]:
        def hook(act: torch.Tensor, hook: Any) -> None:
            results[site] = reduce_fn(site, act, batch.pool_mask.to(act.device))
            if stop_early and site == last:
                raise StopForward

        return hook

    try:
        bridge.run_with_hooks(batch.input_ids, attention_mask=batch.attention_mask,
                              fwd_hooks=[(tl_hook_name(s), hook_for(s)) for s in sites])
    except StopForward:
        pass
    return results
