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
    (["train", *ORG, "--layer", "1", "--batch-size", "0"], "batch_size must be >= 1"),
    (["measure", *ORG, "--max-prompt-tokens", "3"], "over the limit of 3 (max_prompt_tokens)"),
    (["sweep", "--seeds", "1,x"], "cannot read '1,x'"),
    (["compare", *ORG, "--adapter", "{f}", "--out", "{f}/notes.txt/o"], "is a file"),
    (["demo", "--figures", "{f}/notes.txt/figs"], "cannot create --figures folder"),
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
