"""Tokenize once, in one place: every backend gets the same ids and attention mask.

BOS is explicit (default: prepend when the tokenizer has one), padding is on the right for
tracing (positions of real tokens never shift) and on the left only for generation.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator, Sequence

import torch

# Special tokens of the tokenizers built here (tiny test models and the organism), in id order.
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<unk>", "<s>", "</s>")


@dataclasses.dataclass
class Batch:
    """Padded token ids of several texts. `lengths[i]` real tokens; on the right-padded layout
    they sit at positions 0..lengths[i]-1."""

    input_ids: torch.Tensor       # [B, T] long
    attention_mask: torch.Tensor  # [B, T] long, 1 = real token
    padding_side: str = "right"

    @property
    def lengths(self) -> torch.Tensor:
        return self.attention_mask.sum(dim=1)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.padding_side)

    def as_kwargs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def token_ids(tokenizer: Any, text: str, add_bos: bool | None = None,
              chat_template: bool = False) -> list[int]:
    """Ids of one text: optional chat template, then optional BOS, no other special tokens."""
    if chat_template:
        if not getattr(tokenizer, "chat_template", None):
            from ..errors import ConfigError

            raise ConfigError("this tokenizer has no chat template; drop --chat-template")
        text = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                             tokenize=False, add_generation_prompt=True)
        add_bos = False if add_bos is None else add_bos  # templates carry their own BOS
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if add_bos is None:
        add_bos = tokenizer.bos_token_id is not None
    if add_bos and tokenizer.bos_token_id is not None and (not ids or ids[0] != tokenizer.bos_token_id):
        ids = [tokenizer.bos_token_id] + ids
    return ids


def pad_ids(seqs: Sequence[Sequence[int]], pad_id: int, padding_side: str = "right") -> Batch:
    if padding_side not in ("left", "right"):
        raise ValueError("padding_side must be 'left' or 'right'")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if padding_side == "right" else slice(T - len(s), T)
        ids[i, sl] = torch.tensor(list(s), dtype=torch.long)
        mask[i, sl] = 1
    return Batch(ids, mask, padding_side)


def encode(tokenizer: Any, texts: Sequence[str], add_bos: bool | None = None,
           padding_side: str = "right", chat_template: bool = False) -> Batch:
    """Tokenize `texts` into one padded batch."""
    seqs = [token_ids(tokenizer, t, add_bos, chat_template) for t in texts]
    empty = [i for i, s in enumerate(seqs) if not s]
    if empty:
        from ..errors import PairsError

        raise PairsError(f"text #{empty[0]} tokenizes to nothing; give non-empty prompts")
    return pad_ids(seqs, tokenizer.pad_token_id, padding_side)


def model_context(model: Any) -> int | None:
    """How many positions the model holds (None when its config does not say)."""
    cfg = getattr(model, "config", None)
    return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)


def check_lengths(lm: Any, named_texts: Iterable[tuple[str, str]], add_bos: bool | None = None,
                  limit: int | None = None, reserve: int = 0, chat_template: bool = False,
                  error: type | None = None) -> None:
    """Refuse, before any forward, a text that with `reserve` more tokens (generation) is longer
    than the model's context or than `limit`: a megabyte prompt would otherwise ask for tens of
    GB. The error (`PairsError` unless `error`) names the text and says by how much."""
    from ..errors import PairsError

    model, tok = lm
    caps = [(c, why) for c, why in ((model_context(model), "the model's context"),
                                    (limit, "max_prompt_tokens")) if c is not None]
    if not caps:
        return
    cap, why = min(caps)
    for name, text in named_texts:
        n = len(token_ids(tok, text, add_bos, chat_template))
        if n + reserve <= cap:
            continue
        if reserve:
            msg = (f"{name} is {n:,} tokens; with {reserve:,} new tokens it needs {n + reserve:,} "
                   f"positions, {n + reserve - cap:,} more than {why} ({cap:,}); lower "
                   "--max-new-tokens or use a model with a longer context")
        else:
            msg = (f"{name} is {n:,} tokens, {n - cap:,} over the limit of {cap:,} ({why}); "
                   "shorten or drop it, or raise --max-prompt-tokens")
        raise (error or PairsError)(msg)


def pair_texts(pairs: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(name, text) of both prompts of each pair (and its control prompts), for
    `check_lengths`."""
    for p in pairs:
        yield f"pair {p.pair_id!r} (self prompt)", p.self_text
        yield f"pair {p.pair_id!r} (other prompt)", p.other_text
        if getattr(p, "has_controls", False):
            yield f"pair {p.pair_id!r} (swap control)", p.swap_text
            yield f"pair {p.pair_id!r} (unrelated control)", p.unrelated_text
