"""`soo-interp search`: a staged search over SOO configurations, each against its sham control,
in resumable cells on any executor (local processes, Ray, submitit) -> outcomes.parquet,
effects.csv, configs.csv, report.md, pareto.png, effect_heatmap.png, search.json, run.json.
Rerun the same command to resume."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import out_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments.search import SearchConfig
    from .common import add_config_args, add_executor_args

    p = sub.add_parser("search", help="search SOO configurations against sham (resumable)",
                       description=__doc__)
    p.add_argument("--model", default="organism", help="model name or path (default organism)")
    p.add_argument("--out", required=True, type=out_path, help="search folder (rerun to resume)")
    add_config_args(p, SearchConfig, lrs={"help": "comma list of learning rates"},
                    capability_weights={"help": "comma list of weights"},
                    signatures={"help": "fit probes per trained cell for the self-deception "
                                        "signatures before/after (default; --no-signatures "
                                        "skips them)"})
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..experiments.reports import write_search_report
    from ..experiments.search import SearchConfig, search, space_size
    from .common import config_from_args, executor_from_args

    cfg = config_from_args(SearchConfig, args)
    grid_size = space_size(args.model, cfg)  # an empty space fails here
    ranked = search(args.model, cfg, out=args.out, progress=not args.quiet,
                    executor=executor_from_args(args))
    write_search_report(Path(args.out), ranked, grid_size)
    print(f"wrote {args.out}/report.md, configs.csv, effects.csv, pareto.png, "
          "effect_heatmap.png", file=sys.stderr)
