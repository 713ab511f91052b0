"""`soo-interp measure`: latent SOO per (pair, layer, component) -> soo.parquet, summary.csv,
heatmap.png, layers.png, run.json."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_config_args,
    add_model_args,
    add_output_args,
    add_quiet,
    config_from_args,
    load_from_args,
    say,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..measure import MeasureConfig
    from .common import REMOTE_FLAG

    p = sub.add_parser("measure", help="latent SOO at every layer and component",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    add_quiet(p)
    p.add_argument("--pairs", default=None,
                   help="JSONL/CSV with 'self' and 'other' columns (default: built-in test pairs)")
    add_config_args(
        p, MeasureConfig,
        backend={"help": "tracing backend (default hooks)"},
        pooling={"help": "which positions are compared (default last)"},
        components={"help": "comma list of attn,mlp,resid (default all three)"},
        layers={"help": "e.g. 0-31 or 0,4,8 (default: all)"},
        batch_size={"help": "pairs per forward (default 16)"},
        add_bos={"help": "prepend BOS (default: when the tokenizer has one)"},
        max_prompt_tokens={"help": "refuse longer prompts before any forward (default: the "
                                   "model's context)"},
        raw={"action": "store_const", "const": True,
             "help": "figures show raw latent SOO (MSE, log scale) instead of the normalised "
                     "overlap"},
        remote=REMOTE_FLAG)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.pairs import load_pairs, soo_pairs
    from ..measure import MeasureConfig, measure_to_folder
    from ..runs import check_out_dir, set_seed

    check_out_dir(args.out, args.overwrite, kind="measure")  # fail before loading anything
    pairs = load_pairs(args.pairs) if args.pairs else soo_pairs("test")
    cfg = config_from_args(MeasureConfig, args)
    set_seed(cfg.seed)
    lm = load_from_args(args)
    out = measure_to_folder(lm, pairs, cfg, out=Path(args.out), overwrite=args.overwrite,
                            extra={"model": args.model, "adapter": args.adapter,
                                   "pairs": args.pairs or "builtin:test"},
                            progress=not args.quiet)
    say(args, f"wrote {out}/soo.parquet, summary.csv, heatmap.png, layers.png, run.json")
