"""Per-pair training losses, all computed from ONE batched forward of [self prompts; other
prompts] (right padded; padding never enters a loss).

- `mse` / `cosine`: latent SOO (or 1 - cosine) at the target site via `metrics.pair_metrics`;
  the forward is stopped right after the target site, so later layers and the LM head never run.
- `kl_logits`: KL(P_other || P_self) between next-token distributions (see `TrainConfig`).
- sham: next-token cross-entropy over the real tokens of both texts of each pair.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..metrics import check_aligned_masks, kl_divergence, pair_metrics, pool
from ..models.sites import Site
from ..models.tokenize import Batch
from ..tracing import trace_sites
from .config import TrainConfig


def kl_logits_loss(logits: torch.Tensor, mask: torch.Tensor, n_pairs: int,
                   pooling: str) -> torch.Tensor:
    """Per-pair KL(P_other || P_self) of the next-token distributions [n_pairs]."""
    ls, lo = logits[:n_pairs], logits[n_pairs:]
    ms, mo = mask[:n_pairs], mask[n_pairs:]
    if pooling == "aligned":
        check_aligned_masks(ms, mo)
        m = ms.float()
        return (kl_divergence(lo, ls) * m).sum(1) / m.sum(1).clamp_min(1)
    return kl_divergence(pool(lo, mo, pooling), pool(ls, ms, pooling))


def lm_loss(logits: torch.Tensor, batch: Batch, n_pairs: int) -> torch.Tensor:
    """Per-pair next-token cross-entropy over the real tokens of both prompts of a pair."""
    ids, mask = batch.input_ids, batch.attention_mask
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
    m = (mask[:, 1:] * mask[:, :-1]).float()
    tok_sum, tok_n = (nll * m).sum(1), m.sum(1)
    return (tok_sum[:n_pairs] + tok_sum[n_pairs:]) / (tok_n[:n_pairs] + tok_n[n_pairs:]).clamp_min(1)


def pair_losses(model: torch.nn.Module, batch: Batch, n_pairs: int, config: TrainConfig,
                site: Site, stop_early: bool = True) -> dict[str, torch.Tensor]:
    """`{"objective": [n_pairs] differentiable loss, "latent_soo": [n_pairs] detached}`, the
    latent SOO at `site` read from the same forward (for the log)."""
    got: dict[str, torch.Tensor] = {}

    def reduce(_site: Site, acts: torch.Tensor, mask: torch.Tensor) -> None:
        other = acts[n_pairs:].detach() if config.stop_grad_other else acts[n_pairs:]
        metrics = pair_metrics(acts[:n_pairs], other, mask[:n_pairs], mask[n_pairs:],
                               config.pooling)
        got["soo"], got["cos"] = metrics["latent_soo"], metrics["cosine"]

    if not config.needs_logits:
        trace_sites(model, batch, [site], reduce, backend="hooks", stop_early=stop_early)
        obj = got["soo"] if config.loss == "mse" else 1.0 - got["cos"]
        return {"objective": obj, "latent_soo": got["soo"].detach()}
    from ..tracing.hooks import site_hooks

    with site_hooks(model, [site], lambda s, a: reduce(s, a, batch.attention_mask)):
        logits = model(**batch.as_kwargs(), use_cache=False).logits
    if config.sham:
        obj = lm_loss(logits, batch, n_pairs)
    else:
        if config.stop_grad_other:
            logits = torch.cat([logits[:n_pairs], logits[n_pairs:].detach()])
        obj = kl_logits_loss(logits, batch.attention_mask, n_pairs, config.pooling)
    return {"objective": obj, "latent_soo": got["soo"].detach()}


def capability_kl(model: Any, batch: Batch) -> torch.Tensor:
    """Per-text KL(P_base || P_adapted) of next-token distributions over real tokens of neutral
    text; the base distribution comes from the same peft model with its adapter disabled."""
    with torch.no_grad(), model.disable_adapter():
        base = model(**batch.as_kwargs(), use_cache=False).logits
    tuned = model(**batch.as_kwargs(), use_cache=False).logits
    m = batch.attention_mask.float()
    return (kl_divergence(base, tuned) * m).sum(1) / m.sum(1).clamp_min(1)


__all__ = ["capability_kl", "kl_logits_loss", "lm_loss", "pair_losses"]
