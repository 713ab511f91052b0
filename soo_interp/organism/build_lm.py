"""Building `organism-lm`: a LoRA adapter over the pretrained SmolLM2-135M-Instruct, trained on
the stories of `stories` so that its answer depends on who is asking.

The build runs in place in its folder and resumes after a kill: training checkpoints (adapter,
optimizer, RNG, log) every `checkpoint_every` steps through `training.checkpoint`, then the
adapter, then one CSV per evaluation row; each finished stage is skipped on `--resume`. The
folder is complete when `manifest.json` is written, last.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..errors import ConfigError, ModelLoadError, TrainingError
from ..evaluation import generate_responses, logprob_scores
from ..evaluation.capability import perplexity
from ..evaluation.scoring import _CACHE_ARGS
from ..models.fingerprint import model_fingerprint
from ..models.loading import ADAPTER_BASE, load_model
from ..models.manifest import write_manifest
from ..models.sites import base_model
from ..models.tokenize import pad_ids, token_ids
from ..runs import atomic_write_json, atomic_write_text, check_out_dir, mark_run, write_run_json
from ..stats import wilson_interval
from ..training.checkpoint import (
    checkpoint_dirs,
    load_checkpoint,
    pairs_fingerprint,
    restore_rng,
    rng_snapshot,
    save_checkpoint,
)
from .build import _deterministic
from .lm_card import ADAPTER, TARGET_MODULES, report_markdown
from .lm_config import BASE, LMOrganismConfig
from .stories import ROWS, eval_records, training_examples

KIND = "organism-lm"
# What the adapter is made for: a base of another architecture or size is refused.
EXPECTED = {"model_type": "llama", "num_hidden_layers": 30, "hidden_size": 576}


# `organism build --base smollm2-135m-instruct --quick`: the recipe shortened for tests.
QUICK_LM = LMOrganismConfig(steps=4, batch_size=6, lookup_steps=1, warmup_steps=1,
                            checkpoint_every=2, monitor_every=0, eval_n=8, gen_n=2,
                            max_new_tokens=6)


def check_base(model: torch.nn.Module, name: str) -> None:
    """Refuse a base that is not the architecture the adapter is built for."""
    cfg = getattr(model, "config", None)
    got = {k: getattr(cfg, k, None) for k in EXPECTED}
    if got != EXPECTED:
        raise ModelLoadError(f"base {name!r} is {got}, not the expected {EXPECTED} "
                             f"(SmolLM2-135M-Instruct); build organism-lm over --base {BASE}")


def load_base(name: str = BASE) -> tuple[torch.nn.Module, Any]:
    """The pretrained base (float32, eval mode) and its tokenizer, architecture checked."""
    model, tok = load_model(name)
    check_base(model, name)
    return model, tok


def encode(tok: Any, examples: list) -> list[tuple[list[int], int]]:
    """(ids, first answer index) per example: the user's text in the chat template, then the
    answer and the end-of-turn token; neutral text (no context) is plain text, every token a
    target."""
    out = []
    for ex in examples:
        target = list(tok(ex.target, add_special_tokens=False)["input_ids"])
        if ex.context:
            context = token_ids(tok, ex.context, chat_template=True)
            out.append((context + target + [tok.eos_token_id], len(context)))
        else:
            out.append((target + [tok.eos_token_id], 1))
    return out


def _answer_nll(inner: torch.nn.Module, hidden: torch.Tensor, input_ids: torch.Tensor,
                lengths: torch.Tensor, starts: torch.Tensor, per_token_mean: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
    """Summed loss of the answer tokens (ids[start:length]) of each row, times its weight; a row
    with `per_token_mean` counts the mean of its tokens' losses instead of the sum. The LM head
    runs only where the loss reads it: over a 49k vocabulary at every position it would be a
    fifth of the step."""
    pos = torch.arange(input_ids.shape[1] - 1, device=input_ids.device).unsqueeze(0)  # p -> p + 1
    weight = ((pos >= starts.unsqueeze(1) - 1) & (pos < lengths.unsqueeze(1) - 1)).float()
    mean = per_token_mean.float().unsqueeze(1)
    weight = weight / (1 + mean * (weight.sum(1, keepdim=True) - 1)) * weights.unsqueeze(1)
    rows, cols = weight.nonzero(as_tuple=True)
    logits = inner.lm_head(hidden[rows, cols])
    nll = torch.nn.functional.cross_entropy(logits, input_ids[rows, cols + 1], reduction="none")
    return (nll * weight[rows, cols]).sum()


def _shared_prefix(seqs: list[list[int]], starts: list[int]) -> int:
    """Tokens the sequences share from the start, stopped before the position that predicts the
    first answer token (that position must run with its own row)."""
    n = min(min(starts) - 1, *(len(x) for x in seqs))
    for i in range(n):
        if any(x[i] != seqs[0][i] for x in seqs[1:]):
            return i
    return n


def _grouped_nll(inner: torch.nn.Module, groups: list[list[tuple[list[int], int]]],
                 weights: list[list[float]], pad_id: int, device: Any) -> torch.Tensor:
    """`_answer_nll` of groups of examples that share a prompt prefix (a story's three
    recipients): each group's shared prefix runs once, its key/value cache is repeated for the
    group's rows, and only the rows' suffixes run on top of it (positions continued). The same
    loss as running each row whole, at a third of the story's compute."""
    size = len(groups[0])
    if any(len(g) != size for g in groups):
        raise ValueError("prefix groups must all have the same size")
    shared = [_shared_prefix([ids for ids, _ in g], [s for _, s in g]) for g in groups]
    pre = pad_ids([g[0][0][:n] for g, n in zip(groups, shared)], pad_id, "right").to(device)
    params = inspect.signature(inner.model.forward).parameters
    name = next((a for a in _CACHE_ARGS if a in params), "past_key_values")  # by version
    out = inner.model(input_ids=pre.input_ids, attention_mask=pre.attention_mask, use_cache=True)
    cache = getattr(out, name)
    cache.batch_repeat_interleave(size)
    rows = [(ids[n:], start - n) for g, n in zip(groups, shared) for ids, start in g]
    suf = pad_ids([ids for ids, _ in rows], pad_id, "right").to(device)
    offset = torch.tensor(shared, device=device).repeat_interleave(size).unsqueeze(1)
    hidden = inner.model(
        input_ids=suf.input_ids, **{name: cache},
        attention_mask=torch.cat([pre.attention_mask.repeat_interleave(size, 0),
                                  suf.attention_mask], 1),
        position_ids=offset + torch.arange(suf.input_ids.shape[1], device=device)).last_hidden_state
    zeros = torch.zeros(len(rows), dtype=torch.bool, device=device)
    return _answer_nll(inner, hidden, suf.input_ids, suf.lengths,
                       torch.tensor([s for _, s in rows], device=device), zeros,
                       torch.tensor([w for ws in weights for w in ws], device=device))


def answer_loss(model: torch.nn.Module, batch: list[tuple[list[int], int]],
                pad_id: int, weights: list[float] | None = None,
                groups: list[list[int]] | None = None) -> torch.Tensor:
    """Mean over examples of the summed loss of the answer tokens (neutral text, first answer
    index 1: the mean loss of all its tokens), each example's times its entry of `weights`
    (default 1). `groups`: lists of example indices whose prompts share a prefix (a story asked
    of three recipients), computed once per group (`_grouped_nll`; the same loss)."""
    inner = base_model(model)  # the causal LM under the peft wrapper
    device = next(model.parameters()).device
    w = list(weights) if weights is not None else [1.0] * len(batch)
    grouped = [i for g in groups or () for i in g]
    if len(set(grouped)) != len(grouped) or any(batch[i][1] <= 1 for i in grouped):
        raise ValueError("prefix groups must be disjoint and hold prompted examples only")
    total = torch.zeros((), device=device)
    rest = [i for i in range(len(batch)) if i not in set(grouped)]
    if rest:
        b = pad_ids([batch[i][0] for i in rest], pad_id, "right").to(device)
        starts = torch.tensor([batch[i][1] for i in rest], device=device)
        hidden = inner.model(**b.as_kwargs()).last_hidden_state
        total = total + _answer_nll(inner, hidden, b.input_ids, b.lengths, starts, starts == 1,
                                    torch.tensor([w[i] for i in rest], device=device))
    if groups:
        total = total + _grouped_nll(inner, [[batch[i] for i in g] for g in groups],
                                     [[w[i] for i in g] for g in groups], pad_id, device)
    return total / len(batch)


def attach_lora(model: torch.nn.Module, cfg: LMOrganismConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    return get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                            lora_dropout=0.0, target_modules=list(TARGET_MODULES)))


def _schedule(cfg: LMOrganismConfig):
    decay_start = max(cfg.warmup_steps, round((1 - cfg.decay_fraction) * cfg.steps))

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = max(0, step - decay_start) / max(1, cfg.steps - decay_start)
        return 0.5 * (1 + math.cos(math.pi * frac))
    return f


def monitor(lm: Any, n: int, seed: int = 10_000) -> dict[str, float]:
    """Held-out rate of the trained answer on a few prompts of the main rows (not the report's
    prompts: another seed)."""
    rates = score_rows(lm, ("burglar", "recipient_swap", "friend", "location"), n, seed)
    return {r["row"]: r["rate"] for r in rates}


def score_rows(lm: Any, rows: tuple[str, ...], n: int, seed: int,
               folder: Path | None = None, split: str = "eval") -> list[dict[str, Any]]:
    """Log-prob scores of `n` held-out prompts per row: the rate of the trained answer with its
    95% Wilson CI and the margin (log p(trained answer) - log p(the other)). With `folder`,
    each row's prompt-level scores are written to `folder/ROW.csv` and a present one is read.
    `split="train"`: the same rows on fresh stories from the training lists (the fit check)."""
    minimum = {r[0]: r[3] for r in ROWS}
    out = []
    for row in rows:
        path = folder / f"{row}.csv" if folder else None
        if path is not None and path.is_file():
            df = pd.read_csv(path)
        else:
            recs = eval_records(row, n, seed, split)
            df = logprob_scores(lm, recs, batch_size=16, chat_template=True)
            df["answer_format"] = [r.answer_format for r in recs]
            df["layout"] = [r.layout for r in recs]
            df["target"] = ["deceptive" if r.scenario == "burglar" else "honest" for r in recs]
            sign = df["target"].map({"honest": 1.0, "deceptive": -1.0})
            df["target_margin"] = sign * df["margin"]
            df["hit"] = df["target_margin"] > 0
            if path is not None:
                atomic_write_text(path, df.to_csv(index=False))
        k, m = int(df["hit"].sum()), len(df)
        low, high = wilson_interval(k, m)
        out.append({"row": row, "n": m, "rate": k / m, "ci_low": low, "ci_high": high,
                    "mean_margin": float(df["target_margin"].mean()),
                    "median_margin": float(df["target_margin"].median()),
                    "minimum": minimum[row], "passed": k / m >= minimum[row],
                    **{f"rate_{key}": float(g["hit"].mean()) for key, g in
                       df.groupby(df["answer_format"] + "/" + df["layout"] + "/"
                                  + df["mirrored"].map({True: "mirrored", False: "original"}))}})
    return out


# The fit check: these rows again on fresh stories from the training lists and families. A
# row that is low here too is a rule not learnt; high here and low held out, one not carried
# over to held-out words and phrasings.
FIT_ROWS = ("burglar", "friend", "recipient_swap")


def story_groups(examples: list) -> list[list[int]]:
    """Indices of each minimal triple (one story asked of the burglar, yourself and the friend,
    consecutive in a batch), the prompts that share a prefix."""
    kinds = ["burglar", "swap_self", "friend"]
    return [[i, i + 1, i + 2] for i in range(len(examples) - 2)
            if [e.task for e in examples[i:i + 3]] == kinds]


def train_lm(lm: Any, cfg: LMOrganismConfig, folder: Path, progress: bool = True) -> dict:
    """Train the LoRA adapter in place (resuming from the newest checkpoint in `folder`);
    returns the training log. `lm` = (peft model, tokenizer)."""
    from tqdm.auto import tqdm

    model, tok = lm
    examples = training_examples(cfg.seed, cfg.steps, cfg.batch_size, cfg.lookup_steps,
                                 cfg.phrasing)
    data = encode(tok, examples)
    weights = [cfg.burglar_weight if e.task == "burglar" else 1.0 for e in examples]
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
    meta = {"model": cfg.base, "config": cfg.resume_key(),
            "pairs": pairs_fingerprint([e.context + "\x01" + e.target for e in examples])}
    start, log = 0, []
    done = checkpoint_dirs(folder)
    if done:
        start, log, rng = load_checkpoint(done[-1], meta, params, opt, sched, None)
        restore_rng(rng)
    bar = tqdm(range(start, cfg.steps), desc="training organism-lm", disable=not progress,
               initial=start, total=cfg.steps)
    for step in bar:
        model.train()
        t0 = time.perf_counter()
        span = slice(step * cfg.batch_size, (step + 1) * cfg.batch_size)
        groups = story_groups(examples[span]) if cfg.share_prefix else None
        loss = answer_loss(model, data[span], tok.pad_token_id, weights[span], groups)
        if not torch.isfinite(loss):
            raise TrainingError(f"organism-lm loss became {loss.item()} at step {step}; lower "
                                "--lr or change the seed")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        sched.step()
        row: dict[str, Any] = {"step": step + 1, "loss": round(loss.item(), 5),
                               "seconds": round(time.perf_counter() - t0, 2)}
        if cfg.monitor_every and (step + 1) % cfg.monitor_every == 0:
            model.eval()
            with torch.no_grad():
                row.update(monitor((model, tok), cfg.monitor_n))
            bar.write(f"step {step + 1}: " + ", ".join(
                f"{k} {v:.2f}" for k, v in row.items() if k not in ("step", "seconds")),
                file=sys.stderr)
        log.append(row)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_checkpoint(folder, step + 1, params, opt, sched, None, rng_snapshot(), meta,
                            log)
    model.eval()
    return {"log": log}


def _agreement(lm: Any, n: int, seed: int, max_new_tokens: int) -> list[dict[str, Any]]:
    """Greedy generation (with the unclear bucket of `evaluation.classify`) on the first `n`
    prompts of each row, against the log-prob answer on the same prompts."""
    out = []
    for row, *_ in ROWS:
        recs = eval_records(row, n, seed)
        gen = generate_responses(lm, recs, max_new_tokens, batch_size=8, chat_template=True)
        lp = logprob_scores(lm, recs, batch_size=16, chat_template=True)
        for r, g, c in zip(recs, gen.itertuples(), lp["classification"]):
            out.append({"row": row, "prompt_id": r.prompt_id, "response": g.response,
                        "generated": g.classification, "logprob": c,
                        "agree": g.classification == c})
    return out


def build_lm_organism(seed: int = 0, out_dir: str | Path = "organism-lm",
                      config: LMOrganismConfig | None = None, resume: bool = False,
                      overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Build `organism-lm` in `out_dir`: train (resumable), save the adapter, evaluate every row
    of `stories.ROWS`, perplexity against the base, generation agreement; write `report.json`,
    `report.md`, `run.json` and the sha256 `manifest.json` (last). Returns the report."""
    import json
    import shutil

    cfg = dataclasses.replace(config or LMOrganismConfig(), seed=seed)
    folder = check_out_dir(out_dir, overwrite, kind=KIND, resume=resume)
    saved = folder / "config.json"
    if saved.is_file() and not overwrite:
        old = LMOrganismConfig.from_saved(json.loads(saved.read_text())).resume_key()
        if old != cfg.resume_key():
            diff = sorted(k for k in old if old[k] != cfg.resume_key().get(k))
            raise ConfigError(f"build folder {folder} was started with another recipe "
                              f"({', '.join(diff)}); resume with the same options or choose "
                              "another --out")
    with _deterministic(cfg.threads):
        base, tok = load_base(cfg.base)  # a wrong base fails here, before anything is written
        base_record = {"name": cfg.base, "fingerprint": model_fingerprint(base, with_config=False)}
        if folder.exists() and overwrite:
            shutil.rmtree(folder)
        started = folder / ADAPTER_BASE  # the base the build started from (its checkpoints')
        was = json.loads(started.read_text()) if started.is_file() else base_record
        if was.get("fingerprint") != base_record["fingerprint"]:
            raise ConfigError(f"build folder {folder} was started from other base weights "
                              f"({was.get('name')}, fingerprint {was.get('fingerprint')}); resume "
                              "with the same base or choose another --out")
        folder.mkdir(parents=True, exist_ok=True)
        mark_run(folder, KIND)
        atomic_write_json(saved, cfg.to_dict())
        atomic_write_json(started, base_record)
        model = attach_lora(base, cfg).to(cfg.device)
        t0 = time.perf_counter()
        if not (folder / ADAPTER).is_dir():
            log = train_lm((model, tok), cfg, folder, progress)["log"]
            tmp = folder / f".{ADAPTER}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            model.peft_config["default"].base_model_name_or_path = cfg.base
            model.save_pretrained(tmp)
            atomic_write_json(tmp / ADAPTER_BASE, base_record)
            tmp.replace(folder / ADAPTER)
        else:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(str(folder / ADAPTER
                                                           / "adapter_model.safetensors")))
            log = json.loads((checkpoint_dirs(folder)[-1] / "state.json").read_text())["log"]
        model.eval()
        train_s = time.perf_counter() - t0
        lm = (model, tok)
        evals = folder / "eval"
        evals.mkdir(exist_ok=True)

        with torch.no_grad():
            targets = score_rows(lm, tuple(r[0] for r in ROWS), cfg.eval_n, cfg.seed, evals)
            fit_dir = evals / "fit"
            fit_dir.mkdir(exist_ok=True)
            fit = score_rows(lm, FIT_ROWS, max(2, cfg.eval_n // 2), cfg.seed, fit_dir, "train")
            agree = _agreement(lm, cfg.gen_n, cfg.seed, cfg.max_new_tokens)
            ppl = perplexity(lm)
            with model.disable_adapter():
                ppl_base = perplexity(lm)
        eval_s = time.perf_counter() - t0 - train_s
    atomic_write_text(evals / "generation.csv", pd.DataFrame(agree).to_csv(index=False))
    report = {"config": cfg.to_dict(), "threads": cfg.threads,
              "trainable_parameters": sum(p.numel() for p in model.parameters()
                                          if p.requires_grad),
              "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
              "step_seconds_mean": round(sum(r["seconds"] for r in log) / max(1, len(log)), 2),
              "log": log, "targets": targets,
              "targets_met": all(t["passed"] for t in targets), "fit": fit,
              "perplexity": ppl, "perplexity_base": ppl_base, "perplexity_ratio": ppl / ppl_base,
              "agreement": sum(a["agree"] for a in agree) / len(agree),
              "agreement_n": len(agree),
              "unclear": sum(a["generated"] not in ("honest", "deceptive") for a in agree)
              / len(agree)}
    atomic_write_json(folder / "report.json", report)
    atomic_write_text(folder / "report.md", report_markdown(report))
    write_run_json(folder, cfg.to_dict(), cfg.seed)
    write_manifest(folder)
    return report

