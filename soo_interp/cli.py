"""The `soo-interp` command. Each subcommand lives in `soo_interp/commands/<name>.py` and exposes
`add_parser(subparsers)`; this module wires them and enforces the CLI's error rule: a user's
mistake (a `SooError`, a bad flag, an unreadable or unwritable path) is one line naming the fix
and exit 2; SIGINT/SIGTERM are one line and exit 130/143; anything else is a bug in soo-interp,
reported in one line that points to a log file holding the traceback (exit 1)."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import logging
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Iterator, NoReturn

from .errors import SooError, raise_interrupted, signals_handled
from .runs import MAX_INPUT_ENV, recording_command

# Subcommand modules, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = ("demo", "measure", "probe", "train", "evaluate", "compare", "sweep",
                              "search", "verdict", "ladder", "organism", "rl")
LOG_DIR_ENV = "SOO_INTERP_LOG_DIR"  # where internal-error logs go (default: the temp folder)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (which flag, what is wrong, where help is)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="soo-interp",
        description="Measure and train Self-Other Overlap (SOO) in language models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    parser.add_argument("--max-input-mb", type=float, default=None, metavar="MB",
                        help="size limit on input text files: pairs, neutral texts, configs, "
                             "suites (default 64; also $SOO_INTERP_MAX_INPUT_MB)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"soo_interp.commands.{name}").add_parser(sub)
    return parser


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def write_error_log(argv: list[str] | None) -> Path:
    """The current exception's traceback and the command line, in a fresh log file."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "soo-interp-logs")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}-{os.getpid()}.log"
    path.write_text(f"command: {sys.argv[0]} {' '.join(argv or sys.argv[1:])}\n\n"
                    + traceback.format_exc())
    return path


@contextlib.contextmanager
def _input_limit(mb: float | None) -> Iterator[None]:
    """`--max-input-mb` for this command only (the readers take it from the environment)."""
    old = os.environ.get(MAX_INPUT_ENV)
    if mb is not None:
        os.environ[MAX_INPUT_ENV] = str(mb)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(MAX_INPUT_ENV, None)
        else:
            os.environ[MAX_INPUT_ENV] = old


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the exit code (0 ok, 2 user error, 130/143 interrupted, 1 bug)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    name = f"soo-interp {args.command}"
    if args.max_input_mb is not None and not args.max_input_mb > 0:
        parser.error(f"argument --max-input-mb: must be > 0, not {args.max_input_mb:g}")
    try:
        # SIGTERM stops as Ctrl-C does, so output folders are cleaned up the same way
        command = sys.argv if argv is None else ["soo-interp", *argv]
        with signals_handled(raise_interrupted, (signal.SIGTERM,)), \
                _input_limit(args.max_input_mb), recording_command(command):
            args.func(args)
    except SooError as e:
        print(f"{name}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # the environment, not soo-interp: a full disk, a vanished file, ...
        where = f" {e.filename}" if e.filename else ""
        print(f"{name}: error: cannot access{where}: {e.strerror or _one_line(e)}; check the path, "
              "its permissions and free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"{name}: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    except Exception as e:  # noqa: BLE001 - the last line of defence: a bug, said as one
        try:
            where = f"with the log {write_error_log(argv)}"
        except OSError as log_error:  # an unwritable log folder must not bury the message
            where = (f"(no log: {LOG_DIR_ENV} folder not writable: {log_error.strerror}; rerun "
                     f"with {LOG_DIR_ENV} set to a writable folder)")
        print(f"{name}: internal error ({type(e).__name__}: {_one_line(e)[:200]}); this is a bug "
              f"in soo-interp, please report it {where}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
