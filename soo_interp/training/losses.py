"""Per-pair training losses, all computed from ONE batched forward of [self prompts; other
prompts] (right padded; padding never enters a loss).

- `mse` / `cosine`: latent SOO (or 1 - cosine) at the target site via `site_metrics`, which
  stops the forward right after the target site, so later layers and the LM head never run.
  `latent_soo` (the value training and the sweep log) goes through the same `site_metrics`.
- `kl_logits`: KL(P_other || P_self) between next-token distributions (see `TrainConfig`).
- sham: next-token cross-entropy over the real tokens of both texts of each pair (or, for the
  unrelated-text sham, of the neutral texts `neutral_batch` cut to the same lengths).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..data.pairs import PromptPair
from ..metrics import check_aligned_masks, kl_divergence, pair_metrics, pool
from ..models.sites import Site
from ..models.tokenize import Batch, encode, pad_ids, token_ids
from ..tracing import trace_sites
from ..tracing.hooks import site_hooks
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
    """Per-pair next-token cross-entropy over the pooled tokens (every real token, or a chat
    prompt's content and generation prompt) of both prompts of a pair."""
    ids, mask = batch.input_ids, batch.pool_mask
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
    m = (mask[:, 1:] * mask[:, :-1]).float()
    tok_sum, tok_n = (nll * m).sum(1), m.sum(1)
    return (tok_sum[:n_pairs] + tok_sum[n_pairs:]) / (tok_n[:n_pairs] + tok_n[n_pairs:]).clamp_min(1)


def site_metrics(model: torch.nn.Module, batch: Batch, n_pairs: int, site: Site, pooling: str,
                 stop_grad_other: bool = False, stop_early: bool = True,
                 stop_grad_self: bool = False) -> dict[str, torch.Tensor]:
    """Per-pair latent SOO and cosine [n_pairs] at `site` from one forward of `batch` = [self
    prompts; other prompts]: the metric the loss minimises and the trainer logs, computed the
    same way for both (`metrics.pair_metrics`). Differentiable unless called under no_grad."""
    got: dict[str, torch.Tensor] = {}

    def reduce(_site: Site, acts: torch.Tensor, mask: torch.Tensor) -> None:
        own = acts[:n_pairs].detach() if stop_grad_self else acts[:n_pairs]
        other = acts[n_pairs:].detach() if stop_grad_other else acts[n_pairs:]
        got.update(pair_metrics(own, other, mask[:n_pairs], mask[n_pairs:], pooling))

    trace_sites(model, batch, [site], reduce, backend="hooks", stop_early=stop_early)
    return got


@torch.no_grad()
def latent_soo(model: torch.nn.Module, tokenizer: Any, pairs: Sequence[PromptPair], site: Site,
               pooling: str, add_bos: bool | None = None, batch_size: int = 16,
               chat_template: bool | str = "auto") -> float:
    """Mean latent SOO over `pairs` at `site`, in eval mode (no dropout): what training logs
    and the sweep reports, through the same `site_metrics` the loss uses."""
    was_training = model.training
    model.eval()
    try:
        values = [site_metrics(model, encode(tokenizer, [p.self_text for p in chunk]
                                             + [p.other_text for p in chunk], add_bos,
                                             chat_template=chat_template),
                               len(chunk), site, pooling)["latent_soo"]
                  for chunk in (pairs[i:i + batch_size] for i in range(0, len(pairs), batch_size))]
    finally:
        model.train(was_training)
    return float(torch.cat(values).double().mean())


def pair_losses(model: torch.nn.Module, batch: Batch, n_pairs: int, config: TrainConfig,
                site: Site, stop_early: bool = True) -> dict[str, torch.Tensor]:
    """`{"objective": [n_pairs] differentiable loss, "latent_soo": [n_pairs] detached}`, the
    latent SOO at `site` read from the same forward (for the log)."""
    if not config.needs_logits:
        got = site_metrics(model, batch, n_pairs, site, config.pooling, config.stop_grad_other,
                           stop_early, config.stop_grad_self)
        obj = got["latent_soo"] if config.loss == "mse" else 1.0 - got["cosine"]
        return {"objective": obj, "latent_soo": got["latent_soo"].detach()}
    got: dict[str, torch.Tensor] = {}

    def on_site(_site: Site, acts: torch.Tensor) -> None:
        mask = batch.pool_mask
        got.update(pair_metrics(acts[:n_pairs].detach(), acts[n_pairs:].detach(),
                                mask[:n_pairs], mask[n_pairs:], config.pooling))

    with site_hooks(model, [site], on_site):
        logits = model(**batch.as_kwargs(), use_cache=False).logits
    if config.sham:
        obj = lm_loss(logits, batch, n_pairs)
    else:
        if config.stop_grad_other:
            logits = torch.cat([logits[:n_pairs], logits[n_pairs:].detach()])
        elif config.stop_grad_self:
            logits = torch.cat([logits[:n_pairs].detach(), logits[n_pairs:]])
        obj = kl_logits_loss(logits, batch.pool_mask, n_pairs, config.pooling)
    return {"objective": obj, "latent_soo": got["latent_soo"]}


def neutral_batch(tokenizer: Any, like: Batch, texts: Sequence[str], start: int,
                  add_bos: bool | None = None) -> Batch:
    """Neutral text with the token counts of `like`'s rows (the unrelated-text sham sees as many
    sequences and tokens as the pair texts it replaces): row i takes the texts from
    `start + i` on, joined until long enough, cut to `like`'s row length."""
    rows = []
    for i, n in enumerate(like.lengths.tolist()):
        ids: list[int] = []
        k = start + i
        while len(ids) < n:
            ids += token_ids(tokenizer, texts[k % len(texts)], add_bos if not ids else False,
                             chat_template=False)
            k += 1
        rows.append(ids[:n])
    return pad_ids(rows, tokenizer.pad_token_id, like.padding_side)


def capability_kl(model: Any, batch: Batch) -> torch.Tensor:
    """Per-text KL(P_base || P_adapted) of next-token distributions over real tokens of neutral
    text; the base distribution comes from the same peft model with its adapter disabled."""
    with torch.no_grad(), model.disable_adapter():
        base = model(**batch.as_kwargs(), use_cache=False).logits
    tuned = model(**batch.as_kwargs(), use_cache=False).logits
    m = batch.attention_mask.float()
    return (kl_divergence(base, tuned) * m).sum(1) / m.sum(1).clamp_min(1)


__all__ = ["capability_kl", "kl_logits_loss", "latent_soo", "lm_loss", "neutral_batch", "pair_losses",
           "site_metrics"]
