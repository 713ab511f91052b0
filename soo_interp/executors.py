"""Run independent tasks on an existing engine: this process, local worker processes, a Ray
cluster or submitit (Slurm, or its local executor). soo-interp schedules nothing itself.

A task function takes one picklable task and returns a status dict with at least `name` and
`status` (`done` or `failed`, plus `log` for a failure); it must catch its own errors so one
failure never stops the others. `run_tasks` keeps at most `workers` tasks in flight, shows
done/running/failed, and returns the statuses in completion order.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import ConfigError, ExecutorError, check_choice

EXECUTORS: tuple[str, ...] = ("local", "ray", "submitit")
CLUSTERS: tuple[str, ...] = ("local", "slurm")  # submitit's clusters (None: detect)
TaskFn = Callable[[Any], dict]


def default_workers() -> int:
    """Two local workers, or fewer on a one-core machine."""
    return max(1, min(2, os.cpu_count() or 1))


def _init_worker(parent: int | None = None) -> None:
    """One torch thread per worker process (N workers on N cores do not oversubscribe); with
    `parent`, the worker dies with that process (see `_die_with`)."""
    import torch

    if parent is not None:
        _die_with(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(1)


def _die_with(parent: int) -> None:
    """End this worker when `parent` ends, also by kill -9 (which runs no cleanup there): the
    kernel's parent-death signal on Linux, a watching thread elsewhere. Orphaned workers held
    hundreds of MB each, and the resource tracker with them, indefinitely."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _unguarded_script() -> str | None:
    """The script whose top level (outside `if __name__ == "__main__":`) is starting worker
    processes, if any: spawned workers re-import the main script, so such a call would run
    again in every worker and break the pool."""
    import inspect
    import linecache
    import sys

    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) or not getattr(main, "__file__", None):
        return None  # `python -m pkg`, a notebook or the REPL: nothing is re-run
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
            return frame.f_code.co_filename if line[:1] not in ("", " ", "\t") else None
        frame = frame.f_back
    return None


def spawn_pool(workers: int) -> Any:
    """A pool of `workers` spawned processes (fork after torch/threads is unsafe), one torch
    thread each, that die with this process. Refused from an unguarded script's top level."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    script = _unguarded_script()
    if script:
        raise ExecutorError(f"worker processes were started from the top level of {script}, "
                            "which each worker re-imports; put the call under "
                            "`if __name__ == \"__main__\":`, or use workers=1")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(),))


def _one_thread(fn: TaskFn, task: Any) -> dict:
    """`fn(task)` with one torch thread (for engines that start their own workers)."""
    _init_worker()
    return fn(task)


def _failed(name: str, error: BaseException) -> dict:
    return {"name": name, "status": "failed", "log": None, "error": f"{type(error).__name__}: {error}"}


def _local(fn: TaskFn, tasks: Sequence[Any], workers: int,
           names: Sequence[str]) -> Iterator[tuple[dict, int]]:
    if workers <= 1:
        for task in tasks:
            yield fn(task), 1
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    with spawn_pool(workers) as pool:
        futures = {pool.submit(fn, t): n for t, n in zip(tasks, names)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                try:
                    yield f.result(), min(workers, len(pending))
                except Exception as e:  # noqa: BLE001 - a worker process that died
                    yield _failed(futures[f], e), min(workers, len(pending))


def _check_reachable(address: str) -> None:
    """Fail fast on a Ray address nothing listens on (ray.init would retry for minutes)."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise ExecutorError(f"cannot reach the Ray cluster at {address} ({e}); check --address "
                            "(host:port of the head node, see `ray status` there) or omit it to "
                            "start a local cluster") from None


def _ray(fn: TaskFn, tasks: Sequence[Any], workers: int, names: Sequence[str],
         address: str | None) -> Iterator[tuple[dict, int]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'soo-interp[ray]'") from None
    started = False
    if not ray.is_initialized():
        if address and address != "auto":
            _check_reachable(address)
        try:
            ray.init(address=address, num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError, ...
            where = f"at {address}" if address else "on this machine"
            raise ExecutorError(f"cannot reach a Ray cluster {where} ({' '.join(str(e).split())[:200]}); "
                                "check --address (host:port of the head node, `ray status` there) "
                                "or omit it to start a local one") from None
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_one_thread)
        pending = {remote.remote(fn, t): n for t, n in zip(tasks, names)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                name = pending.pop(ref)
                try:
                    yield ray.get(ref), min(workers, len(pending))
                except Exception as e:  # noqa: BLE001 - a worker that died
                    yield _failed(name, e), min(workers, len(pending))
    finally:
        if started:
            ray.shutdown()


def _submitit(fn: TaskFn, tasks: Sequence[Any], workers: int, names: Sequence[str],
              log_dir: Path, cluster: str | None, params: dict) -> Iterator[tuple[dict, int]]:
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor submitit needs submitit: pip install 'soo-interp[submitit]'") from None
    import time

    executor = submitit.AutoExecutor(folder=str(log_dir), cluster=cluster)
    executor.update_parameters(**{"timeout_min": 24 * 60, "cpus_per_task": 1, **params})
    queue = list(zip(tasks, names))
    running: list[tuple[Any, str]] = []
    while queue or running:
        while queue and len(running) < workers:
            task, name = queue.pop(0)
            running.append((executor.submit(_one_thread, fn, task), name))
        finished = [(j, n) for j, n in running if j.done()]
        if not finished:
            time.sleep(0.5)
            continue
        for job, name in finished:
            running.remove((job, name))
            try:
                yield job.result(), len(running)
            except Exception as e:  # noqa: BLE001 - job killed or crashed
                yield _failed(name, e), len(running)


def run_tasks(fn: TaskFn, tasks: Sequence[Any], names: Sequence[str], *, executor: str = "local",
              workers: int | None = None, address: str | None = None,
              log_dir: str | Path | None = None, cluster: str | None = None,
              params: dict | None = None, progress: bool = True) -> list[dict]:
    """Run `fn` over `tasks` on `executor` with at most `workers` in flight; a progress bar
    shows done/running/failed. `address`: a Ray cluster (`host:port`; default: a local one).
    `cluster`: submitit's cluster (`local`, `slurm`, or None to detect) with `params` passed to
    `update_parameters` (e.g. `slurm_partition`); its logs go to `log_dir`."""
    from tqdm.auto import tqdm

    check_choice("executor", executor, EXECUTORS)
    workers = workers or default_workers()
    if workers < 1:
        raise ConfigError("workers must be >= 1")
    if executor == "local":
        stream = _local(fn, tasks, workers, names)
    elif executor == "ray":
        stream = _ray(fn, tasks, workers, names, address)
    else:
        stream = _submitit(fn, tasks, workers, names, Path(log_dir or "submitit_logs"), cluster,
                           params or {})
    results: list[dict] = []
    bar = tqdm(total=len(tasks), disable=not progress, desc=f"cells ({executor})", unit="cell")
    with bar:
        for status, running in stream:
            results.append(status)
            failed = sum(r["status"] == "failed" for r in results)
            bar.update(1)
            bar.set_postfix(done=len(results) - failed, running=running, failed=failed)
            if status["status"] == "failed":
                bar.write(f"cell {status['name']} failed: {status.get('error')}; "
                          f"log: {status.get('log')}")
    return results


@dataclasses.dataclass
class Executor:
    """Where a run's cells go: `name` local (worker processes; `workers` 1 = this process), ray
    (`address` of a cluster, default a local one) or submitit (`cluster` local|slurm, `params`
    for `update_parameters`). `workers`: cells at once (default `default_workers()`)."""

    name: str = "local"
    workers: int | None = None
    address: str | None = None
    cluster: str | None = None
    params: dict | None = None

    def __post_init__(self) -> None:
        check_choice("executor", self.name, EXECUTORS)
        if self.cluster is not None:
            check_choice("cluster", self.cluster, CLUSTERS)
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be >= 1 (got {self.workers}); 1 runs the cells in "
                              "this process")

    def run(self, fn: TaskFn, tasks: Sequence[Any], names: Sequence[str], log_dir: Path,
            progress: bool = True) -> list[dict]:
        """`run_tasks` on this executor; submitit's own logs go under `log_dir`."""
        return run_tasks(fn, tasks, names, executor=self.name, workers=self.workers,
                         address=self.address, log_dir=Path(log_dir) / "submitit",
                         cluster=self.cluster, params=self.params, progress=progress)


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (Linux /proc): a pool's workers and its resource tracker.
    What the stray-process checks count after a parent is killed."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parent[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found
