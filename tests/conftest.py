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
