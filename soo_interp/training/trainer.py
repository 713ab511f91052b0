"""The SOO LoRA training loop: one batched forward per micro-batch, correctly averaged gradient
accumulation (the last partial group is kept), CUDA-only autocast, atomic checkpoints with exact
resume, checkpoint-then-exit on SIGTERM/SIGINT, and a clear stop on a NaN/inf loss."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from ..data.pairs import PromptPair, validate_pairs
from ..errors import CheckpointError, ConfigError, TrainingError
from ..metrics import check_alignable
from ..models.fingerprint import model_fingerprint
from ..models.loading import LoadedModel
from ..models.sites import Site
from ..models.tokenize import encode, token_ids
from ..runs import atomic_path, check_out_dir, set_seed, write_run_json
from .checkpoint import (checkpoint_dirs, load_checkpoint, pairs_fingerprint, restore_rng,
                         rng_snapshot, save_checkpoint)
from .config import TrainConfig, resolve_lora_targets, target_site
from .losses import capability_kl, pair_losses

log = logging.getLogger(__name__)
TRAIN_LOG = "train_log.parquet"


@dataclasses.dataclass
class TrainResult:
    """What a run produced. `log` is long: condition (soo|sham), seed, step, epoch, metric, value
    (metrics `loss`,
    `objective`, `capability_kl`, `lr`, `batch_latent_soo` per step; `latent_soo` over all
    training pairs in eval mode, and `heldout_latent_soo` over `eval_pairs` if given, at step 0,
    each epoch end and the last step). `model` is the trained
    `PeftModel` only when no `out_dir` was given (then the adapter stays attached)."""

    seed: int
    adapter_path: Path | None
    log: pd.DataFrame
    initial_latent_soo: float
    final_latent_soo: float
    steps: int
    model: Any = None


@dataclasses.dataclass
class _Plan:
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


def _default_neutral() -> list[str]:
    try:
        from ..data.neutral import neutral_texts
    except ImportError as e:
        raise ConfigError("capability_weight > 0 needs neutral texts and "
                          "soo_interp.data.neutral is not available; pass neutral_texts=[...] "
                          "(CLI: --neutral FILE, one text per line)") from e
    return list(neutral_texts("train"))


def prepare(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig,
            neutral_texts: Sequence[str] | None = None,
            eval_pairs: Sequence[PromptPair] | None = None) -> _Plan:
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
    if config.pooling == "aligned":
        tok = lm.tokenizer
        every = pairs + (eval_pairs or [])
        check_alignable([p.pair_id for p in every],
                        [len(token_ids(tok, p.self_text, config.add_bos)) for p in every],
                        [len(token_ids(tok, p.other_text, config.add_bos)) for p in every])
    neutral = None
    if config.capability_weight > 0:
        neutral = [t for t in (neutral_texts if neutral_texts is not None else _default_neutral())
                   if t.strip()]
        if not neutral:
            raise ConfigError("capability_weight > 0 but the neutral texts are empty; give at "
                              "least one non-empty text")
    return _Plan(site, targets, layers, pairs, neutral, eval_pairs)


def latent_soo(model: torch.nn.Module, tokenizer: Any, pairs: Sequence[PromptPair], site: Site,
               pooling: str, add_bos: bool | None = None) -> float:
    """Mean latent SOO over `pairs` at `site` (eval mode, no dropout), through `measure`."""
    from ..measure import measure

    was_training = model.training
    model.eval()
    try:
        df = measure(LoadedModel(model, tokenizer, "training"), pairs, layers=[site.layer],
                     components=[site.component], pooling=pooling, add_bos=add_bos, progress=False)
    finally:
        model.train(was_training)
    return float(df.loc[df.metric == "latent_soo", "value"].mean())


def _autocast(config: TrainConfig, device: torch.device) -> tuple[Callable[[], Any], Any]:
    """Autocast context factory and grad scaler: bf16/fp16 on CUDA only, nothing on CPU."""
    if device.type != "cuda" or config.amp == "none":
        return contextlib.nullcontext, None
    bf16 = config.amp == "bf16" or (config.amp == "auto" and torch.cuda.is_bf16_supported())
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = None if bf16 else torch.amp.GradScaler("cuda")
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def _lr_lambda(config: TrainConfig, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        if config.lr_schedule == "linear":
            return max(0.0, (total - step) / max(1, total - config.warmup_steps))
        return 1.0
    return factor


@contextlib.contextmanager
def _stop_on_signals() -> Any:
    """Record SIGINT/SIGTERM instead of dying mid-step; the loop checkpoints, then exits. A
    second signal interrupts at once (for a run stuck where the flag is never read)."""
    flag: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, _frame: Any) -> None:
        if flag["signal"] is not None:
            raise KeyboardInterrupt
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _nan_error(value: float, step: int, config: TrainConfig, model: torch.nn.Module) -> TrainingError:
    dtype = next(model.parameters()).dtype
    hint = ("the model runs in float16, whose range overflows easily: load it in float32 or "
            "bfloat16 (--dtype float32), or use --amp bf16"
            if dtype == torch.float16 or config.amp == "fp16" else
            "if the model runs in reduced precision, use float32 (--dtype float32)")
    return TrainingError(f"loss is {value} at step {step}: training diverged; lower the learning "
                         f"rate (--lr, now {config.lr:g}) and start again; {hint}")


def train_soo(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig,
              out_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
              progress: bool = True, neutral_texts: Sequence[str] | None = None,
              eval_pairs: Sequence[PromptPair] | None = None) -> TrainResult:
    """Train a LoRA adapter that lowers latent SOO at `Site(config.layer, config.component)` (or, with
    `config.sham`, a plain LM loss on the same pair texts) and return a `TrainResult`.
    `eval_pairs` (e.g. `soo_pairs("test")`) are measured beside the training pairs whenever
    latent SOO is logged (metric `heldout_latent_soo`).

    With `out_dir`, the folder becomes a peft adapter folder (`adapter_config.json`,
    `adapter_model.safetensors`) with `train_log.parquet`, `run.json` and `checkpoints/`, and
    `lm.model` is left as it was. `resume=True` continues exactly from the newest checkpoint
    (a missing folder starts fresh); an existing folder is refused unless `resume` or `overwrite`.
    """
    plan = prepare(lm, pairs, config, neutral_texts, eval_pairs)
    out = Path(out_dir) if out_dir is not None else None
    ckpt = None
    if out is not None:
        if resume and out.exists() and any(out.iterdir()):
            found = checkpoint_dirs(out)
            if not found:
                raise CheckpointError(f"{out} holds no checkpoint to resume from; pass --overwrite "
                                      "to start over, or choose another --out")
            ckpt = found[-1]
        elif not resume:
            check_out_dir(out, overwrite)
    return _train(lm, plan, config, out, ckpt, progress)


def _micro_batch_loss(model: Any, tok: Any, chunk: list[PromptPair], plan: _Plan,
                     config: TrainConfig, device: torch.device,
                     micro_index: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over the micro-batch's pairs of the objective (+ weighted capability KL on as many
    neutral texts, chosen by `micro_index` so a resumed run sees the same ones), and the detached
    sums to log. The caller divides by the number of pairs in the optimizer step."""
    batch = encode(tok, [p.self_text for p in chunk] + [p.other_text for p in chunk],
                   config.add_bos).to(device)
    res = pair_losses(model, batch, len(chunk), config, plan.site)
    loss = res["objective"].sum()
    parts = {"objective": float(res["objective"].detach().sum()),
             "batch_latent_soo": float(res["latent_soo"].sum())}
    if plan.neutral:
        start = micro_index * config.batch_size
        texts = [plan.neutral[(start + i) % len(plan.neutral)] for i in range(len(chunk))]
        kl = capability_kl(model, encode(tok, texts, config.add_bos).to(device))
        loss = loss + config.capability_weight * kl.sum()
        parts["capability_kl"] = float(kl.detach().sum())
    return loss, parts


def _is_conv1d(model: torch.nn.Module, targets: Sequence[str]) -> bool:
    """GPT-2-style Conv1D projections store weights transposed; peft must be told."""
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) for n, m in model.named_modules()
               if n.rsplit(".", 1)[-1] in targets)


def _train(lm: LoadedModel, plan: _Plan, config: TrainConfig, out: Path | None,
           ckpt: Path | None, progress: bool) -> TrainResult:
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    from ..models.sites import arch_of

    model, tok, site, pairs = lm.model, lm.tokenizer, plan.site, plan.pairs
    device = next(model.parameters()).device
    grad_flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    set_seed(config.seed)
    fingerprint = model_fingerprint(model)  # of the base model, before LoRA layers go in
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=plan.targets,
                      layers_to_transform=plan.layers,
                      layers_pattern=arch_of(model).layers.rsplit(".", 1)[-1] if plan.layers else None,
                      fan_in_fan_out=_is_conv1d(model, plan.targets),
                      bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # transformers' deprecation notice, raised inside peft
        warnings.filterwarnings("ignore", category=FutureWarning)
        peft_model = get_peft_model(model, lora)
    keep_attached = out is None
    try:
        params = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
        optimizer = torch.optim.AdamW(params.values(), lr=config.lr,
                                      weight_decay=config.weight_decay)
        per_epoch, stop_at = plan_steps(len(pairs), config)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(config, per_epoch * config.epochs))
        autocast, scaler = _autocast(config, device)
        texts = [t for p in pairs for t in (p.self_text, p.other_text)]
        texts += ["\x01"] + [t for p in plan.eval_pairs or [] for t in (p.self_text, p.other_text)]
        meta = {"config": config.resume_key(), "model": fingerprint,
                "pairs": pairs_fingerprint(texts)}

        def evaluate(step: int, epoch: int) -> list[dict]:
            sets = [("latent_soo", pairs)] + ([("heldout_latent_soo", plan.eval_pairs)]
                                              if plan.eval_pairs else [])
            return [dict(step=step, epoch=epoch, metric=name, value=latent_soo(
                peft_model, tok, ps, site, config.pooling, config.add_bos)) for name, ps in sets]

        step, rows = 0, []
        if ckpt is not None:
            step, rows, rng = load_checkpoint(ckpt, meta, params, optimizer, scheduler, scaler)
            restore_rng(rng)
        else:
            if out is not None and out.exists():
                shutil.rmtree(out)
            rows += evaluate(0, 0)

        def checkpoint(rng: dict[str, Any]) -> None:
            if out is not None:
                save_checkpoint(out, step, params, optimizer, scheduler, scaler, rng, meta, rows)

        peft_model.train()
        bar = tqdm(total=stop_at, initial=step, disable=not progress, desc="training", unit="step")
        with _stop_on_signals() as stop:
            while step < stop_at:
                epoch, k = divmod(step, per_epoch)
                group = epoch_groups(len(pairs), config, epoch)[k]
                snap = rng_snapshot()
                n_step = sum(len(mb) for mb in group)
                sums = {"objective": 0.0, "batch_latent_soo": 0.0, "capability_kl": 0.0}
                for j, mb in enumerate(group):
                    if stop["signal"] is not None:
                        break
                    with autocast():
                        loss, parts = _micro_batch_loss(peft_model, tok, [pairs[i] for i in mb],
                                                        plan, config, device,
                                                        step * config.grad_accum + j)
                        loss = loss / n_step
                    if not torch.isfinite(loss.detach()):
                        raise _nan_error(float(loss.detach()), step + 1, config, peft_model)
                    (scaler.scale(loss) if scaler is not None else loss).backward()
                    for name, v in parts.items():
                        sums[name] += v / n_step
                if stop["signal"] is not None:  # mid-step: drop the partial gradients
                    optimizer.zero_grad(set_to_none=True)
                    checkpoint(snap)
                    break
                lr = scheduler.get_last_lr()[0]
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                total = sums["objective"] + config.capability_weight * sums["capability_kl"]
                values = {"loss": total, "objective": sums["objective"], "lr": lr,
                          "batch_latent_soo": sums["batch_latent_soo"]}
                if plan.neutral:
                    values["capability_kl"] = sums["capability_kl"]
                rows += [dict(step=step, epoch=epoch, metric=m, value=v) for m, v in values.items()]
                if step % per_epoch == 0 or step == stop_at:
                    rows += evaluate(step, epoch)
                bar.update(1)
                bar.set_postfix(loss=f"{total:.4g}")
                if step % config.checkpoint_every == 0 or step == stop_at or stop["signal"]:
                    checkpoint(rng_snapshot())
                if stop["signal"] is not None:
                    break
            bar.close()
            if stop["signal"] is not None:
                where = f"; checkpoint at step {step} in {out}, continue with --resume" if out else ""
                print(f"training stopped by signal {stop['signal']} at step {step}{where}",
                      file=sys.stderr)
                raise KeyboardInterrupt
        peft_model.eval()
        df = pd.DataFrame(rows)
        df.insert(0, "condition", "sham" if config.sham else "soo")
        df.insert(1, "seed", config.seed)
        soo = df[df.metric == "latent_soo"]
        result = TrainResult(seed=config.seed, adapter_path=out, log=df,
                             initial_latent_soo=float(soo[soo.step == 0].value.iloc[0]),
                             final_latent_soo=float(soo.value.iloc[-1]), steps=step,
                             model=peft_model if keep_attached else None)
        if out is not None:
            _write_outputs(out, peft_model, result, config, plan, lm.name)
        return result
    finally:
        if not keep_attached:
            peft_model.unload()
            for n, p in model.named_parameters():
                p.requires_grad_(grad_flags.get(n, p.requires_grad))
            model.train(was_training)


def _write_outputs(out: Path, peft_model: Any, result: TrainResult, config: TrainConfig,
                   plan: _Plan, model_name: str) -> None:
    """Adapter files, log and run.json, each written atomically (run.json last: it marks a
    finished run)."""
    tmp = out / f".adapter.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        peft_model.save_pretrained(str(tmp))
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with atomic_path(out / TRAIN_LOG) as p:
        result.log.to_parquet(p, index=False)
    write_run_json(out, config.to_dict(), config.seed, model=model_name, status="complete",
                   site=str(plan.site), target_modules=plan.targets,
                   layers_to_transform=plan.layers, n_pairs=len(plan.pairs), steps=result.steps,
                   initial_latent_soo=result.initial_latent_soo,
                   final_latent_soo=result.final_latent_soo)


def train_seeds(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig,
                seeds: Sequence[int], out_dir: str | Path, resume: bool = False,
                overwrite: bool = False, progress: bool = True,
                neutral_texts: Sequence[str] | None = None,
                eval_pairs: Sequence[PromptPair] | None = None) -> list[TrainResult]:
    """One run per seed into `out_dir/seed{n}`, plus `out_dir/train_log.parquet` (all seeds)
    and `out_dir/run.json`. Inputs are checked once, before any folder is touched."""
    if not seeds:
        raise ConfigError("no seeds given; pass e.g. --seeds 1,2,3")
    out = Path(out_dir)
    prepare(lm, pairs, config, neutral_texts, eval_pairs)
    if not resume:
        check_out_dir(out, overwrite)
        if out.exists():
            shutil.rmtree(out)
    results = [train_soo(lm, pairs, dataclasses.replace(config, seed=s), out / f"seed{s}",
                         resume=resume, overwrite=overwrite, progress=progress,
                         neutral_texts=neutral_texts, eval_pairs=eval_pairs) for s in seeds]
    with atomic_path(out / TRAIN_LOG) as p:
        pd.concat([r.log for r in results]).to_parquet(p, index=False)
    write_run_json(out, {k: v for k, v in config.to_dict().items() if k != "seed"}, None,
                   model=lm.name, seeds=list(seeds),
                   final_latent_soo={f"seed{r.seed}": r.final_latent_soo for r in results},
                   initial_latent_soo=results[0].initial_latent_soo)
    return results
