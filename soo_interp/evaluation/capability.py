"""Offline capability checks: perplexity on neutral held-out text, and how far fine-tuning moved
the next-token distributions (KL of base vs tuned). lm-eval-harness tasks when it is installed.

SOO fine-tuning that lowers deception by breaking the model would show here: perplexity up and a
large KL on text that has nothing to do with the scenarios.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd
import torch

from ..data.neutral import neutral_texts
from ..errors import ConfigError
from ..metrics import kl_divergence
from ..models.tokenize import pad_ids, token_ids
from .scoring import _chunks, _device, continuation_logprobs


def _texts(texts: Sequence[str] | None) -> list[str]:
    texts = neutral_texts("heldout") if texts is None else list(texts)
    if not texts:
        raise ConfigError("no texts given; pass sentences or None for the built-in neutral set")
    return texts


def _sequences(tok: Any, texts: Sequence[str]) -> list[list[int]]:
    seqs = [token_ids(tok, t, chat_template=False) for t in texts]
    short = [t for t, s in zip(texts, seqs) if len(s) < 2]
    if short:
        raise ConfigError(f"text {short[0]!r} has fewer than 2 tokens, so no next token can be "
                          "predicted; give longer texts")
    return seqs


def perplexity(lm: Any, texts: Sequence[str] | None = None, batch_size: int = 16) -> float:
    """Token-weighted perplexity of `texts` (default: the built-in held-out neutral sentences):
    exp of the mean negative log-likelihood of every token after the first."""
    model, tok = lm
    seqs = _sequences(tok, _texts(texts))
    scores = continuation_logprobs(model, seqs, [1] * len(seqs), tok.pad_token_id, batch_size)
    total, count = sum(s for s, _ in scores), sum(k for _, k in scores)
    return math.exp(-total / count)


@torch.no_grad()
def next_token_kl(base_lm: Any, tuned_lm: Any, texts: Sequence[str] | None = None,
                  batch_size: int = 16) -> float:
    """Mean KL(base || tuned) of the next-token distributions over every real token position of
    `texts` (padding masked out). The two models must share a tokenizer."""
    base, tok = base_lm
    tuned, tuned_tok = tuned_lm
    texts = _texts(texts)
    seqs = _sequences(tok, texts)
    if seqs != _sequences(tuned_tok, texts):
        raise ConfigError("base and tuned tokenizers split the texts differently; compare a "
                          "tuned model with the base model it was trained from")
    total, count = 0.0, 0
    for chunk in _chunks(len(seqs), batch_size):
        batch = pad_ids([seqs[i] for i in chunk], tok.pad_token_id, "right")
        base_logits = base(**batch.to(_device(base)).as_kwargs()).logits
        tuned_logits = tuned(**batch.to(_device(tuned)).as_kwargs()).logits
        if base_logits.shape != tuned_logits.shape:
            raise ConfigError(f"base and tuned vocabularies differ ({base_logits.shape[-1]} vs "
                              f"{tuned_logits.shape[-1]}); compare models with the same vocabulary")
        kl = kl_divergence(base_logits, tuned_logits.to(base_logits.device))  # [B, T]
        mask = batch.attention_mask.to(kl.device).bool()
        total += float(kl[mask].sum())
        count += int(mask.sum())
    return total / count


def capability(base_lm: Any, tuned_lm: Any | None = None, texts: Sequence[str] | None = None,
               batch_size: int = 16) -> pd.DataFrame:
    """Long table (model, metric, value): perplexity of each model on `texts` and, with a tuned
    model, `next_token_kl` of tuned against base."""
    texts = _texts(texts)
    rows = [{"model": "base", "metric": "perplexity",
             "value": perplexity(base_lm, texts, batch_size)}]
    if tuned_lm is not None:
        rows.append({"model": "tuned", "metric": "perplexity",
                     "value": perplexity(tuned_lm, texts, batch_size)})
        rows.append({"model": "tuned", "metric": "next_token_kl",
                     "value": next_token_kl(base_lm, tuned_lm, texts, batch_size)})
    return pd.DataFrame(rows).assign(n_texts=len(texts))


def lm_eval_tasks(model: str, tasks: Sequence[str] = ("arc_easy",), adapter: str | None = None,
                  limit: int | None = None, batch_size: int = 8,
                  device: str | None = None) -> pd.DataFrame:
    """Run lm-eval-harness tasks (needs `pip install lm-eval[hf]` and network access for the task
    data) on a hub id or local folder, optionally with a peft adapter. Long table: task, metric,
    value. Raises `ConfigError` naming the install step when lm-eval is missing."""
    try:
        from lm_eval import simple_evaluate
    except ImportError as e:
        raise ConfigError("lm-eval-harness is not installed; `pip install lm-eval[hf]` (its "
                          "tasks download data, so it needs network access), or use the "
                          "offline perplexity()/next_token_kl() checks") from e
    model_args = f"pretrained={model}" + (f",peft={adapter}" if adapter else "")
    out = simple_evaluate(model="hf", model_args=model_args, tasks=list(tasks), limit=limit,
                          batch_size=batch_size, device=device)
    rows = [{"task": task, "metric": metric, "value": value}
            for task, metrics in out["results"].items() for metric, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return pd.DataFrame(rows)
