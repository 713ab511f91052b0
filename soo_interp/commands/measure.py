"""`soo-interp measure`: latent SOO per (pair, layer, site) -> soo.parquet, summary.csv,
heatmap.png, layers.png, run.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_model_args, add_output_args, load_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("measure", help="latent SOO at every layer and site",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    p.add_argument("--pairs", default=None,
                   help="JSONL/CSV with 'self' and 'other' columns (default: built-in test pairs)")
    p.add_argument("--backend", default="hooks", choices=["hooks", "nnsight", "transformer_lens"])
    p.add_argument("--pooling", default="last", choices=["last", "mean", "aligned"])
    p.add_argument("--sites", default="attn,mlp,resid", help="comma list of attn,mlp,resid")
    p.add_argument("--layers", default=None, help="e.g. 0-31 or 0,4,8 (default: all)")
    p.add_argument("--batch-size", type=int, default=16, help="pairs per forward")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.pairs import load_pairs, soo_pairs
    from ..measure import MeasureConfig, measure_to_folder
    from ..runs import check_out_dir, set_seed

    check_out_dir(args.out, args.overwrite)  # fail before loading anything
    pairs = load_pairs(args.pairs) if args.pairs else soo_pairs("test")
    cfg = MeasureConfig(layers=args.layers, sites=tuple(args.sites.split(",")),
                        pooling=args.pooling, backend=args.backend, batch_size=args.batch_size,
                        seed=args.seed)
    set_seed(args.seed)
    lm = load_from_args(args)
    out = measure_to_folder(lm, pairs, cfg, Path(args.out), overwrite=args.overwrite,
                            extra={"model": args.model, "adapter": args.adapter,
                                   "pairs": args.pairs or "builtin:test"})
    print(f"wrote {out}/soo.parquet, summary.csv, heatmap.png, layers.png, run.json",
          file=sys.stderr)
