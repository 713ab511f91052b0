"""Arguments shared by several subcommands, so they read the same everywhere."""
from __future__ import annotations

import argparse


def add_model_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--model", default=default, required=default is None,
                   help="hub id, local save_pretrained folder, or 'organism' (built in)")
    p.add_argument("--adapter", default=None, help="peft adapter folder to apply to the model")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--load-in-4bit", action="store_true", help="NF4 quantisation (CUDA only)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model code from the hub (off by default)")


def add_output_args(p: argparse.ArgumentParser, seed_default: int | None = 0) -> None:
    """--out/--overwrite/--seed. `seed_default=None` when a --config YAML may set the seed."""
    p.add_argument("--out", required=True, help="output folder (refused if it exists)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--seed", type=int, default=seed_default, help="random seed (default 0)")


def int_list_arg(spec: str) -> list[int]:
    """argparse `type` for '1,2,3' / '0-3' lists (read by `config.parse_int_list`)."""
    from ..config import parse_int_list
    from ..errors import ConfigError

    try:
        return sorted(parse_int_list(spec))
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def load_from_args(args: argparse.Namespace):
    from ..models import load_model

    return load_model(args.model, dtype=args.dtype, device=args.device,
                      load_in_4bit=args.load_in_4bit, trust_remote_code=args.trust_remote_code,
                      adapter=args.adapter)


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None,
                   help="YAML file of config keys; flags given on the command line override it")


def config_from_args(cls: type, args: argparse.Namespace, fields: dict[str, str]):
    """Build config `cls` from `--config` YAML (or defaults), then apply the flags the user gave.

    `fields` maps config field -> argparse dest; flags default to None so 'not given' is visible.
    """
    import dataclasses

    cfg = cls.from_yaml(args.config) if getattr(args, "config", None) else cls()
    given = {f: getattr(args, dest) for f, dest in fields.items()
             if getattr(args, dest, None) is not None}
    return dataclasses.replace(cfg, **given)
