"""The `soo-interp` command. Each subcommand lives in `soo_interp/commands/<name>.py` and exposes
`add_parser(subparsers)`; this module only wires them and turns errors into one line + exit 2."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import SooError

# Subcommand modules, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = ("demo", "measure", "probe", "train", "evaluate", "compare", "sweep",
                              "organism")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soo-interp",
        description="Measure and train Self-Other Overlap (SOO) in language models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"soo_interp.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except SooError as e:
        msg = " ".join(str(e).split())  # one line even when a library error spans several
        print(f"soo-interp {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"soo-interp {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
