"""MADDPG training: updates, exact resume after an interruption, checkpoint validation."""
import json

import pytest
import torch
from safetensors.torch import load_file

from soo_interp.errors import CheckpointError, ConfigError, OutputExistsError, SooError
from soo_interp.executors import Executor
from soo_interp.rl.checkpoint import load_agents, load_pair, load_policy, save_pair
from soo_interp.rl.maddpg import MaddpgConfig, build_agents, soft_update
from soo_interp.rl.training import RLTrainConfig, train, train_many

TINY = {"episodes": 60, "n_envs": 10, "checkpoint_every": 2,
        "maddpg": {"batch_size": 64, "steps_per_update": 50}}


def test_soft_update_is_the_polyak_average():
    a = build_agents(MaddpgConfig())["blue"]
    with torch.no_grad():
        for p in a.actor.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in a.target_actor.state_dict().items()}
    soft_update(a.target_actor, a.actor, 0.01)
    for k, v in a.target_actor.state_dict().items():
        if v.dtype.is_floating_point:
            assert torch.allclose(v, 0.99 * before[k] + 0.01 * a.actor.state_dict()[k])


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    cfg = RLTrainConfig(baseline="deceptive", seed=5, snapshots=[25, 40], **TINY)
    full = train(cfg, tmp_path / "full", progress=False)
    assert len(full) == 6 and (full["trap_rate"] >= 0).all()

    def crash(r):  # dies mid-way between checkpoints (round 3 done, last checkpoint at 2)
        if r == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False, on_round=crash)
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["state"]["round"] == 2
    # a kill between the two files leaves a stale JSON copy: the safetensors header is authoritative
    (tmp_path / "cut" / "checkpoint.json").write_text("{}")
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    a, b = (load_file(str(tmp_path / d / "policy.safetensors")) for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full.equals(resumed)
    assert not (tmp_path / "cut" / "checkpoint.json").exists()
    # snapshots at the end of the rounds reaching 25 and 40 episodes (rounds of 10), equal after
    # the resume replayed round 3, and different from the final policy
    snaps = {d: load_file(str(tmp_path / d / "snapshots" / "ep30" / "policy.safetensors"))
             for d in ("full", "cut")}
    assert all(torch.equal(snaps["full"][k], snaps["cut"][k]) for k in a)
    assert not all(torch.equal(snaps["full"][k], a[k]) for k in a)
    assert load_policy(tmp_path / "full" / "snapshots" / "ep40")[1]["episodes"] == 40
    agents, _ = load_agents(tmp_path / "cut")  # every network, for continued training
    assert torch.equal(agents["blue"].actor.fc1.weight, a["blue.fc1.weight"])
    assert not torch.equal(agents["red"].critic.fc1.weight, agents["red"].target_critic.fc1.weight)
    assert sorted(p.name for p in (tmp_path / "cut" / "snapshots").iterdir()) == ["ep30", "ep40"]
    with pytest.raises(ConfigError, match="snapshots"):
        RLTrainConfig(snapshots=[40_000])


def test_resume_refuses_other_settings_and_existing_folders(tmp_path):
    cfg = RLTrainConfig(baseline="honest", seed=0, **TINY)

    def crash(r):
        if r == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "r", progress=False, on_round=crash)
    other = RLTrainConfig(baseline="honest", seed=1, **TINY)
    with pytest.raises(CheckpointError, match="same settings"):
        train(other, tmp_path / "r", resume=True, progress=False)
    with pytest.raises(OutputExistsError, match="--resume"):
        train(cfg, tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="unknown keys"):
        RLTrainConfig(env={"sight": 0.2})


def test_policy_checks_task_size_and_layout(tmp_path):
    cfg = RLTrainConfig(seed=1, **{**TINY, "episodes": 20})
    train(cfg, tmp_path / "r", progress=False)
    actors, meta = load_policy(tmp_path / "r")
    assert actors["blue"].fc1.in_features == 9 and meta["baseline"] == "deceptive"
    tensors, good = load_pair(tmp_path / "r", "policy")
    for change, match in (({"task": "simple_adversary"}, "task"), ({"hidden": 32}, "hidden size"),
                          ({"obs_layout": {"blue": ["x"], "red": ["y"]}}, "layout")):
        save_pair(tmp_path / "r", "policy", tensors, {**good, **change})
        with pytest.raises(CheckpointError, match=match):
            load_policy(tmp_path / "r")
    with pytest.raises(CheckpointError, match="rl train"):
        load_policy(tmp_path)


@pytest.mark.slow
def test_train_many_on_submitit_gives_the_in_process_weights_and_reports_a_failed_run(tmp_path):
    pytest.importorskip("submitit")
    cfg = RLTrainConfig(baseline="deceptive", seed=3, **{**TINY, "episodes": 20})
    train(cfg, tmp_path / "here" / "deceptive-s3", progress=False)
    (tmp_path / "there" / "honest-s3").mkdir(parents=True)  # a folder that is not a run
    (tmp_path / "there" / "honest-s3" / "notes.txt").write_text("mine")
    other = RLTrainConfig(baseline="honest", seed=3, **{**TINY, "episodes": 20})
    with pytest.raises(SooError, match=r"1 of 2 runs failed \(honest-s3: OutputExistsError"):
        train_many([cfg, other], [tmp_path / "there" / "deceptive-s3", tmp_path / "there" / "honest-s3"],
                   executor=Executor("submitit", 2, cluster="local"))
    a, b = (load_file(str(tmp_path / d / "deceptive-s3" / "policy.safetensors"))
            for d in ("here", "there"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "there" / "submitit").is_dir()
