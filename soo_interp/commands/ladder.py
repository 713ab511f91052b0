"""`soo-interp ladder`: the SOO control ladder (untuned, unrelated-text sham, scenario-exposure
sham, SOO as the paper and as the original code do it, stop-gradient, capability term, LoRA
scope), every arm on every training seed and pair set, in resumable cells on any executor ->
report.md, table.csv, runs.csv (per seed), answer.csv, outcomes.parquet, ladder.png, run.json,
ladder.json. Rerun the same command to resume. `--combine A,B` pools finished ladders that ran
different arms or pair sets (same model, recipe, seeds and prompts) into one report in --out."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import out_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments.ladder import ARMS, RECIPES, RESERVED_SEEDS, LadderConfig
    from .common import add_config_args, add_executor_args

    p = sub.add_parser("ladder", help="SOO against its controls, arm by arm (resumable)",
                       description=__doc__)
    p.add_argument("--model", default="organism", help="model name or path (default organism)")
    p.add_argument("--out", required=True, type=out_path, help="ladder folder (rerun to resume)")
    p.add_argument("--exclude-from", default=None, metavar="SEARCH_DIR",
                   help="a search folder: its seeds are refused and its evaluation prompts "
                        f"avoided (default: seeds must be >= {RESERVED_SEEDS}, the reserved "
                        "range, and the default search's 25 prompts are avoided)")
    add_config_args(p, LadderConfig, skip=("search_n", "search_seeds"),
                    recipe={"help": f"{' | '.join(RECIPES)} | none: the reproduction every "
                                    "arm trains with (default paper; explicit --loss, "
                                    "--pooling, --lr or --epochs must agree with it)"},
                    arms={"help": f"comma list of arms (default all: {','.join(ARMS)})"},
                    pair_sets={"help": "comma list: short (the paper's pairs), recipient "
                                       "(recipient-only), scenario (default short,recipient)"},
                    seeds={"help": f"training seeds (default {RESERVED_SEEDS}-"
                                   f"{RESERVED_SEEDS + 2})"})
    p.add_argument("--combine", default=None, metavar="LADDER,LADDER",
                   help="comma list of finished ladder folders of the same model, recipe, seeds "
                        "and prompts that ran different arms or pair sets: pool their cells "
                        "into one report in --out (a new folder); takes no other setting")
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import sys

    from ..experiments.ladder import LadderConfig, exclude_from, ladder
    from .common import executor_from_args, given_values

    data = given_values(LadderConfig, args)
    if args.combine:
        from ..errors import ConfigError
        from ..experiments.ladder import combine_ladders

        given = sorted(data) + (["--exclude-from"] if args.exclude_from else []) + (
            ["--model"] if args.model != "organism" else [])
        if given:
            raise ConfigError(f"--combine takes every setting from the ladders it pools; drop "
                              f"{', '.join(given)}")
        combine_ladders([p for p in args.combine.split(",") if p], args.out)
        write_ladder_figure(Path(args.out))
        print(f"wrote {args.out}/report.md, table.csv, runs.csv, answer.csv, ladder.png",
              file=sys.stderr)
        return
    if data.get("recipe") == "none":
        data["recipe"] = None
    if args.exclude_from:
        data |= exclude_from(args.exclude_from)
    cfg = LadderConfig.from_dict(data)
    ladder(args.model, cfg, out=args.out, executor=executor_from_args(args),
           progress=not args.quiet)
    write_ladder_figure(Path(args.out))
    print(f"wrote {args.out}/report.md, table.csv, runs.csv, answer.csv, ladder.png",
          file=sys.stderr)


def write_ladder_figure(out: Path) -> None:
    """ladder.png from a finished ladder's per-seed table."""
    import pandas as pd

    from ..plots import ladder_plot
    from ..runs import atomic_path

    fig = ladder_plot(pd.read_csv(out / "runs.csv"))
    with atomic_path(out / "ladder.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
