"""Tracing backends: read Site activations during a forward and reduce them on the spot.

One interface, three implementations (plain torch hooks, nnsight, TransformerLens 4). Every
backend gets the same token ids and attention mask (soo-interp tokenizes once), calls
`reduce_fn(site, activation[B, T, D], attention_mask[B, T])` for each requested site while the
forward runs, and keeps only what `reduce_fn` returns: activations of every layer are never
cached. The forward stops after the last requested site when nothing later is needed.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ..errors import ConfigError, check_choice
from ..models.placement import input_device
from ..models.sites import Site, check_sites
from ..models.tokenize import Batch
from .hooks import StopForward, first_tensor, trace_with_hooks
from .nnsight_backend import check_remote, trace_with_nnsight
from .tl_backend import trace_with_transformer_lens

ReduceFn = Callable[[Site, torch.Tensor, torch.Tensor], Any]
BACKENDS: tuple[str, ...] = ("hooks", "nnsight", "transformer_lens")


def remote_backend(remote: Any, backend: str) -> str:
    """The backend a run really uses: `backend`, or nnsight when `remote` is set (remote traces
    are nnsight's; the default hooks backend becomes nnsight, TransformerLens is refused)."""
    if remote is False or remote is None:
        return backend
    if remote is not True and remote != "local":
        raise ConfigError(f"remote must be True (NDIF) or 'local' (nnsight's offline stand-in), "
                          f"not {remote!r}")
    if backend not in ("hooks", "nnsight"):
        raise ConfigError(f"remote traces run through nnsight, not {backend!r}; drop the backend "
                          "setting (or use backend='nnsight') with remote")
    return "nnsight"


def trace_sites(model: Any, batch: Batch, sites: Sequence[Site], reduce_fn: ReduceFn,
                backend: str = "hooks", stop_early: bool = True) -> dict[Site, Any]:
    """Run one forward of `batch` and return `{site: reduce_fn(site, activation, mask)}`.

    `model` is a `LoadedModel` or a Hugging Face causal LM. Gradients flow when the caller has
    them enabled (the hooks backend is what the trainer uses); wrap in `torch.no_grad()` to
    measure. `stop_early` ends the forward after the last site (no logits are computed). A
    model with `remote` set runs through nnsight's remote execution.
    """
    hf = getattr(model, "model", model) if not isinstance(model, torch.nn.Module) else model
    tokenizer = getattr(model, "tokenizer", None)
    remote = getattr(model, "remote", False)
    if remote:  # remote execution is nnsight's: the same reductions, shipped with the request

        backend = remote_backend(remote, backend)
        check_remote(remote)
    check_choice("backend", backend, BACKENDS)
    sites = sorted(set(sites))
    if not sites:
        raise ConfigError("no sites to trace; give at least one layer and component")
    check_sites(hf, sites)
    batch = batch.to(input_device(hf))
    if backend == "hooks":
        return trace_with_hooks(hf, batch, sites, reduce_fn, stop_early)
    if backend == "nnsight":
        return trace_with_nnsight(hf, tokenizer, batch, sites, reduce_fn, stop_early, remote)
    return trace_with_transformer_lens(hf, tokenizer, batch, sites, reduce_fn, stop_early)


__all__ = ["BACKENDS", "remote_backend", "ReduceFn", "StopForward", "first_tensor", "trace_sites"]
