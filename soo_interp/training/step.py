"""One optimizer step of SOO training: micro-batch losses with correctly averaged gradient
accumulation (the last partial group is kept), CUDA-only autocast, and a clear stop on a NaN/inf
loss."""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from ..data.pairs import PromptPair
from ..errors import TrainingError
from ..models.placement import input_device
from ..models.tokenize import encode
from .config import TrainConfig
from .losses import capability_kl, neutral_batch, pair_losses
from .plan import Plan, epoch_groups, plan_steps
from .state import TrainState


def autocast_for(config: TrainConfig, device: torch.device) -> tuple[Callable[[], Any], Any]:
    """Autocast context factory and grad scaler: bf16/fp16 on CUDA only, nothing on CPU."""
    if device.type != "cuda" or config.amp == "none":
        return contextlib.nullcontext, None
    bf16 = config.amp == "bf16" or (config.amp == "auto" and torch.cuda.is_bf16_supported())
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = None if bf16 else torch.amp.GradScaler("cuda")
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def _nan_error(value: float, step: int, config: TrainConfig, model: torch.nn.Module) -> TrainingError:
    dtype = next(model.parameters()).dtype
    hint = ("the model runs in float16, whose range overflows easily: load it in float32 or "
            "bfloat16 (--dtype float32), or use --amp bf16"
            if dtype == torch.float16 or config.amp == "fp16" else
            "if the model runs in reduced precision, use float32 (--dtype float32)")
    return TrainingError(f"loss is {value} at step {step}: training diverged; lower the learning "
                         f"rate (--lr, now {config.lr:g}) and start again; {hint}")


def _micro_batch_loss(model: Any, tok: Any, chunk: list[PromptPair], plan: Plan,
                      config: TrainConfig, device: torch.device,
                      micro_index: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over the micro-batch's pairs of the objective (+ weighted capability KL on as many
    neutral texts, chosen by `micro_index` so a resumed run sees the same ones), and the detached
    sums to log. The caller divides by the number of pairs in the optimizer step."""
    batch = encode(tok, [p.self_text for p in chunk] + [p.other_text for p in chunk],
                   config.add_bos, chat_template=config.chat_template)
    if config.sham and config.sham_text == "neutral":
        batch = neutral_batch(tok, batch, plan.neutral, micro_index * 2 * config.batch_size,
                              config.add_bos)
    res = pair_losses(model, batch.to(device), len(chunk), config, plan.site)
    loss = res["objective"].sum()
    parts = {"objective": float(res["objective"].detach().sum()),
             "batch_latent_soo": float(res["latent_soo"].sum())}
    if config.capability_weight > 0:
        start = micro_index * config.batch_size
        texts = [plan.neutral[(start + i) % len(plan.neutral)] for i in range(len(chunk))]
        kl = capability_kl(model, encode(tok, texts, config.add_bos, chat_template=False).to(device))
        loss = loss + config.capability_weight * kl.sum()
        parts["capability_kl"] = float(kl.detach().sum())
    return loss, parts


def train_step(model: Any, tok: Any, state: TrainState, plan: Plan, config: TrainConfig,
          autocast: Callable[[], Any], stop: dict[str, int | None]) -> dict[str, float] | None:
    """One optimizer step over the next accumulation group; the values to log, or None when a
    signal arrived mid-step (the partial gradients are dropped and the step is not taken)."""
    device = input_device(model)
    per_epoch, _ = plan_steps(len(plan.pairs), config)
    epoch, k = state.position(per_epoch)
    group = epoch_groups(len(plan.pairs), config, epoch)[k]
    n_step = sum(len(mb) for mb in group)
    sums = {"objective": 0.0, "batch_latent_soo": 0.0, "capability_kl": 0.0}
    for j, mb in enumerate(group):
        if stop["signal"] is not None:
            state.optimizer.zero_grad(set_to_none=True)
            return None
        with autocast():
            loss, parts = _micro_batch_loss(model, tok, [plan.pairs[i] for i in mb], plan,
                                            config, device, state.step * config.grad_accum + j)
            loss = loss / n_step
        if not torch.isfinite(loss.detach()):
            raise _nan_error(float(loss.detach()), state.step + 1, config, model)
        (state.scaler.scale(loss) if state.scaler is not None else loss).backward()
        for name, v in parts.items():
            sums[name] += v / n_step
    lr = state.scheduler.get_last_lr()[0]
    if state.scaler is not None:
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    values = {"loss": sums["objective"] + config.capability_weight * sums["capability_kl"],
              "objective": sums["objective"], "lr": lr,
              "batch_latent_soo": sums["batch_latent_soo"]}
    if plan.neutral:
        values["capability_kl"] = sums["capability_kl"]
    return values
