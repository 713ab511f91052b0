"""`soo-interp train`: LoRA fine-tuning that minimises latent SOO at one (layer, site), or the
sham control, for one or more seeds -> OUT/seed{n}/ (peft adapter folder, train_log.parquet,
run.json, checkpoints/), OUT/train_log.parquet and OUT/run.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_model_args, add_output_args, int_list_arg, load_from_args

# CLI flag -> TrainConfig field, for flags that override --config only when given.
_OVERRIDES = {
    "layer": "layer", "component": "component", "loss": "loss", "pooling": "pooling", "epochs": "epochs",
    "lr": "lr", "batch_size": "batch_size", "grad_accum": "grad_accum", "lora_r": "lora_r",
    "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "max_steps": "max_steps",
    "checkpoint_every": "checkpoint_every", "capability_weight": "capability_weight",
    "amp": "amp", "lr_schedule": "lr_schedule", "warmup_steps": "warmup_steps",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="LoRA-train a model to minimise latent SOO (or a sham run)",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    p.add_argument("--config", default=None, help="TrainConfig YAML; flags given here override it")
    p.add_argument("--pairs", default=None,
                   help="JSONL/CSV with 'self' and 'other' columns (default: built-in train pairs)")
    p.add_argument("--eval-pairs", default=None,
                   help="pairs whose latent SOO is logged as heldout_latent_soo: 'test' (built-in "
                        "held-out items; the default with built-in --pairs), 'none', or a file")
    p.add_argument("--layer", type=int, default=None, help="target layer (default 19, the paper's)")
    p.add_argument("--component", default=None, choices=["attn", "mlp", "resid"],
                   help="target component (default attn = o_proj output)")
    p.add_argument("--loss", default=None, choices=["mse", "cosine", "kl_logits"])
    p.add_argument("--pooling", default=None, choices=["last", "mean", "aligned"])
    p.add_argument("--sham", action="store_true",
                   help="control: plain LM loss on the same pair texts, same adapter and steps")
    p.add_argument("--seeds", type=int_list_arg, default=None,
                   help="comma list of seeds, one adapter per seed (default: --seed)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoints in --out (their config and seeds "
                        "are reused; flags given must agree with them)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lr-schedule", default=None, choices=["constant", "linear"])
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="pairs per micro-batch")
    p.add_argument("--grad-accum", type=int, default=None)
    p.add_argument("--lora-r", type=int, default=None)
    p.add_argument("--lora-alpha", type=int, default=None)
    p.add_argument("--lora-dropout", type=float, default=None)
    p.add_argument("--target-modules", default=None, help="e.g. q_proj,v_proj (default per family)")
    p.add_argument("--layers-to-transform", type=int_list_arg, default=None,
                   help="LoRA only on these layers, e.g. 0-19 (default: all)")
    p.add_argument("--stop-grad-other", action="store_true",
                   help="treat the other prompt's activations as a fixed target")
    p.add_argument("--capability-weight", type=float, default=None,
                   help="weight of KL(base || tuned) on neutral text (default 0: off)")
    p.add_argument("--neutral", default=None, help="neutral texts for the capability term, one "
                   "per line (default: the train split of soo_interp.data.neutral)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=None, help="optimizer steps")
    p.add_argument("--amp", default=None, choices=["auto", "none", "bf16", "fp16"],
                   help="autocast on CUDA (ignored on CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, saved: dict | None = None):
    """TrainConfig from --config YAML (or the `saved` config of the run being resumed), then
    the flags that were given."""
    from ..training import TrainConfig

    base = TrainConfig.from_yaml(args.config).to_dict() if args.config else dict(saved or {})
    data = {k: v for k, v in base.items() if k != "seed"}
    data.update({field: getattr(args, flag) for flag, field in _OVERRIDES.items()
                 if getattr(args, flag) is not None})
    if args.target_modules is not None:
        data["target_modules"] = args.target_modules
    if args.layers_to_transform is not None:
        data["layers_to_transform"] = args.layers_to_transform
    if args.sham:
        data["sham"] = True
    if args.stop_grad_other:
        data["stop_grad_other"] = True
    data["seed"] = args.seed
    return TrainConfig.from_dict(data)


def run(args: argparse.Namespace) -> None:
    from ..data.pairs import load_pairs, soo_pairs
    from ..errors import ConfigError
    from ..runs import check_out_dir
    from ..training import train_seeds
    from ..training.checkpoint import saved_run_config

    saved = None
    if not args.resume:
        check_out_dir(args.out, args.overwrite)  # fail before loading anything
    else:
        saved = saved_run_config(Path(args.out))
    config = config_from_args(args, saved[0] if saved else None)
    seeds = args.seeds or (saved[1] if saved else [config.seed])
    pairs = load_pairs(args.pairs) if args.pairs else soo_pairs("train")
    which = args.eval_pairs or ("none" if args.pairs else "test")
    eval_pairs = (None if which == "none" else soo_pairs("test") if which == "test"
                  else load_pairs(which))
    neutral = None
    if args.neutral:
        path = Path(args.neutral)
        if not path.is_file():
            raise ConfigError(f"neutral text file {path} does not exist; check --neutral")
        neutral = [line for line in path.read_text().splitlines() if line.strip()]
    lm = load_from_args(args)
    results = train_seeds(lm, pairs, config, seeds, args.out, resume=args.resume,
                          overwrite=args.overwrite, progress=not args.quiet, neutral_texts=neutral,
                          eval_pairs=eval_pairs)
    for r in results:
        print(f"seed {r.seed}: latent SOO at L{config.layer}.{config.component} "
              f"{r.initial_latent_soo:.4g} -> {r.final_latent_soo:.4g} ({r.steps} steps); "
              f"adapter {r.adapter_path}", file=sys.stderr)
