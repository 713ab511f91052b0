"""One way from flags to configs: every subcommand takes `--config FILE` and a flag per config
field; a flag given overrides the YAML, the YAML overrides the defaults."""
from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from soo_interp.cli import build_parser, main
from soo_interp.commands.common import config_from_args
from soo_interp.demo import DemoConfig
from soo_interp.errors import ConfigError
from soo_interp.evaluation.run import EvalConfig
from soo_interp.experiments import SweepConfig
from soo_interp.geometry import CompareConfig
from soo_interp.measure import MeasureConfig
from soo_interp.probes.run import ProbeConfig
from soo_interp.training import TrainConfig

COMMANDS = {
    "measure": (MeasureConfig, ["--model", "m", "--out", "o"]),
    "probe": (ProbeConfig, ["--out", "o"]),
    "train": (TrainConfig, ["--model", "m", "--out", "o"]),
    "evaluate": (EvalConfig, ["--model", "m", "--out", "o"]),
    "compare": (CompareConfig, ["--model", "m", "--out", "o"]),
    "sweep": (SweepConfig, ["--out", "o"]),
    "demo": (DemoConfig, []),
}


def _int_fields(cls) -> list[str]:
    """Integer fields, plain ones first, then optional ones (default None: 'decide later')."""
    hints = typing.get_type_hints(cls)
    plain = [f.name for f in dataclasses.fields(cls) if hints[f.name] is int]
    optional = [f.name for f in dataclasses.fields(cls) if hints[f.name] == (int | None)]
    return plain + optional


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_yaml_then_flags_for_every_subcommand(command, tmp_path):
    cls, required = COMMANDS[command]
    from_yaml, from_flag = _int_fields(cls)[:2]
    defaults = cls()
    path = tmp_path / "c.yaml"
    base = {k: getattr(defaults, k) or 0 for k in (from_yaml, from_flag)}  # None: no value yet
    path.write_text(yaml.safe_dump({from_yaml: base[from_yaml] + 1, from_flag: base[from_flag] + 1}))
    flag = "--" + from_flag.replace("_", "-")
    args = build_parser().parse_args([command, *required, "--config", str(path), flag,
                                      str(base[from_flag] + 2)])
    cfg = config_from_args(cls, args)
    assert getattr(cfg, from_yaml) == base[from_yaml] + 1      # from the YAML
    assert getattr(cfg, from_flag) == base[from_flag] + 2      # the flag wins
    others = {f.name for f in dataclasses.fields(cls)} - {from_yaml, from_flag}
    assert all(getattr(cfg, k) == getattr(defaults, k) for k in others)
    no_yaml = config_from_args(cls, build_parser().parse_args([command, *required]))
    assert no_yaml == defaults  # flags not given leave the defaults alone


def test_lists_and_booleans_reach_the_config():
    args = build_parser().parse_args(["train", "--model", "m", "--out", "o", "--target-modules",
                                      "q_proj,k_proj", "--layers-to-transform", "2,0-1", "--sham",
                                      "--no-add-bos"])
    cfg = config_from_args(TrainConfig, args)
    assert cfg.target_modules == ("q_proj", "k_proj") and cfg.layers_to_transform == (0, 1, 2)
    assert cfg.sham is True and cfg.add_bos is False and cfg.stop_grad_other is False
    ev = config_from_args(EvalConfig, build_parser().parse_args(
        ["evaluate", "--model", "m", "--out", "o", "--mirrored", "--scenarios", "burglar,friend"]))
    assert ev.mirrored == "both" and ev.scenarios == ("burglar", "friend")
    sw = config_from_args(SweepConfig, build_parser().parse_args(["sweep", "--out", "o",
                                                                  "--no-sham"]))
    assert sw.sham is False


def test_unknown_yaml_key_is_a_config_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("foldz: 3\n")
    args = build_parser().parse_args(["probe", "--out", "o", "--config", str(tmp_path / "bad.yaml")])
    with pytest.raises(ConfigError, match=r"unknown keys \['foldz'\]"):
        config_from_args(ProbeConfig, args)


def test_evaluate_reads_its_config_file_and_shows_progress_unless_quiet(tiny_model_dir, tmp_path,
                                                                        capsys):
    (tmp_path / "e.yaml").write_text("scoring: logprob\nn: 2\nscenarios: [burglar]\n")
    model = str(tiny_model_dir("llama", n_layers=2))
    code = main(["evaluate", "--model", model, "--config", str(tmp_path / "e.yaml"),
                 "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "log-prob" in err  # the scoring pass's progress bar
    run = yaml.safe_load((tmp_path / "a" / "run.json").read_text())
    assert run["config"]["scoring"] == "logprob" and run["config"]["n"] == 2
    code = main(["evaluate", "--model", model, "--config", str(tmp_path / "e.yaml"),
                 "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 0 and "log-prob" not in capsys.readouterr().err


def test_help_flags_and_defaults_read_as_typed(capsys, tmp_path):
    """Issue 23: --quiet was missing on measure, probe, compare and rl; --remote rejected
    'true'; defaults printed as Python tuples; some flags had no help."""
    import argparse

    from soo_interp.cli import build_parser

    parser = build_parser()
    subs = {}

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, path + (name,))
            elif a.option_strings and a.dest != "help":
                subs.setdefault(path, {})[a.option_strings[0]] = a
    walk(parser, ())
    for cmd in [("measure",), ("probe",), ("compare",), ("rl", "train"), ("rl", "value"),
                ("rl", "finetune"), ("rl", "report")]:
        assert "--quiet" in subs[cmd], cmd
    assert not [(c, f) for c, flags in subs.items() for f, a in flags.items() if not a.help]
    assert not [(c, f) for c, flags in subs.items() for f, a in flags.items()
                if "('" in (a.help or "")]  # tuples
    args = parser.parse_args(["measure", "--model", "m", "--remote", "true", "--out", "o"])
    assert args.remote is True
    out = tmp_path / "m"
    assert main(["measure", "--model", "organism", "--layers", "0", "--quiet", "--out",
                 str(out)]) == 0
    assert capsys.readouterr().err == "" and (out / "soo.parquet").is_file()


def test_train_default_layer_exists_on_the_built_in_organism(tmp_path, capsys):
    """`train`'s default --layer 19 failed on the 3-layer organism; now the middle layer."""
    import json

    from soo_interp import load_model

    out = tmp_path / "t"
    assert main(["train", "--model", "organism", "--max-steps", "1", "--quiet", "--out",
                 str(out)]) == 0, capsys.readouterr().err
    layer = json.loads((out / "seed0" / "run.json").read_text())["config"]["layer"]
    assert layer == load_model("organism").n_layers // 2
