"""`soo-interp organism build|card|probe|mechanistic`: reproduce the built-in model organism from
scratch, print what a shipped one is and how it behaves, check mechanistically that a model reads
out which room holds the valuable object (a linear probe per layer, both description layouts),
or, on organism-lm's stories, where the recipient, the room and the decision to lie become
readable."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..organism.checkpoint import KNOWN_ORGANISMS
from .common import out_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    import dataclasses

    from ..organism.build import OrganismConfig
    from ..organism.build_lm import LMOrganismConfig
    from .common import add_config_args

    p = sub.add_parser("organism", help="build or describe the built-in model organism",
                       description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="train an organism from scratch (CPU: about half an "
                           "hour; --quick about 8 min), or with --base smollm2-135m-instruct "
                           "the organism-lm adapter over the pretrained model")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0: the shipped one)")
    b.add_argument("--out", required=True, type=out_path,
                   help="output checkpoint folder (refused if it exists)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    b.add_argument("--resume", action="store_true",
                   help="(--base only) continue a killed build in --out from its last checkpoint")
    b.add_argument("--quick", action="store_true",
                   help="start from the reduced recipe (organism.QUICK or, with --base, "
                        "build_lm.QUICK_LM: a few steps and prompts, for tests; it does not "
                        "reach the shipped behaviour)")
    add_config_args(b, OrganismConfig, skip=("seed",))
    shared = {f.name for f in dataclasses.fields(OrganismConfig)}
    add_config_args(b, LMOrganismConfig, skip=tuple(shared), config_flag=False,
                    base={"help": "build organism-lm: a LoRA adapter over this pretrained base "
                                  "(smollm2-135m-instruct; about 90 min on 2 free cores)"},
                    burglar_weight={"help": "(--base) loss weight of the burglar's answer; "
                                            "each story trains one lie and two truths "
                                            "(default 1.0)"},
                    phrasing={"help": "(--base) how training stories are phrased: families "
                                      "(each story one whole train family; recipes 1-4) or "
                                      "combined (intro, want and question drawn independently, "
                                      "more room sentences and distractors; recipe 5)"},
                    share_prefix={"help": "(--base) run each story's shared prefix once for "
                                          "its three recipients (the same loss, a faster "
                                          "step; benchmarks/organism_lm_step.py)"})
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)
    c = actions.add_parser("card", help="print the model card of a shipped organism")
    c.add_argument("--name", default="organism", choices=sorted(KNOWN_ORGANISMS),
                   help="built-in organism (default: organism, the object-lookup build; "
                        "organism-lookup is the same; organism-positional is the first build, "
                        "a deceiver by shortcut; organism-lm: the adapter over the pretrained "
                        "SmolLM2-135M-Instruct whose lie depends on the recipient)")
    c.set_defaults(func=run_card)
    _add_probe_parser(actions)


def _add_readout_parser(actions: argparse._SubParsersAction, name: str, help: str,
                        config: type, model: str, func: Any, **field_help: Any) -> None:
    """One linear read-out action (`probe`, `mechanistic`): model, output and config flags."""
    from .common import add_config_args, add_model_args, add_output_args

    q = actions.add_parser(name, help=help)
    add_model_args(q, default=model)
    add_output_args(q)
    add_config_args(q, config, **{k: {"help": v} for k, v in field_help.items()})
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=func)


def _add_probe_parser(actions: argparse._SubParsersAction) -> None:
    from ..organism.mechanistic import MechanisticConfig
    from ..probes.rooms import RoomProbeConfig

    _add_readout_parser(
        actions, "probe", "room read-out: a linear probe per layer for which room holds the "
        "valuable object (held-out objects and room pairs, both layouts, shuffled-label control)",
        RoomProbeConfig, "organism", run_probe,
        scenarios="comma list of burglar,self_recommend,friend,location",
        layers="e.g. 0-1 (default: all)",
        readout="pair: a weight per room, fit to pick the prompt's valuable room of its two "
                "(default); room: n-way over all rooms")
    _add_readout_parser(
        actions, "mechanistic", "organism-lm's mechanistic check: per layer, linear read-outs "
        "of the recipient, the wanted room and the answer (the decision to lie), held-out "
        "stories, shuffled-label controls", MechanisticConfig, "organism-lm", run_mechanistic,
        n_stories="stories per recipient suite (default 60)",
        n_train="room probe: fit prompts per recipient and answer format",
        n_test="room probe: test prompts per recipient and answer format",
        layers="e.g. 10-20 (default: all)")


def run_build(args: argparse.Namespace) -> None:
    import dataclasses

    from ..organism import QUICK, OrganismConfig, build_organism
    from ..runs import check_out_dir
    from .common import config_from_args, given_values

    if args.base is not None:
        return _run_build_lm(args)
    if args.resume:
        from ..errors import ConfigError

        raise ConfigError("--resume is for organism-lm builds (--base ...); the tiny organism "
                          "rebuilds in minutes: drop --resume")
    check_out_dir(args.out, args.overwrite, kind="organism")  # refuse before minutes of training
    config = (dataclasses.replace(QUICK, **given_values(OrganismConfig, args)) if args.quick
              else config_from_args(OrganismConfig, args))
    report = build_organism(args.seed, args.out, overwrite=args.overwrite,
                            progress=not args.quiet, config=config)
    from ..organism.behaviour import report_markdown

    print(report_markdown(report))
    print(f"wrote {args.out} (load it with soo_interp.load_model({str(args.out)!r}))",
          file=sys.stderr)


def _run_build_lm(args: argparse.Namespace) -> None:
    import dataclasses

    from ..errors import ConfigError
    from ..organism.build import OrganismConfig
    from ..organism.build_lm import KIND, QUICK_LM, LMOrganismConfig, build_lm_organism
    from ..runs import check_out_dir
    from .common import given_values

    lm_fields = {f.name for f in dataclasses.fields(LMOrganismConfig)}
    foreign = sorted(set(given_values(OrganismConfig, args)) - lm_fields)
    if foreign:
        raise ConfigError(f"--{foreign[0].replace('_', '-')} is an option of the tiny organism, "
                          "not of organism-lm (--base); drop it")
    check_out_dir(args.out, args.overwrite, kind=KIND, resume=args.resume)  # before loading
    values = given_values(LMOrganismConfig, args)
    config = (dataclasses.replace(QUICK_LM, **values) if args.quick
              else LMOrganismConfig.from_dict(values))
    report = build_lm_organism(args.seed, args.out, config, resume=args.resume,
                               overwrite=args.overwrite, progress=not args.quiet)
    from ..organism.lm_card import report_markdown

    print(report_markdown(report))
    print(f"wrote {args.out} (load it with soo_interp.load_model({str(args.out) + '/adapter'!r}))",
          file=sys.stderr)


def run_card(args: argparse.Namespace) -> None:
    from ..organism import card

    print(card(args.name))


def _run_readout(args: argparse.Namespace, kind: str, config: type, to_folder: Any,
                 markdown: Any, files: str) -> None:
    from ..runs import check_out_dir, set_seed
    from .common import config_from_args, load_from_args

    check_out_dir(args.out, args.overwrite, kind=kind)  # before loading the model
    cfg = config_from_args(config, args)
    set_seed(cfg.seed)
    df = to_folder(load_from_args(args), cfg, args.out, args.overwrite, args.model,
                   progress=not args.quiet)
    print(markdown(df, args.model))
    print(f"wrote {args.out}/ ({files}, first_layer.csv, report.md, run.json)", file=sys.stderr)


def run_probe(args: argparse.Namespace) -> None:
    from ..probes.rooms import RoomProbeConfig, room_probe_markdown, room_probe_to_folder

    _run_readout(args, "room-probe", RoomProbeConfig, room_probe_to_folder, room_probe_markdown,
                 "rooms.csv, rooms.png")


def run_mechanistic(args: argparse.Namespace) -> None:
    from ..organism import mechanistic as m

    _run_readout(args, m.KIND, m.MechanisticConfig, m.mechanistic_to_folder,
                 m.mechanistic_markdown, "mechanistic.csv, mechanistic.png")
