"""The layer ablation as independent cells: every condition, layer and outcome is present, the
base rows are the untouched model's, SOO training moves latent SOO at its own site; finished
cells are never recomputed (also after a kill), a changed config is refused, a failed cell is
reported with its log and does not stop the others, and every executor gives the same table."""
import json
import os
import sys

import pandas as pd
import pytest

from soo_interp import load_model
from soo_interp.cli import main
from soo_interp.errors import ConfigError, ExecutorError
from soo_interp.evaluation import perplexity
from soo_interp.executors import Executor
from soo_interp.experiments import SweepConfig, aggregate, sweep
from soo_interp.training import TrainConfig


def _cfg(**kw):
    base = dict(train=TrainConfig(epochs=1, lr=5e-3), layers="0-1", seeds=(0,), n=2,
                scenarios=("burglar", "perspectives"))
    return SweepConfig(**{**base, **kw})


def test_sweep_cells_outcomes_and_reuse(tiny_model_dir, tmp_path, capsys, cells_cli):
    path = str(tiny_model_dir("llama", n_layers=2))
    out = tmp_path / "sw"
    res = sweep(path, config=_cfg(train=TrainConfig(epochs=2, lr=5e-3)), out=out, workers=1,
                progress=False)
    df = res.df
    assert res.ran == 4 and res.reused == 0 and not res.failed
    assert set(df.condition) == {"base", "soo", "sham"}
    assert set(df.train_layer) == {0, 1}
    assert {"deceptive_rate", "honest_rate", "perplexity", "next_token_kl", "latent_soo"} <= set(df.metric)
    base_ppl = df[(df.condition == "base") & (df.metric == "perplexity")].value
    assert base_ppl.iloc[0] == perplexity(load_model(path))
    soo = df[df.metric == "latent_soo"].set_index(["condition", "train_layer"]).value
    for layer in (0, 1):
        assert soo[("soo", layer)] < soo[("base", layer)]
    kl = df[(df.metric == "next_token_kl")]
    assert set(kl.condition) == {"soo", "sham"} and (kl.value > 0).all()
    cell = out / "cells" / "soo-L1.attn-mse-s0"
    for name in ("adapter/adapter_model.safetensors", "adapter/train_log.parquet",
                 "evaluation.parquet", "latent_soo.parquet", "outcomes.parquet", "run.json"):
        assert (cell / name).is_file(), name
    assert not list((out / "cells").glob(".*"))  # no partial folder left behind

    ids = cells_cli.run_ids(out)
    code = main(["sweep", "--model", path, "--layers", "0-1", "--epochs", "2", "--lr", "5e-3",
                 "--n", "2", "--scenarios", "burglar,perspectives", "--workers", "1", "--quiet",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "cells: 0 run, 4 reused, 0 failed" in err and cells_cli.run_ids(out) == ids
    got = pd.read_parquet(out / "sweep.parquet")
    pd.testing.assert_frame_equal(got.astype(object).fillna(-1), df.astype(object).fillna(-1))
    assert (out / "sweep.png").exists() and (out / "sweep.csv").exists()


def test_sweep_refuses_changed_config_and_reports_failed_cell(tiny_model_dir, tmp_path, capsys):
    path = str(tiny_model_dir("llama", n_layers=2))
    out = tmp_path / "sw"
    sweep(path, config=_cfg(layers="1", sham=False), out=out, workers=1, progress=False)
    with pytest.raises(ConfigError, match="lr|train"):
        sweep(path, config=_cfg(layers="1", sham=False, train=TrainConfig(epochs=1, lr=1e-3)),
              out=out, workers=1, progress=False)
    run_json = out / "cells" / "soo-L1.attn-mse-s0" / "run.json"
    meta = json.loads(run_json.read_text())
    run_json.write_text(json.dumps({**meta, "config_hash": "0" * 16}))
    with pytest.raises(ConfigError, match="soo-L1.attn-mse-s0 .* another config"):
        sweep(path, config=_cfg(layers="1", sham=False), out=out, workers=1, progress=False)
    run_json.write_text(json.dumps(meta))
    # a cell that cannot be written fails alone; the grid grows by a layer and a seed meanwhile
    (out / "cells" / ".soo-L0.attn-mse-s0.partial").write_text("not a folder")
    code = main(["sweep", "--model", path, "--layers", "0-1", "--seeds", "0,1", "--no-sham",
                 "--epochs", "1", "--lr", "5e-3", "--n", "2", "--scenarios",
                 "burglar,perspectives", "--workers", "1", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "cells: 2 run, 2 reused, 1 failed" in err
    log = out / "logs" / "soo-L0.attn-mse-s0.log"
    assert str(log) in err and "Traceback" in log.read_text()
    assert {p.name for p in (out / "cells").iterdir() if not p.name.startswith(".")} == {
        "base", "soo-L1.attn-mse-s0", "soo-L0.attn-mse-s1", "soo-L1.attn-mse-s1"}


def test_killed_sweep_resumes_without_recomputing(tiny_model_dir, tmp_path, cells_cli):
    path = str(tiny_model_dir("llama", n_layers=2))
    out = tmp_path / "sw"
    args = ["sweep", "--model", path, "--layers", "0-1", "--seeds", "0,1", "--epochs", "1", "--lr",
            "5e-3", "--n", "2", "--scenarios", "burglar", "--workers", "1", "--quiet", "--out", str(out)]
    before = cells_cli.kill_after(args, out, cells=2)
    assert 2 <= len(before) < 7, "the sweep should be killed half-way"
    mtimes = {n: (out / "cells" / n / "outcomes.parquet").stat().st_mtime_ns for n in before}
    done = cells_cli.run(args)
    assert done.returncode == 0, done.stderr
    assert f"cells: {7 - len(before)} run, {len(before)} reused, 0 failed" in done.stderr
    after = cells_cli.run_ids(out)
    assert len(after) == 7 and {n: after[n] for n in before} == before
    assert mtimes == {n: (out / "cells" / n / "outcomes.parquet").stat().st_mtime_ns for n in before}


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time across make test's xdist workers
def test_executors_give_the_same_table(tiny_model_dir, tmp_path):
    """Two local worker processes, a local Ray cluster and submitit's local executor run the
    same cells as this process does, with identical results."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("submitit")
    path = str(tiny_model_dir("llama", n_layers=2))
    cfg = _cfg(layers="1", scenarios=("burglar",))
    serial = sweep(path, config=cfg, out=tmp_path / "serial", workers=1, progress=False).df
    local = sweep(path, config=cfg, out=tmp_path / "local", workers=2, progress=False)
    assert local.ran == 3
    pd.testing.assert_frame_equal(local.df, serial)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        on_ray = sweep(path, config=cfg, out=tmp_path / "ray", executor=Executor("ray", 2),
                       progress=False)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(on_ray.df, serial)
    sub = sweep(path, config=cfg, out=tmp_path / "sub",
                executor=Executor("submitit", 1, cluster="local"), progress=False)
    pd.testing.assert_frame_equal(sub.df, serial)
    # results from several machines merge by folder: cells copied into one sweep aggregate alike
    merged = tmp_path / "merged"
    (merged / "cells").mkdir(parents=True)
    (merged / "sweep.json").write_text((tmp_path / "ray" / "sweep.json").read_text())
    for src, names in ((tmp_path / "ray", ("base",)), (tmp_path / "sub", ("soo-L1.attn-mse-s0", "sham-s0"))):
        for n in names:
            os.rename(src / "cells" / n, merged / "cells" / n)
    pd.testing.assert_frame_equal(aggregate(merged), serial)


def test_executor_errors_are_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    path = str(tiny_model_dir("llama", n_layers=2))
    args = ["sweep", "--model", path, "--layers", "1", "--out", str(tmp_path / "sw"), "--quiet"]
    with pytest.raises(ExecutorError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        sweep(path, config=_cfg(layers="1"), out=tmp_path / "a",
              executor=Executor("ray", address="127.0.0.1:1"), progress=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setitem(sys.modules, "submitit", None)
    for engine, extra in (("ray", "soo-interp[ray]"), ("submitit", "soo-interp[submitit]")):
        assert main(args + ["--executor", engine, "--overwrite"]) == 2
        err = capsys.readouterr().err.strip()
        assert extra in err and len(err.splitlines()) == 1
    with pytest.raises(ConfigError, match="model object"):
        sweep(load_model(path), config=_cfg(layers="1"), out=tmp_path / "b",
              executor=Executor(workers=2), progress=False)


def test_cells_know_which_model_weights_they_ran(tiny_model_dir, tmp_path):
    """Issue 21: a model perturbed in place (same object, same name) used to reuse every cell
    ("0 ran, 2 reused"); now its cells are refused, for a model object and a named folder."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    cfg = _cfg(layers="1", sham=False, scenarios=("burglar",))
    lm = load_model(str(tiny_model_dir("llama", n_layers=2)))
    first = sweep(lm, config=cfg, out=tmp_path / "obj", workers=1, progress=False)
    assert first.ran == 2
    with torch.no_grad():
        for p in lm.model.parameters():
            p.add_(1e-3)
    with pytest.raises(ConfigError, match="other model weights .*--overwrite"):
        sweep(lm, config=cfg, out=tmp_path / "obj", workers=1, progress=False)
    again = sweep(lm, config=cfg, out=tmp_path / "obj", workers=1, progress=False, overwrite=True)
    assert again.ran == 2 and again.reused == 0
    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir("llama", n_layers=2), path)
    assert sweep(str(path), config=cfg, out=tmp_path / "named", workers=1, progress=False).ran == 2
    weights = path / "model.safetensors"
    save_file({k: v + 1e-3 for k, v in load_file(str(weights)).items()}, str(weights),
              metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="other model weights"):
        sweep(str(path), config=cfg, out=tmp_path / "named", workers=1, progress=False)


def test_kill_9_of_a_sweep_leaves_no_process(tiny_model_dir, tmp_path, cells_cli):
    """Its workers and the resource tracker used to live on (about 520 MB each) for good."""
    import signal
    import subprocess
    import time

    path = str(tiny_model_dir("llama", n_layers=2))
    proc = subprocess.Popen([sys.executable, "-m", "soo_interp", "sweep", "--model", path,
                             "--layers", "0-1", "--seeds", "0,1", "--epochs", "3", "--n", "2",
                             "--scenarios", "burglar", "--workers", "2", "--quiet",
                             "--out", str(tmp_path / "sw")],
                            env=cells_cli.env, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while len(cells_cli.descendants(proc.pid)) < 3 and time.time() < deadline:  # 2 + tracker
        time.sleep(0.2)
    time.sleep(2)  # the workers are loading or training now
    children = cells_cli.descendants(proc.pid)
    assert len(children) >= 3, children
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone, as the OOM killer or kill -9 does
    proc.wait()
    deadline = time.time() + 20
    while any(os.path.exists(f"/proc/{p}") and _alive(p) for p in children) and time.time() < deadline:
        time.sleep(0.2)
    left = [p for p in children if os.path.exists(f"/proc/{p}") and _alive(p)]
    for p in left:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes alive after kill -9 of the sweep: {left}"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_unguarded_script_is_refused_in_one_line(tiny_model_dir, tmp_path, cells_cli):
    """The README's sweep() example run as a script without a __main__ guard used to fail every
    cell with BrokenProcessPool, return 0 rows and exit 0."""
    import subprocess

    path = str(tiny_model_dir("llama", n_layers=2))
    script = tmp_path / "my_sweep.py"
    body = (f"from soo_interp.experiments import SweepConfig, sweep\n"
            f"res = sweep({path!r}, config=SweepConfig(layers='1', n=2), "
            f"out={str(tmp_path / 'sw')!r}, workers=2, progress=False)\nprint(len(res.df), 'rows')\n")
    script.write_text(body)
    done = subprocess.run([sys.executable, str(script)], env=cells_cli.env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "rows" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert "ExecutorError" in last and "my_sweep.py" in last and '__name__ == "__main__"' in last
    assert not (tmp_path / "sw" / "cells").exists() or not list((tmp_path / "sw" / "cells").iterdir())
