"""`soo-interp sweep`: which layer to train on? SOO vs sham adapters at each layer, with
deception, control and capability outcomes. Each cell (one training run and its measurements)
is its own folder under OUT/cells; rerunning the same command does only the missing cells.
Then OUT/sweep.parquet, sweep.csv (summary), sweep.png, sweep.json."""
from __future__ import annotations

import argparse
import sys

from .common import out_path

# a cell sets these training keys itself, so they get no --train.KEY flag
_PER_CELL = tuple(f"train.{k}" for k in ("layer", "component", "loss", "seed", "sham"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments import SweepConfig
    from .common import add_config_args, add_executor_args, add_placement_args

    p = sub.add_parser("sweep", help="ablate the training layer: SOO vs sham at each layer",
                       description=__doc__)
    p.add_argument("--model", default="organism", help="model name or path (default organism)")
    p.add_argument("--out", required=True, type=out_path, help="sweep folder (an existing sweep is resumed)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing folder first")
    add_config_args(p, SweepConfig, skip=_PER_CELL,
                    layers={"help": "layers to train on (default: all)"},
                    components={"help": "comma list of attn,mlp,resid to train at (default attn)"},
                    losses={"help": "comma list of mse,cosine,kl_logits (default mse)"},
                    seeds={"help": "comma list of seeds (default 0)"},
                    sham={"help": "train the sham control runs (default; --no-sham skips them)"},
                    scenarios={"help": "comma list of scenarios (default: all)"},
                    n={"help": "prompts per scenario variant (default 50)"},
                    workers={"help": "cells at once (default 2 local processes; 1 = in this process)"},
                    **{f"train.{k}": {"aliases": (f"--{k}",)} for k in ("pooling", "epochs", "lr")})
    add_executor_args(p, workers=False)
    add_placement_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ..experiments import SweepConfig, sweep
    from ..experiments.reports import write_summary
    from .common import config_from_args, executor_from_args, load_kwargs

    cfg = config_from_args(SweepConfig, args)
    res = sweep(args.model, None, cfg, out=args.out, executor=executor_from_args(args),
                load=load_kwargs(args), overwrite=args.overwrite, progress=not args.quiet)
    write_summary(args.out, res.df,
                  title=f"{args.model}: SOO vs sham by trained layer ({','.join(cfg.components)})")
    print(f"cells: {res.ran} run, {res.reused} reused, {len(res.failed)} failed; wrote "
          f"{Path(args.out)}/sweep.parquet, sweep.csv, sweep.png", file=sys.stderr)
    res.check()
