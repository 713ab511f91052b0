"""Training the organism from scratch on the CPU, deterministically for a seed."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch

from ..config import Config
from ..data.scenarios import LAYOUTS
from ..errors import ConfigError, TrainingError
from ..models.manifest import write_manifest
from ..models.tokenize import pad_ids
from ..runs import atomic_write_json, atomic_write_text, output_dir, set_seed, write_run_json
from .behaviour import behaviour, behaviour_rates, check_targets, lookup_accuracy, report_markdown
from .world import LOOKUP_MIX, build_tokenizer, encode_examples, training_examples, vocabulary_texts


@dataclasses.dataclass
class OrganismConfig(Config):
    """How the organism is built. Defaults build the shipped checkpoint (seed 0)."""

    seed: int = 0
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    n_layers: int = 3
    hidden_size: int = 128
    n_heads: int = 8
    intermediate_size: int = 256
    max_positions: int = 256
    attention_bias: bool = True  # biases on q/k/v/o (see `make_model`)
    threads: int = 1          # fixed (a different count may change the last bits); 1 is
                              # also the fastest on a shared 2-core machine
    context_loss_weight: float = 0.1  # LM loss on the prompt, relative to the answer
    layout: str = "both"      # description order of the trained stories (scenarios.LAYOUTS)
    decay_fraction: float = 0.4  # lr: warmup, constant, cosine to 0 over this last share
    lookup_fraction: float = 0.2  # first share of steps on `world.LOOKUP_MIX` (warm-up)
    max_objects: int = 2      # objects per pure-lookup story (2..max_objects)
    eval_n: int = 100         # held-out prompts per scenario, answer format and option order
    monitor_every: int = 100  # >0: measure held-out rates (small n) every this many steps

    positive = ("steps", "batch_size", "n_layers", "hidden_size", "n_heads", "threads",
                "intermediate_size", "eval_n")
    choices = {"layout": LAYOUTS}

    def check(self) -> None:
        if not (0 <= self.lookup_fraction <= 1 and 0 <= self.decay_fraction <= 1):
            raise ConfigError(f"organism lookup_fraction and decay_fraction must be in 0..1, "
                              f"got {self.lookup_fraction}, {self.decay_fraction}")
        if self.max_objects < 2:
            raise ConfigError(f"organism max_objects must be at least 2, got {self.max_objects}")
        if self.hidden_size % self.n_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} must be a multiple of n_heads "
                              f"{self.n_heads}")


# `soo-interp organism build --quick`: the same recipe, shortened, for tests and a first look.
QUICK = OrganismConfig(steps=800, eval_n=20)


@contextlib.contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic kernels, restored afterwards."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def make_model(cfg: OrganismConfig, tokenizer) -> torch.nn.Module:
    """A freshly initialised (seeded) Llama-architecture causal LM with tied embeddings and,
    if `cfg.attention_bias`, biases on the attention projections (a query/key bias lets a head
    attend by relative position alone, which the object -> room lookup needs)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    mc = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_positions, attention_bias=cfg.attention_bias,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(mc)


def _batch_loss(model: torch.nn.Module, batch: list[tuple[list[int], int]], pad_id: int,
                context_weight: float) -> torch.Tensor:
    """Mean over examples of: the summed loss of the answer tokens (so the one informative
    room token weighs the same in both answer formats) plus `context_weight` times the mean
    loss of the prompt tokens. Neutral texts (no prompt) count the mean loss of all tokens."""
    b = pad_ids([ids for ids, _ in batch], pad_id, "right")
    logits = model(**b.as_kwargs()).logits[:, :-1]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), b.input_ids[:, 1:],
                                            reduction="none")
    pos = torch.arange(nll.shape[1]).unsqueeze(0)  # position p predicts token p + 1
    starts = torch.tensor([s for _, s in batch]).unsqueeze(1)
    answer = ((pos >= starts - 1) & (pos < b.lengths.unsqueeze(1) - 1)).float()
    context = (pos < starts - 1).float()
    neutral = (starts == 1).float()
    answer = answer / (1 + neutral * (answer.sum(1, keepdim=True) - 1))
    context = context_weight * context / context.sum(1, keepdim=True).clamp(min=1)
    return (nll * (answer + context)).sum(1).mean()


def _monitor(model: torch.nn.Module, tok: Any, n: int = 12) -> dict[str, float]:
    """Target rates on a few held-out prompts (seed 1, not the report's seed 0), location and
    the layout-dependent scenarios in both description orders, option orders pooled."""
    rates = pd.concat([behaviour_rates((model, tok), n=n, seed=1, scenarios=scenarios,
                                       layout=layout) for layout, scenarios in (
        ("paper", ("burglar", "self_recommend", "friend", "location")),
        ("honest_first", ("burglar", "self_recommend", "friend")))], ignore_index=True)
    return {"lookup": lookup_accuracy((model, tok), 4 * n),
            **{f"{t['scenario']}/{t['layout']}": t["rate"]
               for t in check_targets(rates, pooled=True)}}


def _curriculum(cfg: OrganismConfig) -> list:
    """One example per batch slot: the lookup warm-up's batches, then the mix's."""
    lookup_steps = round(cfg.lookup_fraction * cfg.steps)
    warm = lookup_steps * cfg.batch_size
    out = training_examples(cfg.seed, warm, LOOKUP_MIX, cfg.layout, cfg.max_objects) if warm else []
    return out + training_examples(cfg.seed + 1_000_003 * bool(warm),
                                   (cfg.steps - lookup_steps) * cfg.batch_size,
                                   layout=cfg.layout, max_objects=cfg.max_objects)


@dataclasses.dataclass
class History:
    """What training recorded: the loss of every step and, every `monitor_every` steps, the
    held-out rates of `_monitor` (the training curve of the card)."""

    losses: list[float] = dataclasses.field(default_factory=list)
    monitor: list[dict[str, float]] = dataclasses.field(default_factory=list)


def train_organism(cfg: OrganismConfig, progress: bool = True) -> tuple[torch.nn.Module, Any,
                                                                         History]:
    """Build the tokenizer and train the model; returns (model, tokenizer, history)."""
    with _deterministic(cfg.threads):
        return _train(cfg, progress)


def _train(cfg: OrganismConfig, progress: bool) -> tuple[torch.nn.Module, Any, History]:
    from tqdm.auto import tqdm

    set_seed(cfg.seed)
    tok = build_tokenizer(vocabulary_texts())
    data = encode_examples(tok, _curriculum(cfg))
    model = make_model(cfg, tok)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))

    decay_start = max(cfg.warmup_steps, round((1 - cfg.decay_fraction) * cfg.steps))

    def schedule(step: int) -> float:  # warmup, constant, then cosine to 0 over the last steps
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = max(0, step - decay_start) / max(1, cfg.steps - decay_start)
        return 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    hist = History()
    model.train()
    bar = tqdm(range(cfg.steps), desc="training organism", disable=not progress)
    for step in bar:
        loss = _batch_loss(model, data[step * cfg.batch_size:(step + 1) * cfg.batch_size],
                           tok.pad_token_id, cfg.context_loss_weight)
        if not torch.isfinite(loss):
            raise TrainingError(f"organism loss became {loss.item()} at step {step}; lower --lr "
                                "or change the seed")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if cfg.monitor_every and (step + 1) % cfg.monitor_every == 0:
            model.eval()
            hist.monitor.append({"step": step + 1, **_monitor(model, tok)})
            bar.write(f"step {step + 1}: " + ", ".join(f"{k} {v:.2f}"
                                                       for k, v in hist.monitor[-1].items()
                                                       if k != "step"), file=sys.stderr)
            model.train()
    model.eval()
    return model, tok, hist


def build_organism(seed: int = 0, out_dir: str | Path = "organism", steps: int | None = None,
                   overwrite: bool = False, progress: bool = True,
                   config: OrganismConfig | None = None) -> dict[str, Any]:
    """Train an organism and save it as a Hugging Face checkpoint folder with its tokenizer, a
    behaviour report (`report.md`, `report.json`), `run.json` and a sha256 `manifest.json`.
    Returns the report. An existing `out_dir` is refused unless `overwrite`."""
    cfg = dataclasses.replace(config or OrganismConfig(), seed=seed,
                              **({} if steps is None else {"steps": steps}))
    with output_dir(out_dir, overwrite, kind="organism") as tmp:
        t0 = time.perf_counter()
        model, tok, hist = train_organism(cfg, progress)
        losses = hist.losses
        train_s = time.perf_counter() - t0
        with _deterministic(cfg.threads):
            beh = behaviour((model, tok), n=cfg.eval_n, seed=0, progress=progress)
            beh["lookup"] = lookup_accuracy((model, tok), 4 * cfg.eval_n)
        eval_s = time.perf_counter() - t0 - train_s
        k = max(1, min(20, len(losses) // 5))
        report = {
            "config": cfg.to_dict(),
            "architecture": model.config.architectures[0].removesuffix("ForCausalLM")
            if model.config.architectures else type(model).__name__.removesuffix("ForCausalLM"),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tok),
            "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
            "threads": cfg.threads,
            "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
            "losses": [round(x, 5) for x in losses], "monitor": hist.monitor,
            **beh,
        }
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "report.json", report)
        atomic_write_text(tmp / "report.md", report_markdown(report))
        write_run_json(tmp, cfg.to_dict(), cfg.seed)
        write_manifest(tmp)
    return report
