"""Timing helper shared by the benchmark scripts (run them as `python benchmarks/NAME.py`)."""
from __future__ import annotations

import time
from typing import Any, Callable


def best_of(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Best wall time of `reps` calls after one warm-up call, and the last call's result.
    The minimum is the least noisy estimate on a shared machine."""
    fn()
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out
