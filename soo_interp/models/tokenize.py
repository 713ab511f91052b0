"""Tokenize once, in one place: every backend gets the same ids and attention mask.

Prompts are chat-formatted when the tokenizer has a chat template (`chat_template="auto"`, the
default; "on"/"off" force it), as one user turn followed by the generation prompt. BOS is
explicit (default: prepend when the tokenizer has one, unless it is the chat template's turn
marker, as ChatML's `<|im_start|>` is). Padding is on the right for tracing (positions of real
tokens never shift) and on the left only for generation. Plain text that is not a prompt (neutral
text for perplexity, training corpora) is tokenized with `chat_template=False`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator, Sequence, Union

import torch

from ..errors import ConfigError, PairsError, check_choice

# Special tokens of the tokenizers built here (tiny test models and the organism), in id order.
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<unk>", "<s>", "</s>")


CHAT_TEMPLATES: tuple[str, ...] = ("auto", "on", "off")
ChatTemplate = Union[bool, str, None]


@dataclasses.dataclass
class Batch:
    """Padded token ids of several texts. `lengths[i]` real tokens; on the right-padded layout
    they sit at positions 0..lengths[i]-1. `prompt_mask` (chat-formatted prompts only) marks the
    positions that pooling reads: the user's content and the template's tokens after it, not
    the template's fixed prefix (system prompt, role header), which is the same in every prompt."""

    input_ids: torch.Tensor       # [B, T] long
    attention_mask: torch.Tensor  # [B, T] long, 1 = real token
    padding_side: str = "right"
    prompt_mask: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.attention_mask.sum(dim=1)

    @property
    def pool_mask(self) -> torch.Tensor:
        """Positions metrics and losses read: `prompt_mask` when set, else every real token."""
        return self.attention_mask if self.prompt_mask is None else self.prompt_mask

    def to(self, device: torch.device | str) -> "Batch":
        pm = None if self.prompt_mask is None else self.prompt_mask.to(device)
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.padding_side,
                     pm)

    def as_kwargs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def use_chat_template(tokenizer: Any, chat_template: ChatTemplate = "auto") -> bool:
    """Resolve `chat_template` ("auto"/None: on when the tokenizer has a template; True/"on";
    False/"off") to a bool; "on" for a tokenizer without a template is an error."""
    if not isinstance(chat_template, bool) and chat_template is not None:
        check_choice("chat_template", chat_template, CHAT_TEMPLATES, hint=" (or True/False)")
    has = bool(getattr(tokenizer, "chat_template", None))
    if chat_template is None or chat_template == "auto":
        return has
    if chat_template is True or chat_template == "on":
        if not has:
            raise ConfigError("this tokenizer has no chat template; use --chat-template off "
                              "(or auto), or load a model whose tokenizer has one")
        return True
    return False  # False or "off"


def _template_prefix(tokenizer: Any, text: str) -> tuple[str, str]:
    """The chat-formatted prompt split at the start of the user's `text` (the fixed prefix:
    system prompt and role header; the rest: the text and the generation prompt)."""
    formatted = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                              tokenize=False, add_generation_prompt=True)
    at = formatted.rfind(text) if text else -1
    if at < 0:
        raise ConfigError("the tokenizer's chat template does not keep the prompt text verbatim; "
                          "use --chat-template off")
    return formatted[:at], formatted[at:]


def default_bos(tokenizer: Any) -> bool:
    """Whether plain text gets a BOS by default: when the tokenizer has one that is not its chat
    template's turn marker (SmolLM2's BOS is ChatML's `<|im_start|>`: not a document start)."""
    bos = getattr(tokenizer, "bos_token", None)
    if tokenizer.bos_token_id is None or not bos:
        return False
    return bos not in (getattr(tokenizer, "chat_template", None) or "")


def prompt_ids(tokenizer: Any, text: str, add_bos: bool | None = None,
               chat_template: ChatTemplate = "auto") -> tuple[list[int], int]:
    """Ids of one prompt and the index of its first pooled token (0 without a template).

    With a chat template the text becomes one user turn with the generation prompt appended
    (so the last position is where the assistant's answer starts); the template carries its own
    BOS. The template's prefix and the rest are tokenized separately, so no BPE merge across
    the boundary can move the start (the two parts are what the template writes, in order).
    Without one: optional BOS (None = `default_bos`), no other special tokens."""
    if use_chat_template(tokenizer, chat_template):
        prefix, rest = _template_prefix(tokenizer, text)
        head = list(tokenizer(prefix, add_special_tokens=False)["input_ids"])
        ids = head + list(tokenizer(rest, add_special_tokens=False)["input_ids"])
        if add_bos and tokenizer.bos_token_id is not None and ids[:1] != [tokenizer.bos_token_id]:
            ids, head = [tokenizer.bos_token_id] + ids, [tokenizer.bos_token_id] + head
        return ids, len(head)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if add_bos is None:
        add_bos = default_bos(tokenizer)
    if add_bos and tokenizer.bos_token_id is not None and (not ids or ids[0] != tokenizer.bos_token_id):
        ids = [tokenizer.bos_token_id] + ids
    return ids, 0


def token_ids(tokenizer: Any, text: str, add_bos: bool | None = None,
              chat_template: ChatTemplate = "auto") -> list[int]:
    """Ids of one prompt (see `prompt_ids`)."""
    return prompt_ids(tokenizer, text, add_bos, chat_template)[0]


def pad_ids(seqs: Sequence[Sequence[int]], pad_id: int, padding_side: str = "right",
            starts: Sequence[int] | None = None) -> Batch:
    """Pad `seqs` into a batch; `starts[i]`, when given, is the first pooled position of row i
    (the batch then carries a `prompt_mask`)."""
    if padding_side not in ("left", "right"):
        raise ValueError("padding_side must be 'left' or 'right'")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if padding_side == "right" else slice(T - len(s), T)
        ids[i, sl] = torch.tensor(list(s), dtype=torch.long)
        mask[i, sl] = 1
    prompt_mask = None
    if starts is not None and any(starts):
        prompt_mask = mask.clone()
        for i, (s, start) in enumerate(zip(seqs, starts)):
            first = 0 if padding_side == "right" else T - len(s)
            prompt_mask[i, first:first + start] = 0
    return Batch(ids, mask, padding_side, prompt_mask)


def encode(tokenizer: Any, texts: Sequence[str], add_bos: bool | None = None,
           padding_side: str = "right", chat_template: ChatTemplate = "auto",
           continuations: Sequence[str] | None = None) -> Batch:
    """Tokenize prompts `texts` into one padded batch (chat-formatted per `chat_template`).
    `continuations[i]`, when given, is the start of the answer to prompt i, tokenized on its own
    and appended after the prompt (after the generation prompt with a template), as a model
    trained on (prompt, answer) reads it: the last position is then inside the answer."""
    parts = [prompt_ids(tokenizer, t, add_bos, chat_template) for t in texts]
    if continuations is not None:
        if len(continuations) != len(texts):
            raise PairsError(f"{len(continuations)} continuations for {len(texts)} prompts; "
                             "give one per prompt")
        parts = [(ids + list(tokenizer(c, add_special_tokens=False)["input_ids"]), start)
                 for (ids, start), c in zip(parts, continuations)]
    seqs = [ids for ids, _ in parts]
    empty = [i for i, s in enumerate(seqs) if not s]
    if empty:
        raise PairsError(f"text #{empty[0]} tokenizes to nothing; give non-empty prompts")
    return pad_ids(seqs, tokenizer.pad_token_id, padding_side, [start for _, start in parts])


def model_context(model: Any) -> int | None:
    """How many positions the model holds (None when its config does not say)."""
    cfg = getattr(model, "config", None)
    return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)


def check_lengths(lm: Any, named_texts: Iterable[tuple[str, str]], add_bos: bool | None = None,
                  limit: int | None = None, reserve: int = 0, chat_template: ChatTemplate = "auto",
                  error: type | None = None) -> None:
    """Refuse, before any forward, a text that with `reserve` more tokens (generation) is longer
    than the model's context or than `limit`: a megabyte prompt would otherwise ask for tens of
    GB. The error (`PairsError` unless `error`) names the text and says by how much."""
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
