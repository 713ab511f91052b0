"""The package installs whole: a wheel built from this checkout, installed into a fresh virtual
environment, runs `soo-interp probe` (built-in suites are package data) and `soo-interp demo`
(the organism checkpoint is package data) from a folder outside the checkout.

The fresh venv sees the shared environment's dependencies through a .pth line (so nothing is
downloaded and torch is not reinstalled); soo-interp itself comes only from the wheel."""
from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_runs_probe_and_demo_outside_the_checkout(tmp_path):
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    wheel = next(wheels.glob("soo_interp-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    own = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    (Path(own) / "shared_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", own, str(wheel)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(py), "-m", "soo_interp", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([py, "-c", "import importlib.util as u; print(u.find_spec('soo_interp').origin)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(own), where.stdout  # the wheel's copy, not the checkout
    probe = run("probe", "--model", "organism", "--out", "p", "--layers", "0", "--folds", "2",
                "--components", "attn", "--probes", "mean_diff")
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert (work / "p" / "probes.parquet").is_file() and (work / "p" / "summary.csv").is_file()
    demo = run("demo", "--out", "d", "--figures", "figs", "--n", "1", "--quiet")
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (work / "d" / "report.md").is_file() and len(list((work / "figs").iterdir())) == 4
