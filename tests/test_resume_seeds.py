"""`train --resume` finishes the run as it was configured: a multi-seed run killed (SIGTERM or
kill -9) during a later seed resumes every unfinished seed with the saved settings and ends with
the same adapters as an uninterrupted run; flags that contradict the run are refused."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from soo_interp.cli import main

REPO = Path(__file__).resolve().parents[1]
SEEDS = [0, 1, 2]


def _args(model, out, *extra):
    return ["train", "--model", str(model), "--layer", "1", "--seeds", "0-2", "--max-steps",
            "24", "--checkpoint-every", "3", "--quiet", "--eval-pairs", "none", "--out",
            str(out), *extra]


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    model = tiny_model_dir("llama", n_layers=2)
    assert main(_args(model, out)) == 0
    return model, out


def _adapters(out):
    return {s: load_file(str(out / f"seed{s}" / "adapter_model.safetensors")) for s in SEEDS}


def _interrupt_during_seed_1(model, out, sig):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "soo_interp", *_args(model, out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "seed1" / "checkpoints").is_dir():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "seed 1 never started"
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert not (out / "seed2").exists() and (out / "seed0" / "run.json").is_file()
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_resume_finishes_every_seed_with_the_saved_settings(uninterrupted, tmp_path, capsys,
                                                             sig):
    model, full = uninterrupted
    out = tmp_path / "run"
    code, err = _interrupt_during_seed_1(model, out, sig)
    if sig == signal.SIGTERM:
        assert code == 143 and err.strip().splitlines()[-1] == \
            "soo-interp train: interrupted by SIGTERM", err
    else:
        assert code == -signal.SIGKILL
    # no flags but --resume: max_steps 24, checkpoint_every 3 and seeds 0-2 come from the run
    assert main(["train", "--model", str(model), "--out", str(out), "--resume",
                 "--quiet"]) == 0, capsys.readouterr().err
    meta = json.loads((out / "run.json").read_text())
    assert meta["seeds"] == SEEDS and meta["status"] == "complete"
    assert meta["config"]["max_steps"] == 24 and meta["config"]["checkpoint_every"] == 3
    got, want = _adapters(out), _adapters(full)
    for s in SEEDS:
        assert json.loads((out / f"seed{s}" / "run.json").read_text())["steps"] == 24
        assert got[s].keys() == want[s].keys()
        for k in want[s]:
            assert (got[s][k] == want[s][k]).all(), (s, k)


def test_resume_refuses_flags_that_contradict_the_run(uninterrupted, capsys):
    model, full = uninterrupted
    before = (full / "run.json").read_text()
    for extra, needle in ((["--max-steps", "30"], "max_steps=30 (run has 24)"),
                          (["--lr", "0.5"], "lr=0.5"),
                          (["--seeds", "0,1"], "--seeds [0, 1] differs")):
        code = main(["train", "--model", str(model), "--out", str(full), "--resume", *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and "\n" not in err, err
    # the same values again are no contradiction: the finished run is read back, not retrained
    assert main(["train", "--model", str(model), "--out", str(full), "--resume", "--max-steps",
                 "24", "--seeds", "2,1,0", "--quiet", "--eval-pairs", "none"]) == 0
    assert json.loads((full / "run.json").read_text())["seeds"] == json.loads(before)["seeds"]
