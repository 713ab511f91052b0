"""First load of a GGUF model (dequantize + convert + cache) against a load from the cache.

Each load runs in a fresh subprocess (nothing warm in memory); the first in an empty cache folder
(`SOO_INTERP_CACHE`), the others reuse it. Prints seconds and the ratio.

    python benchmarks/model_load.py [--model smollm2-135m-instruct] [--reps 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CODE = "from soo_interp import load_model; load_model({!r})"


def _timed(model: str, cache: str) -> float:
    env = {**os.environ, "SOO_INTERP_CACHE": cache, "OMP_NUM_THREADS": "2"}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", CODE.format(model)], check=True, env=env,
                   capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import_only = min(_timed_import() for _ in range(args.reps))
    with tempfile.TemporaryDirectory() as cache:
        first = _timed(args.model, cache)
        cached = min(_timed(args.model, cache) for _ in range(args.reps))
    print(f"{args.model}: each load in a fresh process (python + import soo_interp alone: "
          f"{import_only:.1f} s)")
    print(f"{'load':<28}{'seconds':>9}{'x cached':>10}")
    print(f"{'first (GGUF -> cache)':<28}{first:>9.1f}{first / cached:>10.1f}")
    print(f"{'cached (best of ' + str(args.reps) + ')':<28}{cached:>9.1f}{1.0:>10.1f}")


def _timed_import() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import soo_interp"], check=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
