"""Tiny random models of every supported family, built offline from `transformers` configs with
a byte-level BPE tokenizer trained here, and saved with `save_pretrained` so they load through the
same path as a hub model. For tests, benchmarks and demos; they have no behaviour to study.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from ..data.pairs import soo_pairs
from ..data.scenarios import tokenizer_corpus
from ..errors import check_choice
from .tokenize import SPECIAL_TOKENS

FAMILIES = ("llama", "mistral", "gemma", "gemma2", "qwen2", "qwen3", "gpt2", "gpt_neox")


def _corpus() -> list[str]:
    texts = [t for p in soo_pairs("all", templates=None) for t in (p.self_text, p.other_text)]
    return texts + list(tokenizer_corpus())


def train_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 512):
    """A byte-level BPE tokenizer (never produces <unk>) trained locally and deterministically."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts if texts is not None else _corpus()), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<s>", eos_token="</s>")


def tiny_config(family: str, vocab_size: int, n_layers: int = 2, d_model: int = 64,
                n_heads: int = 4, max_positions: int = 256):
    """A `transformers` config of `family` at toy size."""
    import transformers as tf

    check_choice("family", family, FAMILIES, ValueError)
    ids = dict(pad_token_id=0, bos_token_id=2, eos_token_id=3, vocab_size=vocab_size)
    rope = dict(hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=n_layers,
                num_attention_heads=n_heads, num_key_value_heads=max(1, n_heads // 2),
                max_position_embeddings=max_positions, **ids)
    if family == "llama":
        return tf.LlamaConfig(**rope)
    if family == "mistral":
        return tf.MistralConfig(**rope, sliding_window=None)
    if family == "gemma":
        return tf.GemmaConfig(**rope, head_dim=d_model // n_heads)
    if family == "gemma2":
        return tf.Gemma2Config(**rope, head_dim=d_model // n_heads, sliding_window=max_positions,
                               query_pre_attn_scalar=d_model // n_heads)
    if family == "qwen2":
        return tf.Qwen2Config(**rope)
    if family == "qwen3":
        return tf.Qwen3Config(**rope, head_dim=d_model // n_heads)
    if family == "gpt2":
        return tf.GPT2Config(n_embd=d_model, n_layer=n_layers, n_head=n_heads,
                             n_positions=max_positions, **ids)
    return tf.GPTNeoXConfig(hidden_size=d_model, intermediate_size=2 * d_model,  # gpt_neox
                            num_hidden_layers=n_layers, num_attention_heads=n_heads,
                            max_position_embeddings=max_positions, **ids)


def build_tiny_model(family: str, out_dir: str | Path, n_layers: int = 2, d_model: int = 64,
                     n_heads: int = 4, seed: int = 0, tokenizer=None) -> Path:
    """Build, randomly initialise (seeded) and `save_pretrained` a tiny model + tokenizer."""
    from transformers import AutoModelForCausalLM

    tok = tokenizer if tokenizer is not None else train_tokenizer()
    cfg = tiny_config(family, len(tok), n_layers, d_model, n_heads)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
