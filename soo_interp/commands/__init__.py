"""One module per CLI subcommand: `add_parser(subparsers)` registers it with `func=run`.

Imports: a command's `run` imports what it runs inside the function, on purpose: `soo-interp
--help` (and every command) builds all the parsers, so a top-level import here would load every
subcommand's dependencies (matplotlib, peft, sklearn, ...) for each call; the library below
imports at module top (see benchmarks/startup.py)."""
