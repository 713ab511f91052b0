"""`soo-interp measure` end to end, and every bad input: one line on stderr, exit 2, no output."""
import json

import pandas as pd
import pytest

from soo_interp.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return code, err


def test_measure_writes_every_output(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "m1"
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--out", out, "--layers", "0-1", "--components", "attn,resid", "--seed", "3")
    assert code == 0, err
    df = pd.read_parquet(out / "soo.parquet")
    assert set(df.layer) == {0, 1} and set(df.component) == {"attn", "resid"}
    assert set(df.metric) == {"latent_soo", "cosine", "floor_mse", "ceiling_mse",
                              "normalised_soo"}  # the built-in pairs carry control prompts
    summary = pd.read_csv(out / "summary.csv")
    assert {"mean", "ci_low", "ci_high", "n"} <= set(summary.columns)
    assert (out / "heatmap.png").stat().st_size > 1000 and (out / "layers.png").exists()
    meta = json.loads((out / "run.json").read_text())
    assert meta["seed"] == 3 and meta["config"]["layers"] == "0-1"
    assert meta["versions"]["torch"] and meta["versions"]["nnsight"]
    # the command that ran (it used to record pytest's own command line when called as main(argv))
    assert meta["command"][:2] == ["soo-interp", "measure"] and "--layers" in meta["command"]


def _assert_clean_failure(code, err, out, *needles):
    assert code == 2
    assert "\n" not in err and "Traceback" not in err
    for n in needles:
        assert n in err, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize("extra, needles", [
    (["--layers", "0-9"], ["layers 3, 4, 5, 6, 7, 8, 9 do not exist", "0..2"]),
    (["--components", "attn,ffn"], ["unknown site 'ffn'", "attn, mlp, resid"]),
])
def test_bad_sites_and_layers(tiny_model_dir, tmp_path, capsys, extra, needles):
    out = tmp_path / "o"
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--out", out, *extra)
    _assert_clean_failure(code, err, out, *needles)


def test_missing_model_path(tmp_path, capsys):
    out = tmp_path / "o"
    code, err = run_cli(capsys, "measure", "--model", tmp_path / "nope", "--out", out)
    _assert_clean_failure(code, err, out, "does not exist")


def test_unsupported_architecture_lists_supported(tmp_path, capsys, tiny_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM, OPTConfig

    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_config(OPTConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=16, ffn_dim=32, num_hidden_layers=1,
        num_attention_heads=2, word_embed_proj_dim=16))
    m.save_pretrained(tmp_path / "opt")
    tiny_tokenizer.save_pretrained(tmp_path / "opt")
    out = tmp_path / "o"
    code, err = run_cli(capsys, "measure", "--model", tmp_path / "opt", "--out", out)
    _assert_clean_failure(code, err, out, "unsupported architecture 'opt'", "llama", "gpt2")


@pytest.mark.parametrize("content, needles", [
    ("", ["holds no pairs"]),
    ('{"self": "a", "other": "b"}\nnot json\n', [":2:", "not valid JSON"]),
    ('{"self": "a", "bob": "b"}\n', [":1:", "'other'"]),
    ('{"self": "a", "other": "b", "swap": "c"}\n', [":1:", "control field 'unrelated' is missing"]),
    ('{"self": "a", "other": "b", "swap": "c", "unrelated": 5}\n', [":1:", "'unrelated'",
                                                                     "non-empty prompt string"]),
    ('{"self": "a", "other": "b", "swap": "c", "unrelated": "d"}\n{"self": "a", "other": "b"}\n',
     ["pair-0001", "'swap' and 'unrelated'"]),
])
def test_bad_pairs_files(tiny_model_dir, tmp_path, capsys, content, needles):
    f = tmp_path / "pairs.jsonl"
    f.write_text(content)
    out = tmp_path / "o"
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--pairs", f, "--out", out)
    _assert_clean_failure(code, err, out, *needles)


def test_aligned_pooling_on_unaligned_pairs_names_them(tiny_model_dir, tmp_path, capsys):
    f = tmp_path / "pairs.jsonl"
    f.write_text('{"pair_id": "short-long", "self": "You go", "other": "Bob goes there today"}\n')
    out = tmp_path / "o"
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--pairs", f, "--pooling", "aligned", "--out", out)
    _assert_clean_failure(code, err, out, "short-long", "--pooling last")


def test_existing_output_folder_needs_overwrite(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    model = tiny_model_dir("llama", n_layers=3)
    code, err = run_cli(capsys, "measure", "--model", model, "--out", out, "--layers", "0")
    assert code == 0, err
    code, err = run_cli(capsys, "measure", "--model", model, "--out", out)
    assert code == 2 and "--overwrite" in err and "\n" not in err
    (out / "soo.parquet").write_bytes(b"earlier")
    code, err = run_cli(capsys, "measure", "--model", model, "--out", out, "--overwrite",
                        "--layers", "1")
    assert code == 0, err
    assert set(pd.read_parquet(out / "soo.parquet").layer) == {1}


def test_a_users_folder_is_never_replaced(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--out", out, "--overwrite")
    assert code == 2 and "not written by soo-interp" in err and "\n" not in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_yaml_config_round_trip_and_flags_override(tiny_model_dir, tmp_path, capsys):
    from soo_interp.measure import MeasureConfig

    cfg = MeasureConfig(layers="1", components=("mlp",), pooling="mean", seed=5)
    assert MeasureConfig.from_yaml(cfg.to_yaml()) == cfg
    cfg.to_yaml(tmp_path / "m.yaml")
    out = tmp_path / "o"
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--config", tmp_path / "m.yaml", "--pooling", "last", "--out", out)
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    assert meta["seed"] == 5
    assert meta["config"]["pooling"] == "last" and meta["config"]["components"] == ["mlp"]
    df = pd.read_parquet(out / "soo.parquet")
    assert set(df.layer) == {1} and set(df.component) == {"mlp"} and set(df.pooling) == {"last"}
    (tmp_path / "bad.yaml").write_text("poolin: last\n")
    code, err = run_cli(capsys, "measure", "--model", tiny_model_dir("llama", n_layers=3),
                        "--config", tmp_path / "bad.yaml", "--out", tmp_path / "o2")
    assert code == 2 and "unknown keys ['poolin']" in err
