"""`soo-interp demo`: latent SOO heatmap and deception/control rates of the built-in organism."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the built-in model organism",
                       description=__doc__)
    p.add_argument("--model", default="organism", help="model to run on (default: organism)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--n", type=int, default=50, help="prompts per scenario variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figures", default="figures", help="folder the figures are copied to")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import torch

    from ..demo import DemoConfig, run_demo

    if args.model == "organism":
        torch.set_num_threads(1)  # a 0.7M-parameter model runs fastest on one CPU thread

    out = run_demo(DemoConfig(model=args.model, n=args.n, seed=args.seed, figures=args.figures),
                   args.out, overwrite=args.overwrite)
    print((out / "report.md").read_text())
    print(f"wrote {out}/ (report.md, measure/, evaluate/) and figures to {args.figures}/",
          file=sys.stderr)
