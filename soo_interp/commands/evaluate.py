"""`soo-interp evaluate`: deception rates on the scenarios -> responses.parquet, rates.csv,
rates.png, position_bias.png (with --mirrored), agreement.csv (with --scoring both), run.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_config_args, add_model_args, add_output_args, config_from_args, load_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.run import EvalConfig

    p = sub.add_parser("evaluate", help="deception rates on the scenarios, with 95%% CIs",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    add_config_args(
        p, EvalConfig,
        scenarios={"help": "comma list of scenario[:variant], e.g. burglar,generalization:name "
                   "(a bare name means all its variants; default burglar)"},
        mirrored={"action": "store_const", "const": "both",
                  "help": "score every prompt in both option orders (position-bias figure)"},
        n={"help": "prompts per scenario variant (250)"},
        layout={"help": "which room the story describes first: paper (the cheap one), "
                        "honest_first, or both (a description-order control)"},
        max_new_tokens={"help": "greedy tokens (75)"},
        batch_size={"help": "prompts per forward (8)"})
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import pandas as pd

    from ..evaluation.rates import rates_table
    from ..evaluation.run import EvalConfig, build_records, evaluate_to_folder
    from ..runs import check_out_dir

    cfg = config_from_args(EvalConfig, args)
    check_out_dir(args.out, args.overwrite, kind="evaluate")  # fail before loading anything
    build_records(cfg.scenarios, cfg.n, cfg.seed, cfg.mirrored, cfg.answer_format,  # bad names
                  cfg.split, cfg.layout)
    lm = load_from_args(args)
    out = evaluate_to_folder(lm, cfg, out=Path(args.out), overwrite=args.overwrite,
                             extra={"model": args.model, "adapter": args.adapter},
                             progress=not args.quiet)
    table = rates_table(pd.read_csv(out / "rates.csv"))
    print(table.drop(columns=["model"]).to_string(index=False))
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}", file=sys.stderr)
