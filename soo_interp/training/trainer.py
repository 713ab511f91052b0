"""The SOO LoRA training loop: one batched forward per micro-batch, correctly averaged gradient
accumulation (the last partial group is kept), CUDA-only autocast, atomic checkpoints with exact
resume, checkpoint-then-exit on SIGTERM/SIGINT, and a clear stop on a NaN/inf loss.

In parts: `prepare` (every check on the inputs), `_adapter` (LoRA on the model for the run, and
the model restored after), `TrainState` (optimizer, scheduler, RNG, data position; save/load),
`train_step` (one optimizer step, in `training.step`), `_finish` (the result and its files)."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd
import torch

from ..data.pairs import PromptPair, soo_pairs
from ..errors import ConfigError, Interrupted, raise_interrupted, signals_handled
from ..models.fingerprint import model_fingerprint
from ..models.loading import LoadedModel, adapter_attached, attach_adapter, peft_deprecation_silenced
from ..models.placement import init_lora, input_device
from ..models.sites import arch_of
from ..models.wrap import as_loaded_model
from ..runs import (
    RUN_JSON,
    atomic_path,
    check_out_dir,
    check_resume_or_overwrite,
    claim_dir,
    claimed,
    remove_stale,
    set_seed,
    write_run_json,
)
from .checkpoint import CHECKPOINTS, checkpoint_dirs, pairs_fingerprint, rng_snapshot
from .config import TrainConfig, unbridge_adapter
from .losses import latent_soo
from .plan import Plan, plan_steps, prepare
from .resume import TRAIN_LOG, check_same_model, finished, finished_log
from .state import TrainState, new_state
from .step import autocast_for, train_step

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What a run produced. `log` is long: condition (soo|sham), seed, step, epoch, metric,
    value (metrics `loss`, `objective`, `capability_kl`, `lr`, `batch_latent_soo` per step;
    `latent_soo` over all training pairs in eval mode, and `heldout_latent_soo` over
    `eval_pairs` if given, at step 0, each epoch end and the last step). The trained LoRA is
    in `adapter_path` (with an `out`) or held here (`adapter`: its weights on the CPU,
    `lora_config`); the caller's model is left as it was either way: `attach` puts it on."""

    seed: int
    adapter_path: Path | None
    log: pd.DataFrame
    initial_latent_soo: float
    final_latent_soo: float
    steps: int
    adapter: dict[str, torch.Tensor] | None = None
    lora_config: Any = None

    def attach(self, lm: Any) -> Any:
        """A `PeftModel` of `lm`'s model with this run's LoRA on it (unmerged). This changes
        that model until `.unload()` (or `models.loading.detach_adapter`) removes the LoRA."""
        from peft import get_peft_model, set_peft_model_state_dict

        model = as_loaded_model(lm).model
        if self.adapter is None:
            return attach_adapter(model, self.adapter_path, merge=False)
        with peft_deprecation_silenced():
            peft_model = get_peft_model(model, self.lora_config)
        init_lora(peft_model, self.seed)  # real tensors on offloaded modules, then overwritten
        set_peft_model_state_dict(peft_model, self.adapter)
        return peft_model


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[dict[str, int | None]]:
    """Record SIGINT/SIGTERM instead of dying mid-step; the loop checkpoints, then exits. A
    second signal interrupts at once (for a run stuck where the flag is never read)."""
    flag: dict[str, int | None] = {"signal": None}

    def handler(signum: int, frame: Any) -> None:
        if flag["signal"] is not None:
            raise_interrupted(signum, frame)
        flag["signal"] = signum

    with signals_handled(handler):
        yield flag


def train_soo(model: Any, pairs: Sequence[PromptPair] | None = None,
              config: TrainConfig | None = None, *, out: str | Path | None = None,
              resume: bool = False, overwrite: bool = False, progress: bool = True,
              neutral_texts: Sequence[str] | None = None,
              eval_pairs: Sequence[PromptPair] | None = None, **overrides: Any) -> TrainResult:
    """Train a LoRA adapter that lowers latent SOO at `Site(config.layer, config.component)`
    (or, with `config.sham`, a plain LM loss on the same pair texts) and return a `TrainResult`.
    `pairs`: the training pairs (None: the built-in `soo_pairs("train")`); `config` a
    `TrainConfig` (None: the defaults), `overrides` any of its fields, e.g.
    `train_soo(lm, pairs, layer=1, epochs=2)`.
    `eval_pairs` (e.g. `soo_pairs("test")`) are measured beside the training pairs whenever
    latent SOO is logged (metric `heldout_latent_soo`).

    With `out`, the folder becomes a peft adapter folder (`adapter_config.json`,
    `adapter_model.safetensors`) with `train_log.parquet` (rewritten at every checkpoint, so it
    grows as the run goes), `run.json` and `checkpoints/`; without, the result holds the LoRA
    weights. `lm.model` is left as it was in both cases (`result.attach(lm)` puts the LoRA on).
    `model`: a `LoadedModel` or any model `as_loaded_model` accepts.
    `resume=True` continues exactly from the newest checkpoint (a missing folder starts fresh);
    an existing folder is refused unless `resume` or `overwrite`.
    """
    config = TrainConfig.with_overrides(config, **overrides)
    lm = as_loaded_model(model)
    pairs = soo_pairs("train") if pairs is None else pairs
    plan = prepare(lm, pairs, config, neutral_texts, eval_pairs)
    out = Path(out) if out is not None else None
    ckpt = None
    if out is None:
        return _train(lm, plan, config, out, ckpt, progress)
    check_resume_or_overwrite(resume, overwrite)
    check_out_dir(out, overwrite, kind="train", resume=resume)
    with claimed(out):  # one process at a time trains into `out`
        if resume and out.exists():
            remove_stale(out / CHECKPOINTS)
            found = checkpoint_dirs(out)
            ckpt = found[-1] if found else None  # killed before its first checkpoint: start over
        return _train(lm, plan, config, out, ckpt, progress)


def _is_conv1d(model: torch.nn.Module, targets: Sequence[str]) -> bool:
    """GPT-2-style Conv1D projections store weights transposed; peft must be told."""
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) for n, m in model.named_modules()
               if any(n.endswith("." + t) for t in targets))


def _fresh_lora(model: torch.nn.Module, plan: Plan, config: TrainConfig) -> Any:
    """The model with fresh LoRA layers for this run (see `models.loading.adapter_attached`)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=plan.targets,
                      layers_to_transform=plan.layers,
                      layers_pattern=arch_of(model).layers.rsplit(".", 1)[-1] if plan.layers else None,
                      fan_in_fan_out=_is_conv1d(model, plan.targets),
                      bias="none", task_type="CAUSAL_LM")
    with peft_deprecation_silenced():
        peft_model = get_peft_model(model, lora)
    init_lora(peft_model, config.seed)
    return peft_model


def _latent_soo_rows(model: Any, tok: Any, plan: Plan, config: TrainConfig, step: int,
                     epoch: int) -> list[dict]:
    """Latent SOO over the training pairs (and the held-out pairs, if any) for the log."""
    sets = [("latent_soo", plan.pairs)] + ([("heldout_latent_soo", plan.eval_pairs)]
                                           if plan.eval_pairs else [])
    return [dict(step=step, epoch=epoch, metric=name,
                 value=latent_soo(model, tok, ps, plan.site, config.pooling, config.add_bos,
                                  chat_template=config.chat_template))
            for name, ps in sets]


def _tensorboard(out: Path | None, config: TrainConfig) -> Any:
    """A TensorBoard writer in `out/tensorboard` when `config.tensorboard`, else None."""
    if not config.tensorboard:
        return None
    if out is None:
        raise ConfigError("tensorboard logging needs an output folder; pass out (--out)")
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError("--tensorboard needs the tensorboard package; "
                          "pip install 'soo-interp[tensorboard]'") from e
    return SummaryWriter(str(out / "tensorboard"))


def _log_frame(rows: list[dict], config: TrainConfig) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["step", "epoch", "metric", "value"])
    df.insert(0, "condition", "sham" if config.sham else "soo")
    df.insert(1, "seed", config.seed)
    return df


def _train(lm: LoadedModel, plan: Plan, config: TrainConfig, out: Path | None,
           ckpt: Path | None, progress: bool) -> TrainResult:
    from tqdm.auto import tqdm

    model, tok = lm.model, lm.tokenizer
    device = input_device(model)
    set_seed(config.seed)
    meta = _run_meta(model, plan, config)  # the base model's fingerprint, before LoRA goes in
    with adapter_attached(model, lambda m: _fresh_lora(m, plan, config)) as peft_model:
        per_epoch, stop_at = plan_steps(len(plan.pairs), config)
        autocast, scaler = autocast_for(config, device)
        state = new_state(peft_model, config, per_epoch * config.epochs, device, scaler)
        if ckpt is not None:
            state.load(ckpt, meta)
        else:
            if out is not None:
                claim_dir(out, "train", overwrite=True)
            state.log += _latent_soo_rows(peft_model, tok, plan, config, 0, 0)

        def checkpoint(rng: dict[str, Any] | None = None) -> None:
            if out is not None:  # the log reaches disk with every checkpoint
                state.save(out, meta, rng)
                with atomic_path(out / TRAIN_LOG) as p:
                    _log_frame(state.log, config).to_parquet(p, index=False)

        tracker = _tensorboard(out, config)
        peft_model.train()
        bar = tqdm(total=stop_at, initial=state.step, disable=not progress, desc="training",
                   unit="step")
        with _stop_on_signals() as stop:
            while state.step < stop_at:
                snap = rng_snapshot()
                values = train_step(peft_model, tok, state, plan, config, autocast, stop)
                if values is None:  # interrupted mid-step: resume redoes this step
                    checkpoint(snap)
                    break
                epoch = (state.step - 1) // per_epoch
                rows = [dict(step=state.step, epoch=epoch, metric=m, value=v)
                        for m, v in values.items()]
                if state.step % per_epoch == 0 or state.step == stop_at:
                    rows += _latent_soo_rows(peft_model, tok, plan, config, state.step, epoch)
                state.log += rows
                for r in rows if tracker is not None else ():
                    tracker.add_scalar(r["metric"], r["value"], r["step"])
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.4g}")
                if (state.step % config.checkpoint_every == 0 or state.step == stop_at
                        or stop["signal"]):
                    checkpoint()
                if stop["signal"] is not None:
                    break
            bar.close()
            if tracker is not None:
                tracker.close()
            if stop["signal"] is not None:
                _interrupted(stop["signal"], state.step, out)
        return _finish(peft_model, state, plan, config, out, lm.name, lm.source)


def _run_meta(model: torch.nn.Module, plan: Plan, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: config, base model, pairs."""
    texts = [t for p in plan.pairs for t in (p.self_text, p.other_text)]
    texts += ["\x01"] + [t for p in plan.eval_pairs or [] for t in (p.self_text, p.other_text)]
    return {"config": config.resume_key(), "model": model_fingerprint(model),
            "pairs": pairs_fingerprint(texts)}


def _interrupted(signum: int, step: int, out: Path | None) -> None:
    where = f"; checkpoint at step {step} in {out}, continue with --resume" if out else ""
    print(f"training stopped by signal {signum} at step {step}{where}", file=sys.stderr)
    raise Interrupted(signum)


def _finish(peft_model: Any, state: TrainState, plan: Plan, config: TrainConfig,
            out: Path | None, model_name: str, source: dict | None = None) -> TrainResult:
    """The `TrainResult`; with `out`, also the adapter files, log and run.json (each written
    atomically; run.json last: it marks a finished run)."""
    peft_model.eval()
    df = _log_frame(state.log, config)
    soo = df[df.metric == "latent_soo"]
    result = TrainResult(seed=config.seed, adapter_path=out, log=df,
                         initial_latent_soo=float(soo[soo.step == 0].value.iloc[0]),
                         final_latent_soo=float(soo.value.iloc[-1]), steps=state.step)
    if out is None:  # the weights leave with the result; the caller's model gets none
        from peft import get_peft_model_state_dict

        result.adapter = {k: v.detach().to("cpu", copy=True)
                          for k, v in get_peft_model_state_dict(peft_model).items()}
        result.lora_config = copy.deepcopy(peft_model.peft_config["default"])
        return result
    tmp = out / f".adapter.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        peft_model.save_pretrained(str(tmp))
        unbridge_adapter(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with atomic_path(out / TRAIN_LOG) as p:
        df.to_parquet(p, index=False)
    write_run_json(out, config.to_dict(), config.seed, model=model_name, status="complete",
                   model_source=source,
                   site=str(plan.site), target_modules=plan.targets,
                   layers_to_transform=plan.layers, n_pairs=len(plan.pairs), steps=state.step,
                   initial_latent_soo=result.initial_latent_soo,
                   final_latent_soo=result.final_latent_soo)
    return result


def train_seeds(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig,
                seeds: Sequence[int], out: str | Path, resume: bool = False,
                overwrite: bool = False, progress: bool = True,
                neutral_texts: Sequence[str] | None = None,
                eval_pairs: Sequence[PromptPair] | None = None,
                extra: dict[str, Any] | None = None) -> list[TrainResult]:
    """One run per seed into `out/seed{n}`, plus `out/train_log.parquet` (all seeds)
    and `out/run.json` (written first with status `running`: the settings, seeds, base
    model and `extra` (e.g. the input files) a resume continues). Inputs are checked once,
    before any folder is touched. `resume=True` skips seeds whose folder is complete and
    continues or starts every other one."""
    if not seeds:
        raise ConfigError("no seeds given; pass e.g. --seeds 1,2,3")
    out = Path(out)
    lm = as_loaded_model(lm)
    prepare(lm, pairs, config, neutral_texts, eval_pairs)
    settings = {k: v for k, v in config.to_dict().items() if k != "seed"}
    check_resume_or_overwrite(resume, overwrite)
    check_out_dir(out, overwrite, kind="train", resume=resume)
    with claimed(out):
        return _train_seeds(lm, pairs, config, seeds, out, resume, overwrite, progress,
                            neutral_texts, eval_pairs, extra, settings)


def _train_seeds(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig,
                 seeds: Sequence[int], out: Path, resume: bool, overwrite: bool, progress: bool,
                 neutral_texts: Sequence[str] | None, eval_pairs: Sequence[PromptPair] | None,
                 extra: dict[str, Any] | None, settings: dict[str, Any]) -> list[TrainResult]:
    """`train_seeds` once `out` is this process's."""
    if resume and out.exists():
        check_out_dir(out, kind="train", resume=True)
    else:
        claim_dir(out, "train", overwrite)
    extra = {**(extra or {}), "base_model": model_fingerprint(lm.model)}
    if (out / RUN_JSON).is_file():
        check_same_model(out, extra["base_model"])
    else:
        write_run_json(out, settings, None, model=lm.name, seeds=list(seeds), status="running",
                       **extra)
    results = [_seed_run(lm, pairs, dataclasses.replace(config, seed=s), out / f"seed{s}",
                         resume, overwrite, progress, neutral_texts, eval_pairs) for s in seeds]
    with atomic_path(out / TRAIN_LOG) as p:
        pd.concat([r.log for r in results]).to_parquet(p, index=False)
    write_run_json(out, settings, None, model=lm.name, seeds=list(seeds), status="complete",
                   **extra, final_latent_soo={f"seed{r.seed}": r.final_latent_soo for r in results},
                   initial_latent_soo=results[0].initial_latent_soo)
    return results


def _seed_run(lm: LoadedModel, pairs: Sequence[PromptPair], config: TrainConfig, folder: Path,
              resume: bool, overwrite: bool, progress: bool,
              neutral_texts: Sequence[str] | None,
              eval_pairs: Sequence[PromptPair] | None) -> TrainResult:
    """One seed of `train_seeds`: read back when a resumed run already finished it."""
    done = finished(folder) if resume else None
    if done is None:
        return train_soo(lm, pairs, config, out=folder, resume=resume, overwrite=overwrite,
                         progress=progress, neutral_texts=neutral_texts, eval_pairs=eval_pairs)
    return TrainResult(seed=config.seed, adapter_path=folder, log=finished_log(folder),
                       initial_latent_soo=done["initial_latent_soo"],
                       final_latent_soo=done["final_latent_soo"], steps=done["steps"])
