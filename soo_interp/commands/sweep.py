"""`soo-interp sweep`: which layer to train on? SOO vs sham adapters at each layer, with
deception, control and capability outcomes -> sweep.parquet, sweep.csv (summary), sweep.png,
run.json."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..sweep import SweepConfig
    from .common import add_config_args

    p = sub.add_parser("sweep", help="ablate the training layer: SOO vs sham at each layer",
                       description=__doc__)
    p.add_argument("--model", default="organism", help="model name or path (default organism)")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    add_config_args(p, SweepConfig,
                    layers={"help": "layers to train on (default: all)"},
                    component={"choices": ["attn", "mlp", "resid"]},
                    loss={"choices": ["mse", "cosine", "kl_logits"]},
                    pooling={"choices": ["last", "mean", "aligned"]},
                    seeds={"help": "comma list of seeds (default 0)"},
                    sham={"help": "train the sham control runs (default; --no-sham skips them)"},
                    n={"help": "prompts per scenario variant"})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..plots import sweep_plot
    from ..runs import check_out_dir, output_dir, set_seed, write_run_json
    from ..sweep import SweepConfig, sweep
    from .common import config_from_args

    check_out_dir(args.out, args.overwrite, kind="sweep")
    cfg = config_from_args(SweepConfig, args)
    set_seed(cfg.seeds[0])
    with output_dir(args.out, args.overwrite, kind="sweep") as tmp:
        df = sweep(args.model, cfg)
        df.to_parquet(tmp / "sweep.parquet", index=False)
        summary = (df.groupby(["condition", "train_layer", "scenario", "metric"], dropna=False)
                   .value.agg(["mean", "std", "count"]).reset_index())
        summary.to_csv(tmp / "sweep.csv", index=False)
        fig = sweep_plot(df, title=f"{args.model}: SOO vs sham by trained layer ({cfg.component})")
        fig.savefig(tmp / "sweep.png", dpi=120)
        write_run_json(tmp, cfg.to_dict(), cfg.seeds[0], model=args.model)
    print(f"wrote {args.out}/sweep.parquet, sweep.csv, sweep.png, run.json", file=sys.stderr)
