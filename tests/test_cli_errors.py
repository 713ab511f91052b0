"""The CLI's rule: a user's mistake is one line naming the fix, exit 2, nothing written; a bug
is one line pointing to a log that holds the traceback, exit 1. (`benchmarks/bad_inputs.py`
runs many more cases through real subprocesses.)"""
import argparse
import shutil
import warnings

import pytest
import torch

from soo_interp.cli import main

ORG = ["--model", "organism"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    from safetensors.torch import load_file

    from soo_interp.organism import shipped_checkpoint

    f = tmp_path_factory.mktemp("bad")
    (f / "cp1252.csv").write_bytes("self,other\nCaf\xe9 you,Caf\xe9 Bob\n".encode("cp1252"))
    (f / "pairs_dir.jsonl").mkdir()
    for name in ("truncated", "pickled", "tampered"):
        shutil.copytree(shipped_checkpoint(), f / name)
    weights = (f / "truncated" / "model.safetensors").read_bytes()
    (f / "truncated" / "model.safetensors").write_bytes(weights[:1000])
    (f / "truncated" / "manifest.json").unlink()
    state = load_file(str(f / "pickled" / "model.safetensors"))
    state["extra"] = argparse.Namespace(x=1)  # not loadable with weights_only
    (f / "pickled" / "model.safetensors").unlink()
    (f / "pickled" / "manifest.json").unlink()
    torch.save(state, f / "pickled" / "pytorch_model.bin")
    data = bytearray((f / "tampered" / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in a copy loaded by path
    (f / "tampered" / "model.safetensors").write_bytes(bytes(data))
    (f / "notes.txt").write_text("a file")
    (f / "null.yaml").write_text("batch_size: null\n")
    (f / "dup.yaml").write_text("layers: '0'\nlayers: '1'\n")
    (f / "sham.yaml").write_text("layer: 1\nsham: maybe\n")
    (f / "empty_run").mkdir()
    return f


CASES = [
    (["measure", *ORG, "--pairs", "{f}/cp1252.csv"], "is not UTF-8 text (byte 0xe9 on line 2)"),
    (["train", *ORG, "--pairs", "{f}/pairs_dir.jsonl"], "is a folder; give the file itself"),
    (["measure", "--model", "{f}/truncated"], "cannot load model"),
    (["evaluate", "--model", "{f}/pickled"], "cannot load model"),
    (["measure", "--model", "{f}/tampered"], "fails its sha256 check"),
    (["measure", *ORG, "--device", "npu"], "unknown device 'npu'"),
    (["evaluate", *ORG, "--device", "cuda:3"], "not available on this machine"),
    (["probe", *ORG, "--batch-size", "-2"], "batch_size must be a whole number >= 1"),
    (["evaluate", *ORG, "--n", "0"], "n must be a whole number >= 1"),
    (["train", *ORG, "--layer", "1", "--batch-size", "0"], "batch_size must be a whole number >= 1"),
    (["measure", *ORG, "--max-prompt-tokens", "3"], "over the limit of 3 (max_prompt_tokens)"),
    (["sweep", "--seeds", "1,x"], "cannot read '1,x'"),
    (["compare", *ORG, "--adapter", "{f}", "--out", "{f}/notes.txt/o"], "is a file"),
    (["demo", "--figures", "{f}/notes.txt/figs"], "cannot create --figures folder"),
    # issue 23: these were internal errors (exit 1) or accepted
    (["train", *ORG, "--layer", "1", "--weight-decay", "-1"], "weight_decay must be >= 0"),
    (["train", *ORG, "--layer", "1", "--seed", "99999999999999999999"], "from 0 to 2**63 - 1"),
    (["train", *ORG, "--layer", "1", "--lora-alpha", "0"], "lora_alpha must be > 0"),
    (["train", *ORG, "--config", "{f}/sham.yaml"], "sham = 'maybe' is not true/false"),
    (["train", *ORG, "--resume", "--overwrite"], "contradict each other"),
    (["train", *ORG, "--resume", "--out", "{f}/empty_run"], "nothing to resume"),
    (["measure", *ORG, "--config", "{f}/null.yaml"], "batch_size = None is not a whole number"),
    (["measure", *ORG, "--config", "{f}/dup.yaml"], "key 'layers' appears twice"),
    (["rl", "train", "--maddpg", "lr=abc"], "lr = 'abc' is not a finite number"),
    (["rl", "train", "--workers", "0"], "not a number of processes >= 1"),
    (["rl", "train", "--maddpg", "lr=[1"], "lr = '[1' is not a finite number"),
]


@pytest.mark.parametrize("argv,needle", CASES, ids=[" ".join(c[0][:2]) + " " + c[1][:24]
                                                      for c in CASES])
def test_user_errors_are_one_line_exit_2_and_write_nothing(bad_files, tmp_path, capsys,
                                                           argv, needle):
    argv = [a.format(f=bad_files) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o")]
    before = sorted(p.name for p in bad_files.rglob("*"))
    code = _run(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err
    assert needle in err, err
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in bad_files.rglob("*")) == before


def _run(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own one-line errors
        return e.code


def test_a_mismatched_adapters_message_stays_short(tmp_path, tiny_model_dir, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir("llama", n_layers=2))
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(
        tmp_path / "adapter")
    with warnings.catch_warnings(record=True) as seen:  # a warning line would precede ours
        warnings.simplefilter("always")
        code = main(["evaluate", *ORG, "--adapter", str(tmp_path / "adapter"), "--out",
                     str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not fit this model" in err and len(err) < 500, err
    assert [str(w.message) for w in seen if w.category is FutureWarning] == []


def test_a_bug_is_one_line_pointing_to_a_log_with_the_traceback(monkeypatch, tmp_path, capsys):
    import soo_interp.commands.organism as organism_cmd

    def broken(args):  # stands in for any defect inside a command
        return {}["missing"]

    monkeypatch.setattr(organism_cmd, "run_card", broken)
    monkeypatch.setenv("SOO_INTERP_LOG_DIR", str(tmp_path))
    code = main(["organism", "card"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert "internal error (KeyError: 'missing'); this is a bug" in err
    log = next(tmp_path.glob("*.log"))
    assert str(log) in err and "Traceback" in log.read_text() and "broken" in log.read_text()


def test_api_mistakes_raise_our_errors_with_a_fix():
    """Each used to raise a raw library exception (KeyError, AttributeError, ValueError, ...)."""
    import pandas as pd

    from soo_interp import load_model, measure, soo_pairs
    from soo_interp.errors import SooError
    from soo_interp.probes import fit_probes
    from soo_interp.stats import summarize
    from soo_interp.training import TrainConfig

    lm = load_model("organism")
    calls = {
        "pairs as tuples": lambda: measure(lm, [("You want it", "Bob wants it")]),
        "pairs as a string": lambda: measure(lm, "You want it"),
        "load_model(None)": lambda: load_model(None),
        "fit_probes with no suites": lambda: fit_probes(lm, suites=()),
        "summarize of an empty frame": lambda: summarize(pd.DataFrame()),
        "measure(remote='yes')": lambda: measure(lm, soo_pairs("test")[:2], remote="yes"),
        "TrainConfig(lr='abc')": lambda: TrainConfig(lr="abc"),
        "TrainConfig(epochs=1.5)": lambda: TrainConfig(epochs=1.5),
    }
    for what, call in calls.items():
        with pytest.raises(SooError) as e:
            call()
        assert "\n" not in str(e.value) and len(str(e.value)) < 300, what
    # safe conversions, never a guess: "1e-3" is a float, "false" is False
    cfg = TrainConfig(lr="1e-3", sham="false", layers_to_transform="0-2")
    assert cfg.lr == 1e-3 and cfg.sham is False and cfg.layers_to_transform == (0, 1, 2)


def test_an_unwritable_log_folder_still_gives_one_line(monkeypatch, capsys):
    """It used to end in a raw 33-line traceback of the failed log write."""
    import soo_interp.commands.organism as organism_cmd

    monkeypatch.setattr(organism_cmd, "run_card", lambda args: {}["missing"])
    monkeypatch.setenv("SOO_INTERP_LOG_DIR", "/proc/soo-interp-logs")
    code = main(["organism", "card"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "internal error (KeyError" in err
    assert "no log" in err and "SOO_INTERP_LOG_DIR" in err
