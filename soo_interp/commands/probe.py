"""`soo-interp probe`: linear probes per (layer, site) -> probes.parquet, summary.csv,
signatures.csv, saved probes, activations, separability figures, run.json.
With `--compare BASE_RUN TUNED_RUN`: the self-deception signatures between two probe runs."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_config_args,
    add_model_args,
    add_output_args,
    add_quiet,
    config_from_args,
    load_from_args,
    say,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..probes.run import ProbeConfig
    from .common import REMOTE_FLAG

    p = sub.add_parser("probe", help="linear probes: self/other separability, deception "
                       "directions, self-deception signatures", description=__doc__)
    add_model_args(p, default="")
    add_output_args(p)
    add_quiet(p)
    add_config_args(
        p, ProbeConfig,
        suites={"flag": "--suite", "help": "self_vs_other | honest_vs_deceptive | neutral_control "
                "| all, a comma list, or a suite folder (default self_vs_other)"},
        components={"help": "comma list of attn,mlp,resid (default all three)"},
        layers={"help": "e.g. 0-31 or 0,4,8 (default: all)"},
        probes={"help": "comma list of logistic,mean_diff,lat (default logistic,mean_diff)"},
        folds={"help": "grouped CV folds (default 5)"},
        batch_size={"help": "prompts per forward (default 16)"},
        cache_dir={"help": "folder caching traced activations so a suite is traced once per "
                   "model"},
        remote=REMOTE_FLAG)
    p.add_argument("--compare", nargs=2, metavar=("BASE_RUN", "TUNED_RUN"), default=None,
                   help="compute signatures between two probe runs instead of probing a model")
    p.add_argument("--trained-site", default=None,
                   help="with --compare: the trained (layer, component), e.g. L19.attn (default: "
                        "the site whose separability fell most)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..errors import ConfigError
    from ..probes.run import ProbeConfig, check_config, probe_to_folder
    from ..runs import check_out_dir, set_seed

    check_out_dir(args.out, args.overwrite,
                  kind="signatures" if args.compare else "probe")  # fail before loading anything
    cfg = config_from_args(ProbeConfig, args)
    set_seed(cfg.seed)
    if args.compare:
        from ..probes.run import compare_to_folder

        out = compare_to_folder(*args.compare, args.out, args.trained_site, None, cfg.seed,
                                args.overwrite)
        say(args, f"wrote {out}/signatures.csv, signatures.png, run.json")
        return
    if not args.model:
        raise ConfigError("give --model (or --compare BASE_RUN TUNED_RUN)")
    check_config(cfg)  # malformed or too-small suites fail before the model loads
    lm = load_from_args(args)
    name = f"{args.model}+{args.adapter}" if args.adapter else args.model
    out = probe_to_folder(lm, cfg, out=Path(args.out), overwrite=args.overwrite,
                          extra={"model_arg": args.model, "adapter": args.adapter},
                          model_name=name, progress=not args.quiet)
    say(args, f"wrote {out}/probes.parquet, summary.csv, signatures.csv, probes/, activations/, "
              "separability.png, run.json")
