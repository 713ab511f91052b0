"""Whatever soo-interp does with a user's model leaves it as found (config, attention
implementation, hooks, module names and classes, forward methods, train/eval mode), and prompts
too long for it are refused before any forward."""
import pytest
import torch

from soo_interp import load_model, measure
from soo_interp.data.pairs import PromptPair
from soo_interp.errors import PairsError
from soo_interp.models.sites import Site
from soo_interp.models.tokenize import encode
from soo_interp.tracing import BACKENDS, trace_sites


def _state(model: torch.nn.Module) -> dict:
    hook_dicts = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                  "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs")
    return {
        "config": model.config.to_dict(),
        "attn": model.config._attn_implementation,
        "modules": [(n, type(m).__name__) for n, m in model.named_modules()],
        "params": [(n, p.data_ptr()) for n, p in model.named_parameters()],
        "hooks": {n: [len(getattr(m, h, {})) for h in hook_dicts]
                  for n, m in model.named_modules()},
        "patched_forward": [n for n, m in model.named_modules() if "forward" in vars(m)],
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
    }


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_leaves_the_model_as_found(tiny_model_dir, family, backend):
    lm = load_model(str(tiny_model_dir(family, n_layers=2)))
    lm.model.config._attn_implementation = "sdpa"
    before = _state(lm.model)
    batch = encode(lm.tokenizer, ["you want the vase", "bob wants the old vase"])
    for stop_early in (True, False):
        with torch.no_grad():
            out = trace_sites(lm, batch, [Site(0, "attn"), Site(1, "mlp")],
                              lambda s, a, m: a.sum(), backend, stop_early=stop_early)
        assert set(out) == {Site(0, "attn"), Site(1, "mlp")}
    assert _state(lm.model) == before
    lm.model.train()  # a later mode change is followed by the backend, not frozen at wrap time
    with torch.no_grad():
        trace_sites(lm, batch, [Site(0, "attn")], lambda s, a, m: a.sum(), backend)
    assert all(m.training for m in lm.model.modules())


def test_backends_agree_after_the_user_changes_the_weights(tiny_llama):
    """The wrappers share the model's weights, so an in-place edit is seen by every backend."""
    batch = encode(tiny_llama.tokenizer, ["you want the vase"])
    site = [Site(1, "resid")]
    w = tiny_llama.model.model.layers[0].mlp.down_proj.weight
    saved = w.detach().clone()
    try:
        for b in BACKENDS:  # wrap first, edit afterwards
            trace_sites(tiny_llama, batch, site, lambda s, a, m: a.sum(), b)
        with torch.no_grad():
            w.mul_(3.0)
            got = {b: trace_sites(tiny_llama, batch, site, lambda s, a, m: a.clone(), b)[site[0]]
                   for b in BACKENDS}
        for b in BACKENDS:
            torch.testing.assert_close(got[b], got["hooks"], atol=1e-5, rtol=1e-5)
    finally:
        with torch.no_grad():
            w.copy_(saved)


def test_too_long_prompts_are_refused_before_any_forward(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("llama", n_layers=2)))  # 256 positions
    calls = []
    lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    ok = PromptPair("short", "you want the vase", "bob wants the vase")
    long_pair = PromptPair("huge", "you " * 300, "bob")
    with pytest.raises(PairsError, match=r"pair 'huge' \(self prompt\) is 30\d tokens, "
                                         r"\d+ over the limit of 256 \(the model's context\)"):
        measure(lm, [ok, long_pair], progress=False)
    with pytest.raises(PairsError, match=r"pair 'short' \(other prompt\) is \d tokens, 1 over "
                                         r"the limit of \d \(max_prompt_tokens\)"):
        n = len(encode(lm.tokenizer, [ok.other_text]).input_ids[0])
        measure(lm, [ok], progress=False, max_prompt_tokens=n - 1)
    assert calls == []


def test_training_refuses_too_long_prompts_before_touching_anything(tiny_model_dir, tmp_path):
    from soo_interp.training import TrainConfig, train_soo

    lm = load_model(str(tiny_model_dir("llama", n_layers=2)))
    pairs = [PromptPair(f"p{i}", "you want the vase", "bob wants the vase")
             for i in range(3)] + [PromptPair("long", "you", "bob " * 1000)]
    with pytest.raises(PairsError, match=r"pair 'long' \(other prompt\).*over the limit of 256"):
        train_soo(lm, pairs, TrainConfig(layer=1, max_steps=1), out=tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_training_without_a_folder_leaves_the_model_and_trains_twice(tiny_model_dir):
    """`train_soo` with no out_dir used to leave its LoRA on the caller's model (logits moved)
    and a second call failed; now the model is as found and the LoRA comes with the result."""
    from soo_interp.training import TrainConfig, train_soo

    lm = load_model(str(tiny_model_dir("llama", n_layers=2)))
    ids = encode(lm.tokenizer, ["you want the vase"])
    with torch.no_grad():
        before = lm.model(**ids.as_kwargs()).logits
    state = _state(lm.model)
    cfg = TrainConfig(layer=1, lr=1e-2, max_steps=2, batch_size=2, grad_accum=1, lora_dropout=0.0)
    pairs = [PromptPair(f"p{i}", f"you want the vase {i}", f"bob wants the vase {i}")
             for i in range(4)]
    first = train_soo(lm, pairs, cfg, progress=False)
    second = train_soo(lm, pairs, cfg, progress=False)  # used to fail: LoRA already attached
    assert _state(lm.model) == state
    with torch.no_grad():
        assert torch.equal(lm.model(**ids.as_kwargs()).logits, before)
        tuned = first.attach(lm)
        moved = (tuned(**ids.as_kwargs()).logits - before).abs().max().item()
        tuned.unload()
    assert moved > 1e-4  # the returned LoRA is the trained one, not a fresh (identity) one
    assert all(torch.equal(first.adapter[k], second.adapter[k]) for k in first.adapter)
