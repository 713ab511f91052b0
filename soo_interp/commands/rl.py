"""`soo-interp rl`: the Physical Deception experiment.

  rl train     MADDPG baselines (deceptive/honest x seeds; parallel processes, Ray or submitit)
               -> OUT/{baseline}-s{seed}/
  rl value     RL SOO value of trained runs, classification and controls
               -> RUNS/value/value.csv, value_pairs.csv, states.csv
  rl traps     how red gets trapped: traps by red's contact with blue, and cross-play of
               every run's blue with every run's red -> RUNS/traps/traps.csv
  rl finetune  SOO fine-tuning of the deceptive runs vs shams of the same dose (shuffled
               self/other pairs; the task reward alone) -> RUNS/finetune/finetune.csv
               (tuned policies kept in RUNS/finetune.policies/, so a rerun resumes)
  rl report    report.md, summary CSVs and figures -> RUNS/report/
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_quiet, out_path, say


def _workers(value: str) -> int:
    """argparse `type` of `--workers`: a whole number >= 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of processes >= 1; e.g. 2")
    return n


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..rl.finetune import FinetuneConfig
    from ..rl.training import RLTrainConfig
    from .common import add_config_args, add_executor_args, int_list_arg

    p = sub.add_parser("rl", help="Physical Deception: MADDPG baselines, RL SOO value, fine-tuning",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rl = p.add_subparsers(dest="rl_command", metavar="STEP", required=True)

    t = rl.add_parser("train", help="train MADDPG baselines, several in parallel processes")
    t.add_argument("--out", required=True, type=out_path, help="protocol folder; one subfolder per run")
    t.add_argument("--baselines", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   default=["deceptive", "honest"], help="comma list: deceptive,honest")
    t.add_argument("--seeds", type=int_list_arg, default=[0],
                   help="training seeds, e.g. 0,1,2 or 0-2")
    add_config_args(t, RLTrainConfig, skip=("baseline", "seed", "env.n_envs", "env.baseline"),
                    episodes={"help": "per run (paper: 40000)"},
                    n_envs={"help": "environments stepped in lock-step (default 100)"},
                    checkpoint_every={"help": "rounds of n-envs episodes (default 20)"},
                    snapshots={"help": "also save the policy at these episode counts, e.g. "
                                       "2500,10000"})
    t.add_argument("--workers", type=_workers, default=2,
                   help="runs at once (default 2 processes; 1 trains in this process)")
    t.add_argument("--resume", action="store_true", help="continue runs from their checkpoints")
    t.add_argument("--overwrite", action="store_true", help="replace existing runs")
    add_executor_args(t, workers=False)
    t.set_defaults(func=run_train)

    v = rl.add_parser("value", help="RL SOO value, classification across seeds and controls")
    _evaluation_args(v, "value")
    v.add_argument("--snapshot", type=int, default=None,
                   help="value the runs' snapshots after this many episodes (rl train "
                        "--snapshots) -> RUNS/value-epN")
    v.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_quiet(v)
    v.set_defaults(func=run_value)

    tr = rl.add_parser("traps", help="how red gets trapped: kinds of trap, cross-play of blue and red")
    _evaluation_args(tr, "traps")
    tr.add_argument("--recent", type=int, default=10,
                    help="a trap this many steps or fewer after red lost sight of blue counts as "
                         "after contact (default 10)")
    tr.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_quiet(tr)
    tr.set_defaults(func=run_traps)

    f = rl.add_parser("finetune", help="SOO fine-tuning vs shams (shuffled pairs; task reward alone)")
    f.add_argument("--runs", required=True, help="protocol folder written by `rl train`")
    f.add_argument("--out", default=None, type=out_path, help="output folder (default: RUNS/finetune)")
    f.add_argument("--seeds", type=int_list_arg, default=None,
                   help="deceptive runs to fine-tune (default: all)")
    add_config_args(f, FinetuneConfig,
                    method={"help": "rl (default, the paper's): continued MADDPG with the SOO "
                                    "term in blue's actor loss, vs the same with shuffled pairs "
                                    "(sham) and without it (plain); supervised: SOO term + "
                                    "behaviour anchor on fixed observations"},
                    rl_episodes={"help": "rl: episodes (paper: 10000)"},
                    soo_weight={"help": "rl: weight of the SOO term"},
                    noise={"help": "rl: exploration noise scale"},
                    n_envs={"help": "rl: environments in lock-step"},
                    steps={"help": "supervised: optimizer steps"},
                    anchor_weight={"help": "supervised: weight of the behaviour anchor (default 1.0)"},
                    episodes={"help": "evaluation episodes per eval seed"})
    f.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_quiet(f)
    f.set_defaults(func=run_finetune)

    r = rl.add_parser("report", help="report.md, summaries and figures from a protocol folder")
    r.add_argument("--runs", required=True, help="protocol folder")
    r.add_argument("--figures", default=None, help="also copy the figures into this folder")
    add_quiet(r)
    r.set_defaults(func=run_report)


def run_train(args: argparse.Namespace) -> None:
    import dataclasses

    from ..rl.training import (
        RLTrainConfig,
        check_protocol_dir,
        check_run_dir,
        claim_protocol_dir,
        run_name,
        train_many,
    )
    from .common import config_from_args, executor_from_args

    out = Path(args.out)
    base = config_from_args(RLTrainConfig, args)
    executor = executor_from_args(args)
    check_protocol_dir(out)
    cfgs, outs = [], []
    for b in args.baselines:
        for s in args.seeds:
            folder = out / run_name(b, s)
            check_run_dir(folder, args.resume, args.overwrite)  # all refusals before any work
            cfgs.append(dataclasses.replace(base, baseline=b, seed=s))
            outs.append(folder)
    claim_protocol_dir(out)
    train_many(cfgs, outs, workers=args.workers, resume=args.resume, overwrite=args.overwrite,
               progress=not args.quiet, executor=executor)
    say(args, f"wrote {len(outs)} runs under {out}")


def run_value(args: argparse.Namespace) -> None:
    from ..rl.protocol import write_value

    out = write_value(args.runs, args.out, episodes=args.episodes, eval_seeds=args.eval_seeds,
                      overwrite=args.overwrite, snapshot=args.snapshot)
    say(args, f"wrote {out}/value.csv, value_pairs.csv, states.csv, run.json")


def run_traps(args: argparse.Namespace) -> None:
    from ..rl.protocol import write_traps

    out = write_traps(args.runs, args.out, episodes=args.episodes, eval_seeds=args.eval_seeds,
                      recent=args.recent, overwrite=args.overwrite)
    say(args, f"wrote {out}/traps.csv, run.json")


def run_finetune(args: argparse.Namespace) -> None:
    from ..rl.finetune import FinetuneConfig
    from ..rl.protocol import write_finetune
    from .common import config_from_args

    out = write_finetune(args.runs, args.out, config_from_args(FinetuneConfig, args),
                         seeds=args.seeds, overwrite=args.overwrite)
    say(args, f"wrote {out}/finetune.csv, run.json")


def run_report(args: argparse.Namespace) -> None:
    from ..rl.report import write_report

    out = write_report(args.runs, args.figures)
    say(args, f"wrote {out}")


def _evaluation_args(p: argparse.ArgumentParser, out_name: str) -> None:
    """The flags every evaluation step over trained runs shares (`rl value`, `rl traps`)."""
    p.add_argument("--runs", required=True, help="protocol folder written by `rl train`")
    p.add_argument("--out", default=None, type=out_path,
                   help=f"output folder (default: RUNS/{out_name})")
    p.add_argument("--episodes", type=int, default=200, help="evaluation episodes per eval seed")
    p.add_argument("--eval-seeds", type=int, default=5,
                   help="evaluation seeds per trained run (default 5)")
