"""The SOO LoRA trainer on tiny random models: it lowers latent SOO where the sham does not,
resumes exactly, saves adapters that reload, and refuses bad input cleanly."""
from __future__ import annotations

import json
import signal

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from soo_interp import load_model, measure, soo_pairs
from soo_interp.cli import main
from soo_interp.errors import CheckpointError, OutputExistsError, TrainingError
from soo_interp.models.loading import detach_adapter
from soo_interp.models.sites import Site
from soo_interp.models.tokenize import encode
from soo_interp.training import TrainConfig, train_soo
from soo_interp.training.losses import pair_losses

PAIRS = soo_pairs("train")[:16]
FAST = dict(layer=2, lr=1e-3, epochs=5, batch_size=4, grad_accum=2)



@pytest.fixture
def llama_dir(tiny_model_dir):
    return tiny_model_dir("llama", n_layers=4)


@pytest.fixture
def lm(llama_dir):
    """A fresh model per test (training attaches, then detaches, LoRA layers)."""
    return load_model(str(llama_dir))


def adapter_weights(folder):
    return load_file(str(folder / "adapter_model.safetensors"))


def test_soo_training_halves_latent_soo_and_sham_does_much_less(lm):
    soo = train_soo(lm, PAIRS, TrainConfig(**FAST, seed=1), progress=False)
    sham = train_soo(lm, PAIRS, TrainConfig(**FAST, seed=1, sham=True), progress=False)
    r_soo = soo.final_latent_soo / soo.initial_latent_soo
    r_sham = sham.final_latent_soo / sham.initial_latent_soo
    print(f"\nlatent SOO at L2.attn: SOO {soo.initial_latent_soo:.3g} -> {soo.final_latent_soo:.3g}"
          f" (x{r_soo:.3f}); sham {sham.initial_latent_soo:.3g} -> {sham.final_latent_soo:.3g} "
          f"(x{r_sham:.3f}); {soo.steps} steps each")
    assert soo.initial_latent_soo == sham.initial_latent_soo  # same base, same pairs
    assert soo.steps == sham.steps == 10
    assert r_soo <= 0.5
    assert (1 - r_sham) <= 0.5 * (1 - r_soo), "the sham run lowered latent SOO almost as much"
    from soo_interp.plots import training_curves
    fig = training_curves(pd.concat([soo.log, sham.log]))
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert sorted(line.get_label() for line in fig.axes[1].lines) == [
        "condition=sham seed=1", "condition=soo seed=1"]
    assert list(fig.axes[1].lines[0].get_ydata()) == soo.log[soo.log.metric == "latent_soo"].value.tolist()


def test_interrupted_then_resumed_run_equals_uninterrupted(lm, tmp_path):
    cfg = TrainConfig(**FAST, seed=3, checkpoint_every=3)  # dropout 0.2: RNG state matters
    full = train_soo(lm, PAIRS, cfg, out=tmp_path / "full", progress=False)
    # Interrupt with SIGTERM in the middle of an accumulation group (the 13th forward).
    calls = {"n": 0}

    def send_sigterm(*_):
        calls["n"] += 1
        if calls["n"] == 13:
            signal.raise_signal(signal.SIGTERM)

    h = lm.model.get_input_embeddings().register_forward_hook(send_sigterm)
    with pytest.raises(KeyboardInterrupt):
        train_soo(lm, PAIRS, cfg, out=tmp_path / "cut", progress=False)
    h.remove()
    ckpts = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert ckpts and ckpts[-1] < "step-000010"
    # the log reached disk with the checkpoint, not only at the end of the run
    cut_log = pd.read_parquet(tmp_path / "cut" / "train_log.parquet")
    step = int(ckpts[-1].split("-")[1])
    assert cut_log.step.max() == step
    pd.testing.assert_frame_equal(cut_log, full.log[full.log.step <= step].reset_index(drop=True),
                                  check_dtype=False)
    assert not (tmp_path / "cut" / "adapter_model.safetensors").exists()
    # ... and once more by max_steps (a finished short run extended by resume).
    train_soo(lm, PAIRS, TrainConfig(**FAST, seed=3, checkpoint_every=3, max_steps=4),
              out=tmp_path / "short", progress=False)
    for name in ("cut", "short"):
        res = train_soo(lm, PAIRS, cfg, out=tmp_path / name, resume=True, progress=False)
        a, b = adapter_weights(tmp_path / "full"), adapter_weights(tmp_path / name)
        assert set(a) == set(b)
        diff = max((a[k] - b[k]).abs().max().item() for k in a)
        assert diff <= 1e-6, f"{name}: resumed adapter differs by {diff}"
        assert res.log.equals(full.log)
    assert torch.cat([v.flatten() for v in a.values()]).abs().max() > 0


def test_lr_schedule_is_transformers_linear_decay_after_warmup(lm):
    cfg = TrainConfig(**FAST, lr_schedule="linear", warmup_steps=2, max_steps=5)
    res = train_soo(lm, PAIRS, cfg, progress=False)
    lrs = res.log[res.log.metric == "lr"].value.tolist()
    # 10 planned steps (2 per epoch x 5): 0 and 1/2 in warmup, then (10 - s) / 8
    assert lrs == pytest.approx([0.0, 5e-4, 1e-3, 1e-3 * 7 / 8, 1e-3 * 6 / 8])


def test_train_state_round_trips_optimizer_scheduler_rng_and_position(tmp_path):
    from soo_interp.training.state import new_state

    def state():
        torch.manual_seed(0)
        return new_state(torch.nn.Linear(4, 3), TrainConfig(lr=0.1, lr_schedule="linear",
                                                            warmup_steps=1), 6, "cpu")

    a = state()
    for _ in range(3):
        a.optimizer.zero_grad()
        a.params["weight"].sum().backward()
        a.optimizer.step()
        a.scheduler.step()
        a.step += 1
    a.log.append({"step": 3, "epoch": 1, "metric": "loss", "value": 0.5})
    meta = {"config": {"x": 1}, "model": "m", "pairs": "p"}
    a.save(tmp_path, meta)
    expected_draw = torch.rand(3)
    b = state()
    assert b.step == 0 and not torch.equal(b.params["weight"], a.params["weight"])
    b.load(sorted((tmp_path / "checkpoints").iterdir())[-1], meta)
    assert b.step == 3 and b.log == a.log and b.position(2) == (1, 1)
    assert torch.equal(b.params["weight"], a.params["weight"])
    assert b.scheduler.get_last_lr() == a.scheduler.get_last_lr()
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    assert torch.equal(torch.rand(3), expected_draw)  # RNG restored to the save point
    with pytest.raises(CheckpointError, match="another model"):
        state().load(sorted((tmp_path / "checkpoints").iterdir())[-1], {**meta, "model": "n"})


def test_saved_adapter_reloads_and_reproduces_logged_latent_soo(lm, llama_dir, tmp_path):
    before = measure(lm, PAIRS, layers=[2], components=["attn"], progress=False)
    heldout = soo_pairs("test")[:8]
    res = train_soo(lm, PAIRS, TrainConfig(**FAST, seed=0), out=tmp_path / "run", progress=False,
                    eval_pairs=heldout)
    log = res.log[res.log.metric == "latent_soo"]
    assert log.value.iloc[-1] == res.final_latent_soo
    held = res.log[res.log.metric == "heldout_latent_soo"]
    assert held.step.tolist() == log.step.tolist()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["final_latent_soo"] == res.final_latent_soo and run["config"]["layer"] == 2
    # the caller's model is left untouched
    again = measure(lm, PAIRS, layers=[2], components=["attn"], progress=False)
    assert again.value.equals(before.value)
    tuned = load_model(str(llama_dir), adapter=str(tmp_path / "run"))
    df = measure(tuned, PAIRS, layers=[2], components=["attn"], progress=False)
    got = df[df.metric == "latent_soo"].value.mean()
    print(f"\nlogged final latent SOO {res.final_latent_soo:.6g}, reloaded {got:.6g}")
    assert got == pytest.approx(res.final_latent_soo, rel=1e-4)
    assert got < 0.5 * res.initial_latent_soo
    dh = measure(tuned, heldout, layers=[2], components=["attn"], progress=False)
    assert dh[dh.metric == "latent_soo"].value.mean() == pytest.approx(held.value.iloc[-1], rel=1e-4)
    from peft import PeftModel  # plain peft loads it too
    pm = PeftModel.from_pretrained(load_model(str(llama_dir)).model, str(tmp_path / "run"))
    assert sum("lora_A" in n for n, _ in pm.named_parameters()) == 8


def test_saved_adapter_loads_in_nnsight_with_peft(lm, llama_dir, tmp_path):
    from nnsight import TransformersModel

    from soo_interp.metrics import pair_metrics

    res = train_soo(lm, PAIRS, TrainConfig(**{**FAST, "epochs": 2}), out=tmp_path / "run",
                    progress=False)
    nn_model = TransformersModel(str(llama_dir), task="text-generation",
                                 peft=str(tmp_path / "run"), dispatch=True)
    # nnsight 0.8.1 injects the LoRA layers in training mode (dropout on): switch it off.
    nn_model.eval()
    batch = encode(lm.tokenizer, [p.self_text for p in PAIRS] + [p.other_text for p in PAIRS])
    with nn_model.trace(batch.as_kwargs()):
        acts = nn_model.model.layers[2].self_attn.o_proj.output.save()
    m = batch.attention_mask
    got = pair_metrics(acts[:16], acts[16:], m[:16], m[16:], "last")["latent_soo"].mean().item()
    assert got == pytest.approx(res.final_latent_soo, rel=1e-4)
    assert got < 0.9 * res.initial_latent_soo


def test_gradient_accumulation_averages_per_pair_and_keeps_the_last_partial_group(lm, tmp_path):
    """14 pairs in micro-batches of 4 with accumulation 2 make steps of [4, 4] and [4, 2] pairs:
    that must equal micro-batches of 8 without accumulation ([8], [6]), i.e. every pair weighs
    the same within a step, also in the smaller last micro-batch."""
    from soo_interp.training.plan import plan_steps

    pairs = PAIRS[:14]
    base = {**FAST, "lora_dropout": 0.0, "epochs": 2}
    acc = TrainConfig(**{**base, "batch_size": 4, "grad_accum": 2})
    one = TrainConfig(**{**base, "batch_size": 8, "grad_accum": 1})
    assert plan_steps(14, acc) == plan_steps(14, one) == (2, 4)
    # micro-batches 4, 4, 4, 2 with accumulation 3: the last group [2] is a step of its own
    assert plan_steps(14, TrainConfig(**{**base, "batch_size": 4, "grad_accum": 3})) == (2, 4)
    a = train_soo(lm, pairs, acc, out=tmp_path / "acc", progress=False)
    b = train_soo(lm, pairs, one, out=tmp_path / "one", progress=False)
    wa, wb = adapter_weights(tmp_path / "acc"), adapter_weights(tmp_path / "one")
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert diff < 1e-6, diff
    la, lb = (r.log[r.log.metric == "objective"].value.to_numpy() for r in (a, b))
    assert len(la) == 4 and abs(la - lb).max() < 1e-5 * abs(lb).max()


def _expected_lora_params(model, targets, layers, r):
    n = 0
    for name, m in model.named_modules():
        parts = name.split(".")
        if parts[-1] in targets and int(parts[2]) in layers:
            n += r * (m.in_features + m.out_features)
    return n


def test_layers_to_transform_restricts_trainable_parameters(lm):
    counts = {}
    for layers in (None, (1,), (0, 3)):
        expect = _expected_lora_params(lm.model, ("q_proj", "v_proj"),
                                       layers if layers else range(4), 8)
        res = train_soo(lm, PAIRS, TrainConfig(**{**FAST, "max_steps": 1},
                                               layers_to_transform=layers), progress=False)
        trainable = {n: v.numel() for n, v in res.adapter.items()}
        counts[layers] = sum(trainable.values())
        assert counts[layers] == expect
        if layers:
            assert all(any(f"layers.{l}." in n for l in layers) for n in trainable)
    print(f"\ntrainable LoRA parameters: {counts}")
    assert counts[(1,)] * 4 == counts[None] and counts[(0, 3)] * 2 == counts[None]


def test_stopping_at_target_layer_gives_same_loss_and_gradients(lm):
    res = train_soo(lm, PAIRS, TrainConfig(**{**FAST, "max_steps": 2}), progress=False)
    model, cfg = res.attach(lm), TrainConfig(**FAST)
    model.train()
    batch = encode(lm.tokenizer, [p.self_text for p in PAIRS[:4]] + [p.other_text for p in PAIRS[:4]])
    out = {}
    for stop in (True, False):
        model.zero_grad()
        torch.manual_seed(0)
        loss = pair_losses(model, batch, 4, cfg, Site(2, "attn"), stop_early=stop)["objective"].sum()
        loss.backward()
        out[stop] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()
                                   if p.grad is not None})
    model.unload()
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-6)
    assert set(out[True][1]) == set(out[False][1])
    assert len(out[True][1]) == 2 * 2 * 3  # q, v x A, B in layers 0..2: nothing after layer 2
    for n, g in out[True][1].items():
        assert torch.allclose(g, out[False][1][n], atol=1e-7, rtol=1e-5), n
    assert any(g.abs().max() > 0 for g in out[True][1].values())


@pytest.mark.parametrize("variant", [
    dict(loss="mse"), dict(loss="cosine"), dict(loss="kl_logits"),
    dict(loss="kl_logits", pooling="mean"), dict(loss="mse", pooling="mean"),
    dict(loss="mse", stop_grad_other=True), dict(loss="mse", component="mlp"),
    dict(loss="mse", component="resid"), dict(sham=True), dict(sham=True, sham_text="neutral"),
    dict(loss="mse", stop_grad_self=True),
])
def test_every_loss_variant_runs_and_decreases(lm, variant):
    cfg = TrainConfig(**{**FAST, "batch_size": 16, "grad_accum": 1, "lora_dropout": 0.0,
                         "lr": 3e-3, "epochs": 6, **variant})
    res = train_soo(lm, PAIRS, cfg, progress=False)  # full batch: every step sees every pair
    obj = res.log[res.log.metric == "objective"].value.tolist()
    print(f"\n{variant}: objective {obj[0]:.4g} -> {obj[-1]:.4g}")
    if variant.get("sham"):  # LM cross-entropy of a random model: a decrease in nats
        assert obj[-1] < obj[0] - 0.1
    else:
        assert obj[-1] < 0.9 * obj[0]


@pytest.mark.parametrize("loss", ["mse", "kl_logits"])
def test_detaching_self_and_detaching_other_split_the_full_gradient(lm, loss):
    """d/dθ of a loss of (self, other) = its gradient through self + through other: the two
    stop-gradient arms must add up to the plain one, and neither may equal it."""
    res = train_soo(lm, PAIRS, TrainConfig(**{**FAST, "max_steps": 1, "lora_dropout": 0.0}),
                    progress=False)
    model = res.attach(lm)
    model.train()
    batch = encode(lm.tokenizer, [p.self_text for p in PAIRS[:4]] + [p.other_text for p in PAIRS[:4]])
    grads = {}
    for side in ("none", "self", "other"):
        cfg = TrainConfig(**{**FAST, "loss": loss, "lora_dropout": 0.0,
                             "stop_grad_self": side == "self", "stop_grad_other": side == "other"})
        model.zero_grad()
        pair_losses(model, batch, 4, cfg, Site(2, "attn"))["objective"].sum().backward()
        grads[side] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.unload()
    for n, g in grads["none"].items():
        torch.testing.assert_close(grads["self"][n] + grads["other"][n], g, atol=1e-7, rtol=1e-4)
    flat = {k: torch.cat([v.flatten() for v in d.values()]) for k, d in grads.items()}
    assert not torch.allclose(flat["self"], flat["none"]) and flat["self"].abs().max() > 0


def test_unrelated_text_sham_sees_the_same_sequences_and_tokens(lm):
    from soo_interp.data.neutral import neutral_texts
    from soo_interp.training.losses import neutral_batch

    like = encode(lm.tokenizer, [p.self_text for p in PAIRS[:4]] + [p.other_text for p in PAIRS[:4]])
    texts = neutral_texts("train")
    b = neutral_batch(lm.tokenizer, like, texts, 3)
    assert torch.equal(b.lengths, like.lengths) and b.input_ids.shape == like.input_ids.shape
    first = lm.tokenizer.decode(b.input_ids[0, : int(b.lengths[0])], skip_special_tokens=True)
    assert first.split()[:3] == texts[3].split()[:3]
    assert not torch.equal(b.input_ids, like.input_ids)
    common = {**FAST, "max_steps": 2, "lora_dropout": 0.0, "sham": True}
    pairs_sham = train_soo(lm, PAIRS, TrainConfig(**common), progress=False)
    neutral_sham = train_soo(lm, PAIRS, TrainConfig(**common, sham_text="neutral"), progress=False)
    a = pairs_sham.log[pairs_sham.log.metric == "objective"].value.tolist()
    c = neutral_sham.log[neutral_sham.log.metric == "objective"].value.tolist()
    assert a != c  # different data, same steps
    assert pairs_sham.steps == neutral_sham.steps == 2


def test_capability_term_is_logged_and_keeps_model_closer_to_base(lm):
    neutral = ["The weather today is mild with light rain.", "Water boils at one hundred degrees."]
    kw = {**FAST, "batch_size": 16, "grad_accum": 1, "lora_dropout": 0.0, "lr": 3e-3, "epochs": 6,
          "loss": "kl_logits"}
    free = train_soo(lm, PAIRS, TrainConfig(**kw, capability_weight=0.0), progress=False)
    batch = encode(lm.tokenizer, neutral)
    from soo_interp.training.losses import capability_kl
    with torch.no_grad():
        tuned = free.attach(lm).eval()
        kl_free = capability_kl(tuned, batch).mean().item()
    detach_adapter(tuned)
    kept = train_soo(lm, PAIRS, TrainConfig(**kw, capability_weight=10.0), neutral_texts=neutral,
                     progress=False)
    with torch.no_grad():
        tuned = kept.attach(lm).eval()
        kl_kept = capability_kl(tuned, batch).mean().item()
    detach_adapter(tuned)
    print(f"\nneutral-text KL to base: without term {kl_free:.3g}, with term {kl_kept:.3g}")
    assert (kept.log.metric == "capability_kl").any()
    assert kl_kept < 0.5 * kl_free
    # without neutral_texts, the built-in neutral sentences (train split) are used
    res = train_soo(lm, PAIRS, TrainConfig(**{**kw, "max_steps": 2}, capability_weight=1.0),
                    progress=False)
    kl = res.log[res.log.metric == "capability_kl"].value.tolist()
    assert kl[0] == 0.0 and kl[1] > 0  # LoRA starts as the identity (B = 0), then moves


def test_nan_loss_stops_with_a_hint(lm):
    with torch.no_grad():
        lm.model.model.layers[0].self_attn.q_proj.weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="lower the learning rate"):
        train_soo(lm, PAIRS, TrainConfig(**FAST), progress=False)


def test_existing_corrupt_or_foreign_run_folders_are_refused(lm, tiny_model_dir, tmp_path):
    cfg = TrainConfig(**{**FAST, "max_steps": 2})
    train_soo(lm, PAIRS, cfg, out=tmp_path / "run", progress=False)
    with pytest.raises(OutputExistsError):
        train_soo(lm, PAIRS, cfg, out=tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="another config"):
        train_soo(lm, PAIRS, TrainConfig(**{**FAST, "lr": 5e-3}), out=tmp_path / "run", resume=True,
                  progress=False)
    other = load_model(str(tiny_model_dir("llama", n_layers=4, seed=1)))
    with pytest.raises(CheckpointError, match="another model"):
        train_soo(other, PAIRS, cfg, out=tmp_path / "run", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="another set of pairs"):
        train_soo(lm, PAIRS[:12], cfg, out=tmp_path / "run", resume=True, progress=False)
    ckpt = next((tmp_path / "run" / "checkpoints").iterdir())
    # a flipped byte in the adapter, or a state.json edited to another step, used to resume
    # silently into other final adapters: the checkpoint's sha256 manifest refuses both
    good = {f: (ckpt / f).read_bytes() for f in ("adapter.safetensors", "state.json")}
    flipped = bytearray(good["adapter.safetensors"])
    flipped[-3] ^= 0x01
    (ckpt / "adapter.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="adapter.safetensors fails its sha256 check"):
        train_soo(lm, PAIRS, cfg, out=tmp_path / "run", resume=True, progress=False)
    (ckpt / "adapter.safetensors").write_bytes(good["adapter.safetensors"])
    state = json.loads(good["state.json"])
    (ckpt / "state.json").write_text(json.dumps({**state, "step": 999}))
    with pytest.raises(CheckpointError, match="state.json fails its sha256 check"):
        train_soo(lm, PAIRS, cfg, out=tmp_path / "run", resume=True, progress=False)
    (ckpt / "optimizer.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        train_soo(lm, PAIRS, cfg, out=tmp_path / "run", resume=True, progress=False)


def test_resume_on_weights_perturbed_in_place_is_refused(lm, tmp_path):
    """Issue 21: the same object under the same name, its weights changed since the run
    started, is another model to a resume (single run and multi-seed run alike)."""
    from soo_interp.training.trainer import train_seeds

    cfg = TrainConfig(**{**FAST, "max_steps": 2})
    train_soo(lm, PAIRS, cfg, out=tmp_path / "run", progress=False)
    train_seeds(lm, PAIRS, cfg, [0], tmp_path / "seeds", progress=False)
    with torch.no_grad():
        lm.model.model.layers[0].mlp.down_proj.weight.add_(1e-3)
    with pytest.raises(CheckpointError, match="another model"):
        train_soo(lm, PAIRS, cfg, out=tmp_path / "run", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="started from another model"):
        train_seeds(lm, PAIRS, cfg, [0], tmp_path / "seeds", resume=True, progress=False)


def _cli(capsys, *args):
    capsys.readouterr()  # drop earlier output (e.g. building a fixture model)
    code = main(["train", *map(str, args), "--quiet"])
    return code, capsys.readouterr().err.strip()


def test_cli_trains_several_seeds(llama_dir, tmp_path, capsys):
    out = tmp_path / "t1"
    code, err = _cli(capsys, "--model", llama_dir, "--layer", 2, "--epochs", 1, "--lr", 1e-3,
                     "--seeds", "1,2", "--out", out)
    assert code == 0, err
    a, b = adapter_weights(out / "seed1"), adapter_weights(out / "seed2")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == [1, 2] and set(run["final_latent_soo"]) == {"seed1", "seed2"}
    log = pd.read_parquet(out / "train_log.parquet")
    assert sorted(log.seed.unique()) == [1, 2]
    assert (log.metric == "heldout_latent_soo").any()  # built-in pairs: held-out items logged
    code, err = _cli(capsys, "--model", llama_dir, "--layer", 2, "--epochs", 1, "--out", out)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    code, err = _cli(capsys, "--model", llama_dir, "--resume", "--out", out)
    assert code == 0, err  # finished runs resume to themselves, with their saved config
    assert "seed 1:" in err and "seed 2:" in err
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert torch.equal(adapter_weights(out / "seed1")[key],
                       a["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"])


def test_cli_reads_a_yaml_config_and_flags_override_it(llama_dir, tmp_path, capsys):
    TrainConfig(layer=1, lr=1e-3, epochs=3, target_modules=("q_proj", "k_proj")).to_yaml(
        tmp_path / "train.yaml")
    assert TrainConfig.from_yaml(tmp_path / "train.yaml").target_modules == ("q_proj", "k_proj")
    code, err = _cli(capsys, "--model", llama_dir, "--config", tmp_path / "train.yaml",
                     "--layer", 2, "--epochs", 1, "--out", tmp_path / "out")
    assert code == 0, err
    run = json.loads((tmp_path / "out" / "seed0" / "run.json").read_text())
    assert run["config"]["layer"] == 2 and run["config"]["epochs"] == 1
    assert run["config"]["lr"] == 1e-3 and run["target_modules"] == ["q_proj", "k_proj"]
    names = adapter_weights(tmp_path / "out" / "seed0")
    assert {k.split(".")[-3] for k in names} == {"q_proj", "k_proj"}


@pytest.mark.parametrize("args,needle", [
    (["--layer", 9], "layer 9 does not exist; this model has layers 0..3"),
    (["--layer", 2, "--target-modules", "q_proj,wq"], "gate_proj"),
    (["--layer", 2, "--layers-to-transform", "5"], "layer 5 does not exist; this model has layers 0..3"),
    (["--layer", 2, "--lr", -1], "lr must be > 0"),
    (["--layer", 2, "--pooling", "aligned"], "cannot be aligned token for token"),
    (["--layer", 2, "--pairs", "EMPTY"], "holds no pairs"),
    (["--layer", 2, "--resume", "--model", "OTHER"], "another model"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(llama_dir, tiny_model_dir, tmp_path,
                                                            capsys, args, needle):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    out = tmp_path / "out"
    if "--resume" in args:
        assert _cli(capsys, "--model", llama_dir, "--layer", 2, "--max-steps", 1, "--epochs", 1,
                    "--out", out)[0] == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    subs = {"EMPTY": empty, "OTHER": tiny_model_dir("llama", n_layers=4, seed=1)}
    args = [subs.get(a, a) if isinstance(a, str) else a for a in args]
    if "--model" not in args:
        args = ["--model", llama_dir, *args]
    code, err = _cli(capsys, *args, "--epochs", 1, "--out", out)
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "mistral", "gemma2", "qwen2"])
def test_other_families_train_with_their_default_lora_targets(tiny_model_dir, family):
    lm = load_model(str(tiny_model_dir(family, n_layers=2)))
    cfg = TrainConfig(layer=1, lr=3e-3, epochs=4, batch_size=8, grad_accum=1, lora_dropout=0.0)
    res = train_soo(lm, PAIRS[:8], cfg, progress=False)
    targets = {n.split(".")[-3] for n in res.adapter}
    assert targets == set(lm.arch.lora_targets)
    assert res.final_latent_soo < 0.5 * res.initial_latent_soo


def test_tensorboard_tracker_is_off_by_default_and_streams_the_log(lm, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrainConfig(**FAST, max_steps=2)
    train_soo(lm, PAIRS, cfg, out=tmp_path / "off", progress=False)
    assert not (tmp_path / "off" / "tensorboard").exists()
    res = train_soo(lm, PAIRS, TrainConfig(**FAST, max_steps=2, tensorboard=True),
                    out=tmp_path / "on", progress=False)
    acc = EventAccumulator(str(tmp_path / "on" / "tensorboard"))
    acc.Reload()
    logged = res.log[res.log.metric == "objective"]
    assert [e.step for e in acc.Scalars("objective")] == logged.step.tolist() == [1, 2]
    assert [e.value for e in acc.Scalars("objective")] == pytest.approx(logged.value.tolist())


def test_dose_counts_steps_tokens_and_forwards_from_the_plan(lm):
    from soo_interp.models.tokenize import token_ids
    from soo_interp.training.plan import dose

    cfg = TrainConfig(**{**FAST, "batch_size": 4, "grad_accum": 2, "epochs": 3})
    per_pair = [len(token_ids(lm.tokenizer, p.self_text)) + len(token_ids(lm.tokenizer, p.other_text))
                for p in PAIRS]
    got = dose(lm.tokenizer, PAIRS, cfg)
    micro = -(-len(PAIRS) // 4)
    assert got["steps"] == 3 * -(-micro // 2) and got["tokens_seen"] == 3 * sum(per_pair)
    assert got["sequences_seen"] == 3 * 2 * len(PAIRS)
    assert got["forward_passes_per_step"] == 3 * micro / got["steps"]
    capped = dose(lm.tokenizer, PAIRS, TrainConfig(**{**FAST, "max_steps": 1,
                                                      "capability_weight": 1.0}))
    assert capped["steps"] == 1 and capped["tokens_seen"] < got["tokens_seen"]
    assert capped["forward_passes_per_step"] % 3 == 0 and capped["partial_forward"] == 1
