"""The plan of a training run: every check on its inputs (done before anything is written or
trained), the resolved target site and LoRA placement, and the data order (a seeded permutation
per epoch, so the optimizer step is the data position)."""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch

from ..data.neutral import neutral_texts as builtin_neutral_texts
from ..data.pairs import PromptPair, validate_pairs
from ..errors import ConfigError
from ..metrics import check_pairs_align
from ..models.loading import LoadedModel
from ..models.sites import Site
from ..models.tokenize import check_lengths, pair_texts, token_ids
from .config import TrainConfig, resolve_lora_targets, target_site


@dataclasses.dataclass
class Plan:
    """What `prepare` resolved: the loss site, LoRA targets and layers, and the data."""

    site: Site
    targets: list[str]
    layers: list[int] | None
    pairs: list[PromptPair]
    neutral: list[str] | None
    eval_pairs: list[PromptPair] | None


def plan_steps(n_pairs: int, config: TrainConfig) -> tuple[int, int]:
    """(optimizer steps per epoch, steps the run will do): ceil over micro-batches, so the last
    partial accumulation group of an epoch is a (smaller) step of its own."""
    micro = math.ceil(n_pairs / config.batch_size)
    per_epoch = math.ceil(micro / config.grad_accum)
    total = per_epoch * config.epochs
    return per_epoch, min(total, config.max_steps or total)


def epoch_groups(n_pairs: int, config: TrainConfig, epoch: int) -> list[list[list[int]]]:
    """Pair indices of an epoch as accumulation groups of micro-batches. The order is a seeded
    permutation per (seed, epoch), so a resumed run sees exactly the same data order."""
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    order = torch.randperm(n_pairs, generator=g).tolist()
    micro = [order[i:i + config.batch_size] for i in range(0, n_pairs, config.batch_size)]
    return [micro[i:i + config.grad_accum] for i in range(0, len(micro), config.grad_accum)]


def prepare(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig,
            neutral_texts: Sequence[str] | None = None,
            eval_pairs: Sequence[PromptPair] | None = None) -> Plan:
    """Every check that can fail on bad input, done before anything is written or trained."""
    from peft import PeftModel

    if isinstance(lm.model, PeftModel):
        raise ConfigError("this model already carries a peft adapter; load the base model "
                          "(or merge the adapter: load_model(..., adapter=DIR)) before training")
    pairs = validate_pairs(pairs)
    if eval_pairs is not None:
        eval_pairs = validate_pairs(eval_pairs, source="eval pairs")
    site = target_site(lm.model, config)
    targets, layers = resolve_lora_targets(lm.model, config)
    check_lengths(lm, pair_texts(pairs + (eval_pairs or [])), config.add_bos,
                  config.max_prompt_tokens, chat_template=config.chat_template)
    if config.pooling == "aligned":
        check_pairs_align(lm.tokenizer, pairs + (eval_pairs or []), config.add_bos,
                          config.chat_template)
    neutral = None
    if config.capability_weight > 0 or (config.sham and config.sham_text == "neutral"):
        given = builtin_neutral_texts("train") if neutral_texts is None else neutral_texts
        neutral = [t for t in given if t.strip()]
        if not neutral:
            raise ConfigError("capability_weight > 0 or sham_text='neutral', but the neutral "
                              "texts are empty; give at least one non-empty text")
        check_lengths(lm, ((f"neutral text #{i}", t) for i, t in enumerate(neutral)),
                      config.add_bos, config.max_prompt_tokens, chat_template=False)
    return Plan(site, targets, layers, pairs, neutral, eval_pairs)


def dose(tokenizer: object, pairs: Sequence[PromptPair], config: TrainConfig) -> dict[str, float]:
    """What a run feeds the model, from its plan (nothing is trained): optimizer `steps`, the
    training `sequences_seen` and real `tokens_seen` (both prompts of each pair; the
    unrelated-text sham's neutral texts are cut to the same counts), model forward calls per
    optimizer step (one batched forward of [self; other] per micro-batch; the capability term
    adds two on neutral text, base and tuned) and `partial_forward` (1: the forward stops after
    the target layer)."""
    per_epoch, steps = plan_steps(len(pairs), config)
    lengths = [len(token_ids(tokenizer, t, config.add_bos, config.chat_template))
               for p in pairs for t in (p.self_text, p.other_text)]
    tokens = sequences = micro = 0
    for step in range(steps):
        epoch, k = divmod(step, per_epoch)
        for mb in epoch_groups(len(pairs), config, epoch)[k]:
            micro += 1
            sequences += 2 * len(mb)
            tokens += sum(lengths[2 * i] + lengths[2 * i + 1] for i in mb)
    forwards = 1 + (2 if config.capability_weight > 0 else 0)
    return {"steps": float(steps), "sequences_seen": float(sequences),
            "tokens_seen": float(tokens), "forward_passes_per_step": forwards * micro / max(steps, 1),
            "partial_forward": float(not config.needs_logits)}
