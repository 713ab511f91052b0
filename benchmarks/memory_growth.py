"""Benchmark: does memory grow over repeated `measure` calls, per backend?

Each backend runs in its own subprocess on one tiny random Llama (2 layers, d_model 64) and 4
built-in pairs: one warm-up call, then `--calls` calls of `soo_interp.measure` with
`gc.collect()` after each (unless `--no-gc`), recording the process RSS. Growth is the
least-squares slope of RSS over the second half of the calls (KiB per call); the table also
gives the Python objects that grew most between the first and last call (by type), to tell our
objects from a library's.
The baseline is the first backend (`hooks`: plain torch forward hooks) in the same run; the
table gives each backend's KiB/call beyond it.

    python benchmarks/memory_growth.py [--calls 200] [--backends hooks,nnsight] [--no-gc]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MALLOC_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0",
              "OMP_NUM_THREADS": "1"}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _types() -> dict[str, int]:
    import collections
    import gc

    return dict(collections.Counter(type(o).__qualname__ for o in gc.get_objects()))


def child(backend: str, model_dir: str, calls: int, collect: bool) -> dict:
    """Run `calls` measure calls with `backend`; RSS after each and object growth by type."""
    import gc

    import numpy as np
    import torch

    from soo_interp import load_model, measure, soo_pairs

    torch.set_num_threads(1)
    lm = load_model(model_dir)
    pairs = soo_pairs("train")[:4]
    measure(lm, pairs, backend=backend, progress=False)
    gc.collect()
    before, rss = _types(), []
    for _ in range(calls):
        measure(lm, pairs, backend=backend, progress=False)
        if collect:
            gc.collect()
        rss.append(_rss_kib())
    after = _types()
    grew = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in after), reverse=True)[:5]
    half = np.arange(calls // 2, calls)
    slope = float(np.polyfit(half, np.array(rss)[half], 1)[0])
    return {"backend": backend, "calls": calls, "rss_first_kib": rss[0], "rss_last_kib": rss[-1],
            "kib_per_call": slope, "objects_grown": [f"{k}+{n}" for n, k in grew if n > 0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--backends", default="hooks,nnsight")
    ap.add_argument("--no-gc", action="store_true", help="no gc.collect() between calls")
    ap.add_argument("--child", nargs=2, metavar=("BACKEND", "MODEL_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.calls, not args.no_gc)))
        return
    from soo_interp.models.tiny import build_tiny_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model("llama", Path(tmp) / "tiny", n_layers=2, d_model=64)
        for b in args.backends.split(","):
            argv = [sys.executable, __file__, "--calls", str(args.calls), "--child", b,
                    str(Path(tmp) / "tiny")] + ["--no-gc"] * args.no_gc
            out = subprocess.run(argv, env=MALLOC_ENV, check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["kib_per_call"]
    print(f"{'backend':12} {'calls':>5} {'RSS first':>10} {'RSS last':>10} {'KiB/call':>9} "
          f"{'- base':>7}  objects grown (type+count)")
    for r in rows:
        print(f"{r['backend']:12} {r['calls']:5d} {r['rss_first_kib']:10d} {r['rss_last_kib']:10d} "
              f"{r['kib_per_call']:9.2f} {r['kib_per_call'] - base:7.2f}  {', '.join(r['objects_grown'])}")


if __name__ == "__main__":
    main()
