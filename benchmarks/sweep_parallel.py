"""Wall time of a layer sweep on an organism: serial (one process) against local worker
processes, in one run, with the same cells and the same results.

The sweep: every layer of `organism-positional` (4; the default organism when this benchmark's
numbers were taken) x 2 seeds, attention site, last-token MSE, plus one
sham run per seed and the base model: 11 independent cells. Each mode runs the real command
(`python -m soo_interp sweep ...`) in a fresh output folder, so worker start-up (process spawn,
imports, model load) is counted. The two tables of results must be identical. The machine's load
average is printed beside the times: on a shared machine, other processes take cores too.

Run: `.venv/bin/python benchmarks/sweep_parallel.py [--workers 2] [--n 10] [--epochs 15]`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_sweep(out: Path, workers: int, args: argparse.Namespace) -> float:
    cmd = [sys.executable, "-m", "soo_interp", "sweep", "--model", "organism-positional",
           "--layers", "0-3",
           "--seeds", "0,1", "--epochs", str(args.epochs), "--n", str(args.n), "--scenarios",
           args.scenarios, "--workers", str(workers), "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--n", type=int, default=10, help="prompts per scenario variant")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--scenarios", default="burglar,self_recommend,friend,perspectives")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="soo-sweep-bench-") as tmp:
        for mode, workers in (("serial (1 process)", 1), (f"{args.workers} local workers", args.workers)):
            load = os.getloadavg()[0]
            wall = run_sweep(Path(tmp) / f"w{workers}", workers, args)
            rows.append((mode, wall, load, os.getloadavg()[0]))
        tables = [pd.read_parquet(Path(tmp) / f"w{w}" / "sweep.parquet") for w in (1, args.workers)]
        same = tables[0].equals(tables[1])
    print(f"organism-positional sweep: 4 layers x 2 seeds + 2 sham + base = 11 cells, {args.epochs} epochs, "
          f"n={args.n}, scenarios {args.scenarios}; {os.cpu_count()} CPU cores; identical results: {same}")
    print(f"{'mode':<22}{'wall s':>9}{'x serial':>10}{'load before':>13}{'load after':>12}")
    for mode, wall, before, after in rows:
        print(f"{mode:<22}{wall:>9.1f}{wall / rows[0][1]:>9.2f}x{before:>13.2f}{after:>12.2f}")


if __name__ == "__main__":
    main()
