"""`soo-interp demo`: latent SOO heatmap and deception/control rates of the built-in organism."""
from __future__ import annotations

import argparse
import sys

from .common import out_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..demo import DemoConfig
    from .common import add_config_args

    p = sub.add_parser("demo", help="the main job on the built-in model organism",
                       description=__doc__)
    p.add_argument("--out", default="runs/demo", type=out_path, help="output folder (default runs/demo)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_config_args(p, DemoConfig,
                    model={"help": "model to run on (default: organism)"},
                    n={"help": "prompts per scenario variant (default 50 on the organisms, 20 "
                               "on other models, e.g. smollm2-135m-instruct)"},
                    figures={"help": "folder the figures are copied to (default figures)"})
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import torch

    from ..demo import DemoConfig, run_demo
    from .common import config_from_args

    cfg = config_from_args(DemoConfig, args)
    if cfg.model.startswith("organism"):
        torch.set_num_threads(1)  # a sub-million-parameter model runs fastest on one thread

    out = run_demo(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet)
    print((out / "report.md").read_text())
    print(f"wrote {out}/ (report.md, measure/, evaluate/) and figures to {cfg.figures}/",
          file=sys.stderr)
