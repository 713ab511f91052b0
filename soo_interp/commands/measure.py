"""`soo-interp measure`: latent SOO per (pair, layer, component) -> soo.parquet, summary.csv,
heatmap.png, layers.png, run.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    add_config_arg,
    add_model_args,
    add_output_args,
    config_from_args,
    load_from_args,
)

_FIELDS = {"layers": "layers", "components": "components", "pooling": "pooling", "backend": "backend",
           "batch_size": "batch_size", "seed": "seed"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("measure", help="latent SOO at every layer and component",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p, seed_default=None)
    p.add_argument("--pairs", default=None,
                   help="JSONL/CSV with 'self' and 'other' columns (default: built-in test pairs)")
    p.add_argument("--backend", default=None, choices=["hooks", "nnsight", "transformer_lens"],
                   help="tracing backend (default hooks)")
    p.add_argument("--pooling", default=None, choices=["last", "mean", "aligned"],
                   help="which positions are compared (default last)")
    p.add_argument("--components", default=None, type=lambda s: tuple(s.split(",")),
                   help="comma list of attn,mlp,resid (default all three)")
    p.add_argument("--layers", default=None, help="e.g. 0-31 or 0,4,8 (default: all)")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per forward (default 16)")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.pairs import load_pairs, soo_pairs
    from ..measure import MeasureConfig, measure_to_folder
    from ..runs import check_out_dir, set_seed

    check_out_dir(args.out, args.overwrite)  # fail before loading anything
    pairs = load_pairs(args.pairs) if args.pairs else soo_pairs("test")
    cfg = config_from_args(MeasureConfig, args, _FIELDS)
    set_seed(cfg.seed)
    lm = load_from_args(args)
    out = measure_to_folder(lm, pairs, cfg, Path(args.out), overwrite=args.overwrite,
                            extra={"model": args.model, "adapter": args.adapter,
                                   "pairs": args.pairs or "builtin:test"})
    print(f"wrote {out}/soo.parquet, summary.csv, heatmap.png, layers.png, run.json",
          file=sys.stderr)
