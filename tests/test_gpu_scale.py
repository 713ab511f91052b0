"""The prepared GPU check runs end to end on toy shapes (--tiny, CPU), so it is known to work when
someone runs it on a GPU; without CUDA and without --tiny it says it was skipped and exits 0."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_scale.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SCRIPT.parents[1])}


def test_gpu_scale_tiny_runs_every_step():
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--epochs", "1"], env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for row in ("load_model", "bare forward", "latent SOO, 12 sites, hooks",
                "latent SOO, 12 sites, nnsight", "SOO LoRA L2, 52 pairs x 1 epochs",
                "reference recipe", "4-bit"):
        assert row in out, out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check")
def test_gpu_scale_skips_without_cuda():
    done = subprocess.run([sys.executable, str(SCRIPT)], env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("skipped: no CUDA")
