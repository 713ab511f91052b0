"""nnsight 0.8 backend. Sites are read in forward order (nnsight requires it) inside one trace;
only the reduced values leave the trace."""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable, Iterator, Sequence

import torch

from ..errors import ConfigError
from ..models.sites import Site, arch_of
from ..models.tokenize import Batch
from ..models.wrap import user_wrapper
from .hooks import first_tensor
from .shadow import shadow_copy

_WRAPPED: "weakref.WeakKeyDictionary[torch.nn.Module, Any]" = weakref.WeakKeyDictionary()


def nnsight_model(model: torch.nn.Module, tokenizer: Any = None) -> Any:
    """The nnsight wrapper of a loaded HF model, made once per model around a shadow copy that
    shares its weights (nnsight patches each module's `forward`; the user's model keeps its own).
    A wrapper the user made (see `as_loaded_model`) is used as it is."""
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


@contextlib.contextmanager
def _by_value() -> Iterator[None]:
    """Ship soo_interp's code by value with a remote trace (the server does not have it), for
    this trace only: left registered, cloudpickle would copy our classes into every other
    engine's workers too (submitit, Ray), where they would no longer be ours."""
    import nnsight
    from cloudpickle.cloudpickle import _PICKLE_BY_VALUE_MODULES

    added = "soo_interp" not in _PICKLE_BY_VALUE_MODULES
    nnsight.register("soo_interp")
    try:
        yield
    finally:
        if added:
            _PICKLE_BY_VALUE_MODULES.discard("soo_interp")


def check_remote(remote: bool | str) -> None:
    """Remote execution on NDIF needs an API key; say how to set one (the local stand-in does not)."""
    if remote is True:
        from nnsight import CONFIG

        if not CONFIG.API.APIKEY:
            raise ConfigError("remote execution needs an NDIF API key: get one at "
                              "https://login.ndif.us, then export NDIF_API_KEY=<key> (or run "
                              "nnsight.CONFIG.set_default_api_key('<key>') once)")


def trace_with_nnsight(model: torch.nn.Module, tokenizer: Any, batch: Batch,
                       sites: Sequence[Site], reduce_fn: Callable[..., Any],
                       stop_early: bool = True, remote: bool | str = False) -> dict[Site, Any]:
    """One trace; with `remote`, nnsight serialises it (our reductions go by value, since the
    server has no soo_interp) and runs it on NDIF, or offline with remote="local"."""
    import nnsight

    arch = arch_of(model)
    nn_model = nnsight_model(model, tokenizer)
    nn_model._module.train(model.training)  # the shadow follows the model's train/eval mode
    mask = batch.pool_mask
    shipped = _by_value() if remote else contextlib.nullcontext()
    with shipped, nn_model.trace(batch.as_kwargs(), remote=remote) as tracer:
        values = []
        for site in sites:  # already in forward order
            act = first_tensor(_envoy(nn_model, arch.module_path(site)).output)
            values.append(reduce_fn(site, act, mask.to(act.device)))
        values = nnsight.save(values)  # only saved values leave a (remote) trace
        if stop_early:
            tracer.stop()
    return dict(zip(sites, values))
