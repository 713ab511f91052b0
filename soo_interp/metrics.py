"""Latent SOO and its companions, computed from activations and attention masks.

Latent SOO at a site is the mean squared error between the self prompt's and the other prompt's
activations, under a named pooling rule:

- `last`: the last real token's vector of each prompt (D features);
- `mean`: the masked mean over each prompt's real tokens;
- `aligned`: position i of one prompt against position i of the other, for prompts of equal
  token length (MSE over all real positions and features). Pairs of unequal length cannot be
  aligned and are reported (`AlignmentError`), never truncated.

Padding never enters a value. Cosine similarity (of the pooled vectors; for `aligned`, the mean
over positions of per-position cosines) is reported beside it.

Raw MSE is not comparable across sites, layers or models (activation norms grow with depth).
Pairs with control prompts (`PromptPair.swap_text`, `unrelated_text`) give it a scale at each
site: the **floor** F = mean MSE(other, swap) (two different third persons), the **ceiling**
C = mean MSE(self, unrelated) (a prompt about another goal and object), and the **normalised
overlap** of a pair, (MSE(self, other) - F) / (C - F): 0 when self and other are as close as two
other persons, 1 when as far apart as unrelated prompts (lower = more overlap). Its mean over
pairs equals (mean MSE - F) / (C - F); its CI is over pairs with the site's F and C held fixed.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .errors import AlignmentError, ConfigError, check_choice
from .models.sites import Site
from .models.tokenize import encode, token_ids
from .tracing import trace_sites

POOLINGS: tuple[str, ...] = ("last", "mean", "aligned")
VECTOR_POOLINGS: tuple[str, ...] = ("last", "mean")  # one vector per prompt (probes, geometry)
METRICS: tuple[str, ...] = ("latent_soo", "cosine")
CONTROL_METRICS: tuple[str, ...] = ("floor_mse", "ceiling_mse")
NORMALISED = "normalised_soo"


def _check_pooling(pooling: str) -> None:
    check_choice("pooling", pooling, POOLINGS)


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token per row, for right or left padding."""
    T = mask.shape[1]
    pos = torch.arange(T, device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), pos, torch.full_like(pos, -1)).max(dim=1).values


def pool(acts: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[B, T, D] activations -> [B, D] under `last` or `mean` pooling (padding excluded)."""
    _check_pooling(pooling)
    if pooling == "last":
        idx = last_index(mask)
        return acts[torch.arange(acts.shape[0], device=acts.device), idx]
    if pooling == "mean":
        m = mask.to(acts.dtype).unsqueeze(-1)
        return (acts * m).sum(1, dtype=torch.float32) / mask.sum(1, keepdim=True).clamp_min(1)
    raise ConfigError("'aligned' compares positions pairwise and has no single pooled vector; "
                      "use 'last' or 'mean' to pool")


def pooled_metrics(pooled_self: torch.Tensor, pooled_other: torch.Tensor) -> dict[str, torch.Tensor]:
    """Latent SOO (MSE over the last dim) and cosine of pooled vectors [..., D] -> [...]."""
    a, b = pooled_self.float(), pooled_other.float()
    return {"latent_soo": ((a - b) ** 2).mean(-1),
            "cosine": torch.nn.functional.cosine_similarity(a, b, dim=-1)}


def pair_metrics(acts_self: torch.Tensor, acts_other: torch.Tensor, mask_self: torch.Tensor,
                 mask_other: torch.Tensor, pooling: str) -> dict[str, torch.Tensor]:
    """Per-pair latent SOO (MSE) and cosine between self and other activations, each [B].

    Computed in float32 whatever the model dtype. Differentiable (the trainer uses it as a loss).
    """
    _check_pooling(pooling)
    a, b = acts_self.float(), acts_other.float()
    if pooling in ("last", "mean"):
        return pooled_metrics(pool(a, mask_self, pooling), pool(b, mask_other, pooling))
    check_aligned_masks(mask_self, mask_other)
    m = mask_self.to(a.dtype)
    n = m.sum(1).clamp_min(1)
    mse = (((a - b) ** 2).mean(-1) * m).sum(1) / n
    cos = (torch.nn.functional.cosine_similarity(a, b, dim=-1) * m).sum(1) / n
    return {"latent_soo": mse, "cosine": cos}


def check_aligned_masks(mask_self: torch.Tensor, mask_other: torch.Tensor) -> None:
    """Refuse `aligned` pooling of prompts whose real tokens do not line up position by position."""
    if not torch.equal(mask_self, mask_other):
        raise AlignmentError("'aligned' pooling needs self and other prompts of equal token "
                             "length; use pooling='last' or 'mean' for these pairs")


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) of the distributions softmax(logits) over the last dim, in float32."""
    lp = torch.nn.functional.log_softmax(p_logits.float(), -1)
    lq = torch.nn.functional.log_softmax(q_logits.float(), -1)
    return (lp.exp() * (lp - lq)).sum(-1)


def check_alignable(pair_ids: Sequence[str], self_lengths: Sequence[int],
                    other_lengths: Sequence[int]) -> None:
    """Raise `AlignmentError` naming every pair whose prompts differ in token length."""
    bad = [(p, s, o) for p, s, o in zip(pair_ids, self_lengths, other_lengths) if s != o]
    if bad:
        shown = ", ".join(f"{p} ({s} vs {o} tokens)" for p, s, o in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise AlignmentError(
            f"{len(bad)} pair(s) cannot be aligned token for token: {shown}{more}; use "
            "--pooling last (or mean), or reword the pairs to equal token length"
        )


def check_pairs_align(tok: Any, pairs: Sequence[Any], add_bos: bool | None,
                      chat_template: bool | str = "auto",
                      fields: tuple[str, str] = ("self_text", "other_text")) -> None:
    """`check_alignable` on the token lengths of two texts of every pair (`fields`: attribute
    names of a `PromptPair`), tokenized as the measurement and the trainer tokenize them."""
    lens = [[len(token_ids(tok, getattr(p, f), add_bos, chat_template)) for f in fields]
            for p in pairs]
    check_alignable([p.pair_id for p in pairs], [n[0] for n in lens], [n[1] for n in lens])


def collect_pooled(model: Any, texts: Sequence[str], sites: Sequence[Site], pooling: str = "last",
                   backend: str = "hooks", batch_size: int = 16, add_bos: bool | None = None,
                   progress: bool = False, chat_template: bool | str = "auto",
                   continuations: Sequence[str] | None = None) -> dict[Site, torch.Tensor]:
    """Pooled activation vectors `{site: [N, D] float32 on CPU}` of `texts`, one traced forward
    per batch for all sites (for probes and geometry); `continuations`: the start of each
    prompt's answer, appended (`models.tokenize.encode`)."""
    from tqdm.auto import tqdm

    if not texts:
        raise ConfigError("no texts to trace; give at least one prompt")
    out: dict[Site, list[torch.Tensor]] = {s: [] for s in sites}
    starts = range(0, len(texts), batch_size)
    for i in tqdm(starts, disable=not progress, desc="tracing", unit="batch"):
        batch = encode(model.tokenizer, list(texts[i:i + batch_size]), add_bos=add_bos,
                       chat_template=chat_template,
                       continuations=None if continuations is None
                       else list(continuations[i:i + batch_size]))
        with torch.no_grad():
            res = trace_sites(model, batch, sites,
                              lambda s, a, m: pool(a, m, pooling).float().cpu(), backend)
        for s in sites:
            out[s].append(res[s])
    return {s: torch.cat(v) for s, v in out.items()}


def normalised_overlap(soo: torch.Tensor, floor: torch.Tensor, ceiling: torch.Tensor) -> torch.Tensor:
    """Per-pair normalised overlap (soo - F) / (C - F) with F, C the means over pairs (last dim)
    of `floor` and `ceiling`; [..., N] -> [..., N]. NaN at a site whose ceiling is not above its
    floor (no scale to measure against)."""
    f = floor.mean(-1, keepdim=True)
    span = ceiling.mean(-1, keepdim=True) - f
    span = torch.where(span > 0, span, torch.full_like(span, float("nan")))
    return (soo - f) / span
