"""Start-up time of `import soo_interp` and `soo-interp --help`, against a bare interpreter.

Each command runs `--reps` times in a fresh subprocess (nothing warm in memory but the OS file
cache, warmed by one untimed run); prints the median and best wall time and their ratio to a
bare `python -c pass` measured in the same run, plus whether torch was imported. With
`--importtime`, also the slowest top-level imports of each (`python -X importtime`).

    python benchmarks/startup.py [--reps 5] [--importtime] [--root CHECKOUT]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "python -c pass (baseline)": ["-c", "pass"],
    "import soo_interp": ["-c", "import soo_interp, sys; print('torch' in sys.modules)"],
    "soo-interp --help": ["-c", "import contextlib, io, sys\nfrom soo_interp.cli import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()), "
                          "contextlib.suppress(SystemExit):\n    main(['--help'])\n"
                          "print('torch' in sys.modules)"],
    "import torch (reference)": ["-c", "import torch, sys; print('torch' in sys.modules)"],
}


def _env(root: Path) -> dict[str, str]:
    """The checkout measured (`--root`, default this one) first on the path."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else str(root)}


def _run(args: list[str], root: Path) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=_env(root), capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-500:]}")
    return seconds, done.stdout


def _slowest_imports(args: list[str], root: Path, top: int = 8) -> list[tuple[float, str]]:
    """(cumulative seconds, module) of the slowest imports that `args` makes."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], env=_env(root),
                          capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]) / 1e6, parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    args = ap.parse_args()
    root = args.root.resolve()
    results = {}
    for name, cmd in CASES.items():
        _run(cmd, root)  # warm the file cache
        times, out = [], ""
        for _ in range(args.reps):
            seconds, out = _run(cmd, root)
            times.append(seconds)
        results[name] = (statistics.median(times), min(times), out.strip().splitlines()[-1:])
    base = results["python -c pass (baseline)"][0]
    print(f"{'command':<28} {'median s':>9} {'best s':>8} {'x baseline':>11}  torch imported")
    for name, (med, best, out) in results.items():
        torch = {"True": "yes", "False": "no"}.get(out[0] if out else "", "")
        print(f"{name:<28} {med:9.3f} {best:8.3f} {med / base:11.1f}  {torch}")
    print(f"({args.reps} runs each, median wall time; {sys.executable}; {root})")
    if args.importtime:
        for name in ("import soo_interp", "soo-interp --help"):
            print(f"\nslowest imports of {name} (cumulative s):")
            for seconds, module in _slowest_imports(CASES[name], root):
                print(f"  {seconds:6.3f}  {module}")


if __name__ == "__main__":
    main()
