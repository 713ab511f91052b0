"""`soo-interp organism build|card`: reproduce the built-in model organism from scratch, or print
what a shipped one is and how it behaves."""
from __future__ import annotations

import argparse
import sys

from ..organism.checkpoint import KNOWN_ORGANISMS


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..organism.build import OrganismConfig
    from .common import add_config_args

    p = sub.add_parser("organism", help="build or describe the built-in model organism",
                       description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="train an organism from scratch (CPU, minutes)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0: the shipped one)")
    b.add_argument("--out", required=True, help="output checkpoint folder (refused if it exists)")
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
