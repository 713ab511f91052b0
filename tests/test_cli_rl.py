"""`soo-interp rl train|value|finetune|report` end to end on a CI-sized protocol, and bad input."""
import json

import pandas as pd
import pytest

from soo_interp.cli import main
from soo_interp.rl.checkpoint import load_pair, save_pair
from soo_interp.runs import MARKER, run_kind

TRAIN = ["--episodes", "40", "--n-envs", "20", "--checkpoint-every", "1",
         "--maddpg", "batch_size=128", "steps_per_update=200"]


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    """2 baselines x 2 seeds, trained in 2 parallel (spawned) processes."""
    out = tmp_path_factory.mktemp("rl") / "p"
    assert main(["rl", "train", "--out", str(out), "--seeds", "0,1", "--workers", "2",
                 "--snapshots", "20"] + TRAIN) == 0
    return out


def test_train_writes_every_run_with_metadata(protocol):
    runs = sorted(p.name for p in protocol.iterdir() if p.name != MARKER)
    assert runs == ["deceptive-s0", "deceptive-s1", "honest-s0", "honest-s1"]
    assert run_kind(protocol) == "rl-protocol" and run_kind(protocol / "honest-s1") == "rl-train"
    meta = json.loads((protocol / "honest-s1" / "policy.json").read_text())
    assert meta["baseline"] == "honest" and meta["seed"] == 1 and meta["env"]["n_envs"] == 20
    run = json.loads((protocol / "honest-s1" / "run.json").read_text())
    assert run["versions"]["torch"] and run["seed"] == 1
    assert len(pd.read_csv(protocol / "deceptive-s0" / "log.csv")) == 2
    snap = json.loads((protocol / "honest-s1" / "snapshots" / "ep20" / "policy.json").read_text())
    assert snap["episodes"] == 20 and snap["seed"] == 1


def test_value_finetune_report(protocol):
    assert main(["rl", "value", "--runs", str(protocol), "--episodes", "20",
                 "--eval-seeds", "3"]) == 0
    values = pd.read_csv(protocol / "value" / "value.csv")
    assert len(values) == 4 * 3 * 2 and values["soo_value"].between(-60, 10).all()
    pairs = pd.read_csv(protocol / "value" / "value_pairs.csv")
    assert set(pairs["kind"]) == {"deceptive-honest", "deceptive-deceptive", "honest-honest"}
    assert len(pairs) == 2 * 6  # all 6 pairs of 4 models, on own and shared states
    assert main(["rl", "value", "--runs", str(protocol), "--episodes", "20", "--eval-seeds", "2",
                 "--snapshot", "20"]) == 0
    early = pd.read_csv(protocol / "value-ep20" / "value.csv")
    assert set(early["train_episodes"]) == {20} and set(early["model"]) == set(values["model"])
    ft_args = ["rl", "finetune", "--runs", str(protocol), "--seeds", "0", "--rl-episodes", "40",
               "--n-envs", "20", "--episodes", "20"]
    assert main(ft_args) == 0
    ft = pd.read_csv(protocol / "finetune" / "finetune.csv")
    assert set(ft["condition"]) == {"base", "soo", "sham", "plain"}
    assert set(ft["model"]) == {"deceptive-s0"}
    cache = protocol / "finetune.policies"
    assert sorted(p.name for p in cache.iterdir()) == [f"deceptive-s0-{c}"
                                                       for c in ("plain", "sham", "soo")]
    assert main(ft_args + ["--overwrite"]) == 0  # a rerun takes the kept policies: same numbers
    assert pd.read_csv(protocol / "finetune" / "finetune.csv").equals(ft)
    assert main(ft_args + ["--overwrite", "--soo-weight", "2"]) == 2  # kept with other settings
    assert main(["rl", "finetune", "--runs", str(protocol), "--seeds", "0", "--method",
                 "supervised", "--steps", "10", "--episodes", "20", "--out",
                 str(protocol / "ft_sup")]) == 0
    sup = pd.read_csv(protocol / "ft_sup" / "finetune.csv")
    assert set(sup["condition"]) == {"base", "soo", "sham"}
    two = protocol / "ft_two"  # only the conditions asked for; the kept policies are reused
    for c in ("soo", "plain"):
        (protocol / "ft_two.policies").mkdir(exist_ok=True)
        (protocol / "ft_two.policies" / f"deceptive-s0-{c}").symlink_to(cache / f"deceptive-s0-{c}")
    assert main(ft_args + ["--conditions", "plain,soo", "--out", str(two)]) == 0
    pair = pd.read_csv(two / "finetune.csv")
    assert set(pair["condition"]) == {"base", "soo", "plain"}
    assert pair.set_index(["condition", "eval_seed", "metric"])["value"].equals(
        ft[ft["condition"] != "sham"].set_index(["condition", "eval_seed", "metric"])["value"])
    assert main(ft_args + ["--conditions", "soo,shame", "--out", str(protocol / "x")]) == 2
    assert main(["rl", "traps", "--runs", str(protocol), "--episodes", "20", "--eval-seeds", "2"]) == 0
    play = pd.read_csv(protocol / "traps" / "traps.csv")
    assert len(play) == 4 * 4 * 2 and play["self_play"].sum() == 4 * 2
    assert main(["rl", "traps", "--runs", str(protocol), "--recent", "-1", "--out",
                 str(protocol / "t2")]) == 2 and not (protocol / "t2").exists()
    assert main(["rl", "report", "--runs", str(protocol)]) == 0
    report = (protocol / "report" / "report.md").read_text()
    for section in ("Classification across independent", "Confound check", "SOO fine-tuning",
                    "How red gets trapped",
                    "Model-level statistics (40 episodes)", "Accuracy vs training episodes",
                    "exact sign-flip"):
        assert section in report
    tests = pd.read_csv(protocol / "report" / "model_tests.csv")
    assert sorted(set(tests["train_episodes"])) == [20, 40]
    assert set(tests["metric"]) >= {"trap_rate", "lead_fake_rate", "soo_value_own"}
    assert (tests["labelings"] == 6).all() and tests["p_diff"].between(1 / 6, 1).all()
    models = pd.read_csv(protocol / "report" / "models.csv")
    assert len(models[(models["train_episodes"] == 40) & (models["metric"] == "trap_rate")]) == 4
    ftt = pd.read_csv(protocol / "report" / "finetune_tests.csv")
    assert "soo - plain" in set(ftt["contrast"]) and (ftt["n_models"] == 1).all()
    ci = pd.read_csv(protocol / "report" / "finetune_ci.csv")
    assert {"near_red_rate", "red_sensitivity"} <= set(ci["metric"])
    assert (ci["ci_low"] <= ci["mean"]).all() and (ci["mean"] <= ci["ci_high"]).all()
    kept = pd.read_csv(protocol / "report" / "within_base.csv")
    assert set(kept["condition"]) == {"soo", "sham", "plain"} and "near_red_rate" in set(kept["metric"])
    assert "Kept within the baseline's interval" in report
    assert (protocol / "report" / "rl_models.png").stat().st_size > 1000
    assert (protocol / "report" / "rl_traps.png").stat().st_size > 1000
    traps = pd.read_csv(protocol / "report" / "trap_tests.csv")
    assert set(traps["metric"]) >= {"trap_after_contact", "trap_rate_as_red"}
    assert (protocol / "report" / "rl_soo_value.png").stat().st_size > 1000


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, protocol):
    out = tmp_path / "x"
    assert main(["rl", "train", "--out", str(out), "--env", "sight=0.2"] + TRAIN) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown keys ['sight']" in err and "\n" not in err and not out.exists()
    assert main(["rl", "value", "--runs", str(tmp_path)]) == 2
    assert "no trained" in capsys.readouterr().err
    bad = tmp_path / "bad"
    (bad / "deceptive-s0").mkdir(parents=True)
    for f in ("policy.json", "policy.safetensors"):
        (bad / "deceptive-s0" / f).write_bytes((protocol / "deceptive-s0" / f).read_bytes())
    tensors, meta = load_pair(bad / "deceptive-s0", "policy")
    save_pair(bad / "deceptive-s0", "policy", tensors, {**meta, "hidden": 128})
    assert main(["rl", "value", "--runs", str(bad)]) == 2
    assert "hidden size of 128" in capsys.readouterr().err and not (bad / "value").exists()
    assert main(["rl", "train", "--out", str(protocol), "--seeds", "0"] + TRAIN) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["rl", "value", "--runs", str(protocol), "--out", str(bad)]) == 2
    assert "not written by soo-interp" in capsys.readouterr().err  # a user's folder is never replaced


def test_train_refuses_bad_sizes_and_a_users_folder(tmp_path, capsys):
    """Both refused in one line (exit 2) before anything is written; the user's folder is
    left exactly as it was."""
    out = tmp_path / "o"
    for flag in ("--episodes", "--n-envs", "--checkpoint-every"):
        sizes = {"--episodes": "40", "--n-envs": "20", "--checkpoint-every": "1", flag: "0"}
        argv = [x for kv in sizes.items() for x in kv]
        assert main(["rl", "train", "--out", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        name = flag[2:].replace("-", "_")
        assert f"{name} must be a whole number >= 1, not 0; e.g. {flag}" in err
        assert "\n" not in err and not out.exists()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep")
    for extra in (["--overwrite"], ["--resume"], []):
        assert main(["rl", "train", "--out", str(notes), *extra] + TRAIN) == 2
        err = capsys.readouterr().err.strip()
        assert "not written by soo-interp" in err and "\n" not in err
        assert [p.name for p in notes.iterdir()] == ["mine.txt"]
    value = tmp_path / "v"
    value.mkdir()
    (value / MARKER).write_text(json.dumps({"kind": "rl-value"}))
    (value / "value.csv").write_text("x")
    assert main(["rl", "train", "--out", str(value), "--overwrite"] + TRAIN) == 2
    assert "not a rl-protocol run" in capsys.readouterr().err
