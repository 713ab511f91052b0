"""`soo-interp train`: LoRA fine-tuning that minimises latent SOO at one (layer, site), or the
sham control, for one or more seeds -> OUT/seed{n}/ (peft adapter folder, train_log.parquet,
run.json, checkpoints/), OUT/train_log.parquet and OUT/run.json."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from .common import (
    add_config_args,
    add_model_args,
    add_output_args,
    config_from_args,
    given_values,
    int_list_arg,
    load_from_args,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training import TrainConfig

    p = sub.add_parser("train", help="LoRA-train a model to minimise latent SOO (or a sham run)",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    p.add_argument("--pairs", default=None,
                   help="JSONL/CSV with 'self' and 'other' columns (default: built-in train pairs)")
    p.add_argument("--eval-pairs", default=None,
                   help="pairs whose latent SOO is logged as heldout_latent_soo: 'test' (built-in "
                        "held-out items; the default with built-in --pairs), 'none', or a file")
    add_config_args(
        p, TrainConfig,
        layer={"help": "target layer (default: 19, the paper's, when the model has it; else the "
                        "middle layer, n_layers // 2, e.g. 1 on the 3-layer organism)"},
        component={"help": "target component (default attn = o_proj output)"},
        sham={"help": "control: plain LM loss on the same pair texts, same adapter and steps"},
        amp={"help": "autocast on CUDA (ignored on CPU)"},
        batch_size={"help": "pairs per micro-batch"},
        target_modules={"help": "e.g. q_proj,v_proj (default per family)"},
        layers_to_transform={"help": "LoRA only on these layers, e.g. 0-19 (default: all)"},
        stop_grad_other={"help": "treat the other prompt's activations as a fixed target"},
        stop_grad_self={"help": "treat the self prompt's activations as a fixed target"},
        sham_text={"help": "with --sham: LM loss on the pair texts (scenario exposure, default) or "
                           "on neutral text of the same token counts (unrelated-text sham)"},
        capability_weight={"help": "weight of KL(base || tuned) on neutral text (default 0: off)"},
        checkpoint_every={"help": "optimizer steps between checkpoints (default 50)"},
        tensorboard={"help": "also log to TensorBoard in OUT/seed{n}/tensorboard (needs the "
                     "tensorboard extra)"})
    p.add_argument("--seeds", type=int_list_arg, default=None,
                   help="comma list of seeds, one adapter per seed (default: --seed)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoints in --out (their config and seeds "
                        "are reused; flags given must agree with them)")
    p.add_argument("--neutral", default=None, help="neutral texts for the capability term, one "
                   "per line (default: the train split of soo_interp.data.neutral)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.pairs import load_pairs, soo_pairs
    from ..errors import ConfigError
    from ..runs import check_out_dir, check_resume_or_overwrite, read_user_text
    from ..training import TrainConfig, train_seeds
    from ..training.config import default_layer
    from ..training.resume import check_seeds, resumed_config, saved_run

    check_resume_or_overwrite(args.resume, args.overwrite)
    check_out_dir(args.out, args.overwrite, kind="train", resume=args.resume)  # before loading
    saved = saved_run(args.out) if args.resume else None
    if args.resume and saved is None:
        raise ConfigError(f"nothing to resume in {args.out} (no run.json: the run never started "
                          "there, or was stopped before it wrote one); run the same command "
                          "without --resume to start it")
    if saved is not None:  # the run as it was started; contradicting flags are refused
        config = resumed_config(saved[0], given_values(TrainConfig, args))
        seeds = check_seeds(saved[1], args.seeds)
        for name, value in saved[2].items():  # input files of the run, unless given again
            if getattr(args, name, None) is None:
                setattr(args, name, value)
    else:
        config = config_from_args(TrainConfig, args)
        seeds = args.seeds or [config.seed]
    pairs = load_pairs(args.pairs) if args.pairs else soo_pairs("train")
    which = args.eval_pairs or ("none" if args.pairs else "test")
    eval_pairs = (None if which == "none" else soo_pairs("test") if which == "test"
                  else load_pairs(which))
    neutral = None
    if args.neutral:
        text = read_user_text(args.neutral, "neutral text file (--neutral)")
        neutral = [line for line in text.splitlines() if line.strip()]
    lm = load_from_args(args)
    if saved is None and "layer" not in given_values(TrainConfig, args):
        config = dataclasses.replace(config, layer=default_layer(lm.n_layers))
    results = train_seeds(lm, pairs, config, seeds, args.out, resume=args.resume,
                          overwrite=args.overwrite, progress=not args.quiet, neutral_texts=neutral,
                          eval_pairs=eval_pairs,
                          extra={"inputs": {"pairs": args.pairs, "eval_pairs": args.eval_pairs,
                                            "neutral": args.neutral}})
    for r in results:
        print(f"seed {r.seed}: latent SOO at L{config.layer}.{config.component} "
              f"{r.initial_latent_soo:.4g} -> {r.final_latent_soo:.4g} ({r.steps} steps); "
              f"adapter {r.adapter_path}", file=sys.stderr)
