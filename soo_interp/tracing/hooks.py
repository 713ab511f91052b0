"""Plain torch forward hooks: the reference backend (and the one training differentiates through).
Hooks are always removed, also when the forward raises."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import torch

from ..models.sites import Site, site_module
from ..models.tokenize import Batch


class StopForward(Exception):
    """Raised by the last site's hook to end a forward once nothing later is needed (every
    backend that stops a forward by raising uses this one)."""


def first_tensor(output: Any) -> torch.Tensor:
    """A module's output as one tensor (decoder blocks of some families return tuples)."""
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def site_hooks(model: torch.nn.Module, sites: Sequence[Site],
               fn: Callable[[Site, torch.Tensor], None]) -> Iterator[None]:
    """Call `fn(site, output)` from a forward hook on each site's module; always unhook."""
    handles = []
    try:
        for site in sites:
            handles.append(site_module(model, site).register_forward_hook(
                lambda _m, _i, out, site=site: fn(site, first_tensor(out))))
        yield
    finally:
        for h in handles:
            h.remove()


def trace_with_hooks(model: torch.nn.Module, batch: Batch, sites: Sequence[Site],
                     reduce_fn: Callable[..., Any], stop_early: bool = True) -> dict[Site, Any]:
    results: dict[Site, Any] = {}
    last = max(sites)

    def on_site(site: Site, act: torch.Tensor) -> None:
        results[site] = reduce_fn(site, act, batch.pool_mask.to(act.device))
        if stop_early and site == last:
            raise StopForward

    with site_hooks(model, sites, on_site):
        try:
            model(**batch.as_kwargs(), use_cache=False)
        except StopForward:
            pass
    return results
