"""`soo-interp evaluate`: deception rates on the scenarios -> responses.parquet, rates.csv,
rates.png, position_bias.png (with --mirrored), agreement.csv (with --scoring both), run.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_model_args, add_output_args, load_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..data.scenarios import ANSWER_FORMATS

    p = sub.add_parser("evaluate", help="deception rates on the scenarios, with 95%% CIs",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    p.add_argument("--scenarios", default="burglar",
                   help="comma list of scenario[:variant], e.g. burglar,generalization:name "
                        "(a bare name means all its variants)")
    p.add_argument("--mirrored", action="store_true",
                   help="score every prompt in both option orders (position-bias figure)")
    p.add_argument("--scoring", default="generate", choices=["generate", "logprob", "both"])
    p.add_argument("--n", type=int, default=250, help="prompts per scenario variant (250)")
    p.add_argument("--answer-format", default="i_would", choices=list(ANSWER_FORMATS))
    p.add_argument("--chat-template", action="store_true",
                   help="wrap prompts in the tokenizer's chat template")
    p.add_argument("--max-new-tokens", type=int, default=75, help="greedy tokens (75)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per forward")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import pandas as pd

    from ..evaluation.rates import rates_table
    from ..evaluation.run import EvalConfig, build_records, evaluate_to_folder
    from ..runs import check_out_dir

    cfg = EvalConfig(scenarios=tuple(s for s in args.scenarios.split(",") if s.strip()),
                     scoring=args.scoring, n=args.n, seed=args.seed,
                     mirrored="both" if args.mirrored else False,
                     answer_format=args.answer_format, chat_template=args.chat_template,
                     max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    check_out_dir(args.out, args.overwrite)  # fail before loading anything
    build_records(cfg.scenarios, cfg.n, cfg.seed, cfg.mirrored, cfg.answer_format)  # bad names
    lm = load_from_args(args)
    out = evaluate_to_folder(lm, cfg, Path(args.out), overwrite=args.overwrite,
                             extra={"model": args.model, "adapter": args.adapter})
    table = rates_table(pd.read_csv(out / "rates.csv"))
    print(table.drop(columns=["model"]).to_string(index=False))
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}", file=sys.stderr)
