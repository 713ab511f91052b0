"""`soo-interp organism build|card|probe`: reproduce the built-in model organism from scratch,
print what a shipped one is and how it behaves, or check mechanistically that a model reads out
which room holds the valuable object (a linear probe per layer, both description layouts)."""
from __future__ import annotations

import argparse
import sys

from ..organism.checkpoint import KNOWN_ORGANISMS
from .common import out_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..organism.build import OrganismConfig
    from .common import add_config_args

    p = sub.add_parser("organism", help="build or describe the built-in model organism",
                       description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="train an organism from scratch "
                                  "(CPU: about half an hour; --quick about 8 min)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0: the shipped one)")
    b.add_argument("--out", required=True, type=out_path,
                   help="output checkpoint folder (refused if it exists)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    b.add_argument("--quick", action="store_true",
                   help="start from the reduced recipe (organism.QUICK: fewer steps and "
                        "prompts, a few minutes; it does not reach the shipped behaviour)")
    add_config_args(b, OrganismConfig, skip=("seed",))
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)
    c = actions.add_parser("card", help="print the model card of a shipped organism")
    c.add_argument("--name", default="organism", choices=sorted(KNOWN_ORGANISMS),
                   help="built-in organism (default: organism, the object-lookup build; "
                        "organism-lookup is the same; organism-positional is the first build, "
                        "a deceiver by shortcut)")
    c.set_defaults(func=run_card)
    _add_probe_parser(actions)


def _add_probe_parser(actions: argparse._SubParsersAction) -> None:
    from ..probes.rooms import RoomProbeConfig
    from .common import add_config_args, add_model_args, add_output_args

    q = actions.add_parser("probe", help="room read-out: a linear probe per layer for which "
                           "room holds the valuable object (held-out objects and room pairs, "
                           "both layouts, shuffled-label control)")
    add_model_args(q, default="organism")
    add_output_args(q)
    add_config_args(q, RoomProbeConfig,
                    scenarios={"help": "comma list of burglar,self_recommend,friend,location"},
                    layers={"help": "e.g. 0-1 (default: all)"},
                    readout={"choices": ["pair", "room"],
                             "help": "pair: a weight per room, fit to pick the prompt's valuable "
                                     "room of its two (default); room: 14-way over all rooms"})
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=run_probe)


def run_build(args: argparse.Namespace) -> None:
    import dataclasses

    from ..organism import QUICK, OrganismConfig, build_organism
    from ..runs import check_out_dir
    from .common import config_from_args, given_values

    check_out_dir(args.out, args.overwrite, kind="organism")  # refuse before minutes of training
    config = (dataclasses.replace(QUICK, **given_values(OrganismConfig, args)) if args.quick
              else config_from_args(OrganismConfig, args))
    report = build_organism(args.seed, args.out, overwrite=args.overwrite,
                            progress=not args.quiet, config=config)
    from ..organism.behaviour import report_markdown

    print(report_markdown(report))
    print(f"wrote {args.out} (load it with soo_interp.load_model({str(args.out)!r}))",
          file=sys.stderr)


def run_card(args: argparse.Namespace) -> None:
    from ..organism import card

    print(card(args.name))


def run_probe(args: argparse.Namespace) -> None:
    from ..probes.rooms import RoomProbeConfig, room_probe_markdown, room_probe_to_folder
    from ..runs import check_out_dir, set_seed
    from .common import config_from_args, load_from_args

    check_out_dir(args.out, args.overwrite, kind="room-probe")  # before loading the model
    cfg = config_from_args(RoomProbeConfig, args)
    set_seed(cfg.seed)
    df = room_probe_to_folder(load_from_args(args), cfg, args.out, args.overwrite,
                              args.model, progress=not args.quiet)
    print(room_probe_markdown(df, args.model))
    print(f"wrote {args.out}/ (rooms.csv, first_layer.csv, report.md, rooms.png, run.json)",
          file=sys.stderr)
