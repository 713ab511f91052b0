"""`soo-interp verdict`: the best configurations of a finished search re-run on fresh seeds, SOO
and sham side by side with 95% CIs -> verdict.csv, verdict.md, outcomes.parquet, run.json (cells
resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import out_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments.verdict import VerdictConfig
    from .common import add_config_args, add_executor_args

    p = sub.add_parser("verdict", help="re-run a search's best configurations on fresh seeds",
                       description=__doc__)
    p.add_argument("--search", required=True, help="a finished `soo-interp search` folder")
    p.add_argument("--out", required=True, type=out_path, help="verdict folder (rerun to resume)")
    add_config_args(p, VerdictConfig, top={"help": "configurations to re-run (default 3)"},
                    seeds={"help": "fresh seeds, none used by the search (default 100,101,102)"})
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..experiments.reports import write_verdict_report
    from ..experiments.search import check_complete
    from ..experiments.verdict import VerdictConfig, verdict
    from .common import config_from_args, executor_from_args

    check_complete(args.search)  # before anything is written
    cfg = config_from_args(VerdictConfig, args)
    table = verdict(args.search, cfg, out=args.out, progress=not args.quiet,
                    executor=executor_from_args(args))
    out = Path(args.out)
    write_verdict_report(out, table, cfg, args.search)
    print(f"wrote {out}/verdict.csv, verdict.md, outcomes.parquet, run.json", file=sys.stderr)
