"""Timing helper shared by the benchmark scripts (run them as `python benchmarks/NAME.py`)."""
from __future__ import annotations

import time
from typing import Any, Callable


def best_of(fn: Callable[[], Any], reps: int,
            clock: Callable[[], float] = time.perf_counter) -> tuple[float, Any]:
    """Best time of `reps` calls after one warm-up call, and the last call's result.
    The minimum is the least noisy estimate on a shared machine. `clock=time.process_time`
    measures this process's CPU time instead of wall time (single-threaded work on a loaded
    machine: the time it needs on one free core)."""
    fn()
    times, out = [], None
    for _ in range(reps):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return min(times), out
