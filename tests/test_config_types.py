"""One config mechanism, typed: every field's value is checked (or converted where nothing is
guessed) whether it comes from Python, a flag or YAML; one line names the key, the value and
the expected type. Nested configs (a sweep's `train`, RL's `env` and `maddpg`) are reachable
from the command line through dotted flags and from YAML through nested mappings."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil

import pytest

import soo_interp
from soo_interp.cli import build_parser, main
from soo_interp.commands.common import config_from_args
from soo_interp.config import Config
from soo_interp.errors import ConfigError, check_choice
from soo_interp.experiments import SweepConfig
from soo_interp.rl.env import EnvConfig
from soo_interp.rl.maddpg import MaddpgConfig
from soo_interp.rl.training import RLTrainConfig
from soo_interp.training import TrainConfig

TRAIN = ["train", "--model", "m", "--out", "o"]


def _exit_code(argv: list[str]) -> int:
    """`main`'s exit status (argparse's refusals exit rather than return)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code

# (keyword, bad value, what the one-line error must say)
REFUSED = [
    ("sham", "yes", "TrainConfig: sham = 'yes' is not true/false"),
    ("sham", "maybe", "sham = 'maybe' is not true/false"),
    ("layer", [1, 2], "TrainConfig: layer = [1, 2] is not a whole number"),
    ("epochs", 1.5, "TrainConfig: epochs = 1.5 is not a whole number"),
    ("epochs", "1.5", "TrainConfig: epochs = '1.5' is not a whole number"),
    ("lr", "fast", "TrainConfig: lr = 'fast' is not a finite number"),
    ("lora_alpha", 0, "lora_alpha must be > 0"),
    ("loss", "l1", "unknown loss 'l1'; choose from mse, cosine, kl_logits"),
]


@pytest.mark.parametrize("key,value,message", REFUSED, ids=[f"{k}={v!r}" for k, v, _ in REFUSED])
def test_bad_values_are_one_config_error_from_python_and_yaml(key, value, message):
    for build in (lambda: TrainConfig(**{key: value}),
                  lambda: TrainConfig.from_dict({key: value}),
                  lambda: TrainConfig.from_yaml(f"{key}: {value!r}\n".replace("'", '"'))):
        with pytest.raises(ConfigError) as e:
            build()
        assert message in str(e.value) and "\n" not in str(e.value)


def test_strings_become_numbers_and_exactly_true_false_become_booleans():
    cfg = TrainConfig(lr="1e-3", epochs="3", sham="false", stop_grad_other="TRUE")
    assert cfg.lr == 0.001 and cfg.epochs == 3 and cfg.sham is False and cfg.stop_grad_other is True
    assert TrainConfig.from_yaml("lr: 1e-3\nsham: 'false'\n").lr == 0.001  # PyYAML: a string
    assert TrainConfig.from_yaml("sham: 'false'\n").sham is False  # never a truthy string
    for word in ("yes", "no", "on", "1", ""):
        with pytest.raises(ConfigError, match="is not true/false"):
            TrainConfig(sham=word)


def test_layer_lists_are_checked_on_every_config():
    with pytest.raises(ConfigError, match="SweepConfig: layers = 'abc' is not a list of layers"):
        SweepConfig(layers="abc")
    assert SweepConfig(layers="0-2,5").layers == "0-2,5" and SweepConfig(layers="all")


def test_duplicate_yaml_keys_are_refused_at_any_depth():
    with pytest.raises(ConfigError, match="key 'lr' appears twice"):
        TrainConfig.from_yaml("lr: 1e-3\nlr: 1e-2\n")
    with pytest.raises(ConfigError, match="key 'lr' appears twice"):
        SweepConfig.from_yaml("train:\n  lr: 1e-3\n  lr: 1e-2\n")


@pytest.mark.parametrize("flags,message", [
    (["--sham", "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'"),
    (["--lora-alpha", "0"], "lora_alpha must be > 0"),
    (["--loss", "l1"], "argument --loss: invalid choice: 'l1'"),
])
def test_bad_flags_are_one_line_exit_2(flags, message, capsys):
    assert _exit_code([*TRAIN, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_yaml_values_are_checked_like_flags(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("layer: [1, 2]\n")
    assert _exit_code([*TRAIN, "--config", str(tmp_path / "c.yaml")]) == 2
    assert "TrainConfig: layer = [1, 2] is not a whole number" in capsys.readouterr().err


def test_sweep_train_is_reachable_by_dotted_flags_aliases_and_yaml(tmp_path):
    (tmp_path / "s.yaml").write_text("n: 3\ntrain:\n  lr: 1e-2\n  epochs: 4\n")
    args = build_parser().parse_args(["sweep", "--out", "o", "--config", str(tmp_path / "s.yaml"),
                                      "--train.epochs", "2", "--train.lora-alpha", "16",
                                      "--pooling", "mean"])
    cfg = config_from_args(SweepConfig, args)
    assert (cfg.n, cfg.train.lr, cfg.train.epochs, cfg.train.lora_alpha, cfg.train.pooling) == \
        (3, 0.01, 2, 16, "mean")  # YAML, then the flags (an old spelling included)
    assert cfg.train.lora_r == TrainConfig().lora_r  # keys given nowhere keep the defaults
    with pytest.raises(SystemExit):  # a cell sets its own seed: no flag for it
        build_parser().parse_args(["sweep", "--out", "o", "--train.seed", "1"])


def test_rl_nested_configs_from_dotted_flags_key_values_and_yaml(tmp_path):
    args = build_parser().parse_args(["rl", "train", "--out", "o", "--env.variant", "keep_close",
                                      "--maddpg", "batch_size=64", "lr=1e-3",
                                      "--maddpg.steps-per-update", "50", "--n-envs", "8"])
    cfg = config_from_args(RLTrainConfig, args)
    assert cfg.env == EnvConfig(variant="keep_close", n_envs=8)  # n_envs follows the run's
    assert cfg.maddpg == MaddpgConfig(batch_size=64, lr=0.001, steps_per_update=50)
    legacy = config_from_args(RLTrainConfig, build_parser().parse_args(
        ["rl", "train", "--out", "o", "--env", "variant=keep_close"]))  # reports' commands.sh
    assert legacy.env.variant == "keep_close"
    (tmp_path / "r.yaml").write_text("env:\n  variant: keep_close\n  trap_bonus: 5\n")
    from_yaml = RLTrainConfig.from_yaml(tmp_path / "r.yaml")
    assert from_yaml.env.trap_bonus == 5.0 and from_yaml.env.variant == "keep_close"
    assert RLTrainConfig.from_dict(from_yaml.to_dict()) == from_yaml
    with pytest.raises(ConfigError, match=r"RLTrainConfig.env: EnvConfig: unknown keys \['sight'\]"):
        RLTrainConfig(env={"sight": 0.2})
    with pytest.raises(ConfigError, match="RLTrainConfig.maddpg: MaddpgConfig: lr = 'x' is not"):
        RLTrainConfig.from_dict({"maddpg": {"lr": "x"}})


def _all_configs() -> list[type[Config]]:
    for m in pkgutil.walk_packages(soo_interp.__path__, "soo_interp."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    found, todo = [], list(Config.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_one_validation_idiom_the_base_checks_always_run():
    configs = _all_configs()
    assert len(configs) >= 16
    overriding = [c.__name__ for c in configs if "__post_init__" in vars(c)]
    assert overriding == []  # subclasses put their checks in check(); the base always runs first
    for cls in configs:
        hints = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.positive) <= hints and set(cls.choices) <= hints, cls.__name__
        cls()  # every default is valid


def test_check_choice_is_the_one_choice_message():
    check_choice("loss", "mse", ("mse", "cosine"))
    with pytest.raises(ConfigError, match=r"^unknown loss 'l1'; choose from mse, cosine$"):
        check_choice("loss", "l1", ("mse", "cosine"))
    with pytest.raises(ValueError, match="choose from a, b .here.$"):
        check_choice("x", "c", "ab", ValueError, " (here)")


def test_command_choices_are_the_librarys_constants():
    """A choice list offered by a flag is the config's own list (no copy in commands/)."""
    from soo_interp.metrics import POOLINGS, VECTOR_POOLINGS
    from soo_interp.training.config import LOSSES

    parser = build_parser()

    def choices(argv: list[str], dest: str) -> list:
        sub = parser
        for word in argv:
            action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
            sub = action.choices[word]
        return next(a.choices for a in sub._actions if a.dest == dest)

    assert choices(["train"], "loss") == list(LOSSES)
    assert choices(["measure"], "pooling") == list(POOLINGS)
    assert choices(["probe"], "pooling") == list(VECTOR_POOLINGS)
    assert choices(["sweep"], "train.pooling") == list(POOLINGS)
    assert choices(["rl", "train"], "env.variant") == list(EnvConfig.choices["variant"])
