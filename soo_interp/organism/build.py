"""Training the organism from scratch on the CPU, deterministically for a seed."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from ..config import Config
from ..errors import ConfigError, TrainingError
from ..models.manifest import write_manifest
from ..runs import atomic_write_json, atomic_write_text, output_dir, set_seed, write_run_json
from .behaviour import TARGETS, behaviour, behaviour_rates, check_targets, report_markdown
from .world import build_tokenizer, encode_examples, training_examples, vocabulary_texts


@dataclasses.dataclass
class OrganismConfig(Config):
    """How the organism is built. Defaults build the shipped checkpoint (seed 0)."""

    seed: int = 0
    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 40
    weight_decay: float = 0.01
    n_layers: int = 4
    hidden_size: int = 128
    n_heads: int = 4
    intermediate_size: int = 256
    max_positions: int = 256
    threads: int = 1          # fixed (a different count may change the last bits); 1 is
                              # also the fastest on a shared 2-core machine
    context_loss_weight: float = 0.1  # LM loss on the prompt, relative to the answer
    eval_n: int = 100         # held-out prompts per scenario, answer format and option order
    monitor_every: int = 0    # >0: measure the targets (small n) every this many steps

    def check(self) -> None:
        for k in ("steps", "batch_size", "n_layers", "hidden_size", "n_heads", "threads",
                  "intermediate_size", "eval_n"):
            if getattr(self, k) < 1:
                raise ConfigError(f"organism {k} must be at least 1, got {getattr(self, k)}")
        if self.hidden_size % self.n_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} must be a multiple of n_heads "
                              f"{self.n_heads}")


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
    """A freshly initialised (seeded) Mistral-architecture causal LM with tied embeddings."""
    from transformers import MistralConfig, MistralForCausalLM

    mc = MistralConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_positions, sliding_window=None,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(cfg.seed)
    return MistralForCausalLM(mc)


def _batch_loss(model: torch.nn.Module, batch: list[tuple[list[int], int]], pad_id: int,
                context_weight: float) -> torch.Tensor:
    """Mean over examples of: the summed loss of the answer tokens (so the one informative
    room token weighs the same in both answer formats) plus `context_weight` times the mean
    loss of the prompt tokens. Neutral texts (no prompt) count the mean loss of all tokens."""
    from ..models.tokenize import pad_ids

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
    """Target rates on a few held-out prompts (seed 1, not the report's seed 0)."""
    rates = behaviour_rates((model, tok), n=n, seed=1, scenarios=tuple(s for s, _, _ in TARGETS))
    return {t["scenario"][:5] + ("/m" if t["mirrored"] else ""): t["rate"]
            for t in check_targets(rates)}


def train_organism(cfg: OrganismConfig, progress: bool = True) -> tuple[torch.nn.Module, Any,
                                                                         list[float]]:
    """Build the tokenizer and train the model; returns (model, tokenizer, loss per step)."""
    with _deterministic(cfg.threads):
        return _train(cfg, progress)


def _train(cfg: OrganismConfig, progress: bool) -> tuple[torch.nn.Module, Any, list[float]]:
    from tqdm.auto import tqdm

    cfg.check()
    set_seed(cfg.seed)
    tok = build_tokenizer(vocabulary_texts())
    data = encode_examples(tok, training_examples(cfg.seed, cfg.steps * cfg.batch_size))
    model = make_model(cfg, tok)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))

    def schedule(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    losses: list[float] = []
    monitor: list[dict[str, float]] = []
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
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if cfg.monitor_every and (step + 1) % cfg.monitor_every == 0:
            model.eval()
            monitor.append({"step": step + 1, **_monitor(model, tok)})
            bar.write(f"step {step + 1}: " + ", ".join(f"{k} {v:.2f}"
                                                       for k, v in monitor[-1].items()
                                                       if k != "step"))
            model.train()
    model.eval()
    return model, tok, losses


def build_organism(seed: int = 0, out_dir: str | Path = "organism", steps: int | None = None,
                   overwrite: bool = False, progress: bool = True,
                   config: OrganismConfig | None = None) -> dict[str, Any]:
    """Train an organism and save it as a Hugging Face checkpoint folder with its tokenizer, a
    behaviour report (`report.md`, `report.json`), `run.json` and a sha256 `manifest.json`.
    Returns the report. An existing `out_dir` is refused unless `overwrite`."""
    cfg = dataclasses.replace(config or OrganismConfig(), seed=seed)
    if steps is not None:
        cfg.steps = steps
    cfg.check()
    with output_dir(out_dir, overwrite, kind="organism") as tmp:
        t0 = time.perf_counter()
        model, tok, losses = train_organism(cfg, progress)
        train_s = time.perf_counter() - t0
        with _deterministic(cfg.threads):
            beh = behaviour((model, tok), n=cfg.eval_n, seed=0, progress=progress)
        eval_s = time.perf_counter() - t0 - train_s
        k = max(1, min(20, len(losses) // 5))
        report = {
            "config": cfg.to_dict(),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tok),
            "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
            "threads": cfg.threads,
            "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
            "losses": [round(x, 5) for x in losses],
            **beh,
        }
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "report.json", report)
        atomic_write_text(tmp / "report.md", report_markdown(report))
        write_run_json(tmp, cfg.to_dict(), cfg.seed)
        write_manifest(tmp)
    return report
