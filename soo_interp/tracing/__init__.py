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

from ..errors import ConfigError
from ..models.sites import Site, check_sites
from ..models.tokenize import Batch

ReduceFn = Callable[[Site, torch.Tensor, torch.Tensor], Any]
BACKENDS: tuple[str, ...] = ("hooks", "nnsight", "transformer_lens")


def trace_sites(model: Any, batch: Batch, sites: Sequence[Site], reduce_fn: ReduceFn,
                backend: str = "hooks", stop_early: bool = True) -> dict[Site, Any]:
    """Run one forward of `batch` and return `{site: reduce_fn(site, activation, mask)}`.

    `model` is a `LoadedModel` or a Hugging Face causal LM. Gradients flow when the caller has
    them enabled (the hooks backend is what the trainer uses); wrap in `torch.no_grad()` to
    measure. `stop_early` ends the forward after the last site (no logits are computed).
    """
    hf = getattr(model, "model", model) if not isinstance(model, torch.nn.Module) else model
    tokenizer = getattr(model, "tokenizer", None)
    sites = sorted(set(sites))
    if not sites:
        raise ConfigError("no sites to trace; give at least one layer and component")
    check_sites(hf, sites)
    batch = batch.to(next(hf.parameters()).device)
    if backend == "hooks":
        from .hooks import trace_with_hooks
        return trace_with_hooks(hf, batch, sites, reduce_fn, stop_early)
    if backend == "nnsight":
        from .nnsight_backend import trace_with_nnsight
        return trace_with_nnsight(hf, tokenizer, batch, sites, reduce_fn, stop_early)
    if backend == "transformer_lens":
        from .tl_backend import trace_with_transformer_lens
        return trace_with_transformer_lens(hf, tokenizer, batch, sites, reduce_fn, stop_early)
    raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def first_tensor(output: Any) -> torch.Tensor:
    """A module's output as one tensor (decoder blocks of some families return tuples)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def collect_pooled(model: Any, texts: Sequence[str], sites: Sequence[Site], pooling: str = "last",
                   backend: str = "hooks", batch_size: int = 16, add_bos: bool | None = None,
                   progress: bool = False) -> dict[Site, torch.Tensor]:
    """Pooled activation vectors `{site: [N, D] float32 on CPU}` of `texts`, one traced forward
    per batch for all sites (for probes and geometry)."""
    from tqdm.auto import tqdm

    from ..metrics import pool
    from ..models.tokenize import encode

    if not texts:
        raise ConfigError("no texts to trace; give at least one prompt")
    out: dict[Site, list[torch.Tensor]] = {s: [] for s in sites}
    starts = range(0, len(texts), batch_size)
    for i in tqdm(starts, disable=not progress, desc="tracing", unit="batch"):
        batch = encode(model.tokenizer, list(texts[i:i + batch_size]), add_bos=add_bos)
        with torch.no_grad():
            res = trace_sites(model, batch, sites,
                              lambda s, a, m: pool(a, m, pooling).float().cpu(), backend)
        for s in sites:
            out[s].append(res[s])
    return {s: torch.cat(v) for s, v in out.items()}


__all__ = ["BACKENDS", "ReduceFn", "collect_pooled", "first_tensor", "trace_sites"]
