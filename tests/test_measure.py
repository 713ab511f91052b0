"""The latent SOO metric: exact zeros, backend parity, a hand-computed reference, padding."""
import dataclasses

import pytest
import torch

from soo_interp import PromptPair, measure, soo_pairs
from soo_interp.errors import AlignmentError, SiteError
from soo_interp.measure import summarize
from soo_interp.models.sites import Site, site_module
from soo_interp.models.tiny import FAMILIES
from soo_interp.models.tokenize import token_ids
from soo_interp.tracing import BACKENDS, trace_sites

POOLINGS = ("last", "mean", "aligned")


def aligned_pairs(lm, n=4):
    """Built-in pairs whose self and other prompts have equal token length for this tokenizer."""
    out = [p for p in soo_pairs("all", templates=["measure", "intend"])
           if len(token_ids(lm.tokenizer, p.self_text)) == len(token_ids(lm.tokenizer, p.other_text))]
    assert len(out) >= n, "the tiny tokenizer should align some built-in pairs"
    return out[:n]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_identical_prompts_give_exactly_zero(tiny_llama, backend, pooling):
    pairs = [PromptPair(f"p{i}", p.self_text, p.self_text) for i, p in enumerate(soo_pairs("test")[:3])]
    df = measure(tiny_llama, pairs, pooling=pooling, backend=backend, progress=False)
    assert len(df) == 3 * tiny_llama.n_layers * 3 * 2
    soo = df[df.metric == "latent_soo"]["value"]
    assert (soo == 0.0).all()
    assert df[df.metric == "cosine"]["value"].sub(1).abs().max() < 1e-5


@pytest.mark.parametrize("model_fixture", ["tiny_llama", "tiny_gpt2"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_backends_agree(request, model_fixture, pooling):
    lm = request.getfixturevalue(model_fixture)
    pairs = aligned_pairs(lm)
    ref = measure(lm, pairs, pooling=pooling, backend="hooks", progress=False)
    assert ref[ref.metric == "latent_soo"]["value"].gt(0).all()
    for backend in ("nnsight", "transformer_lens"):
        got = measure(lm, pairs, pooling=pooling, backend=backend, progress=False)
        keys = ["pair_id", "layer", "component", "metric"]
        merged = ref.merge(got, on=keys, suffixes=("_ref", "_got"))
        assert len(merged) == len(ref)
        diff = (merged.value_ref - merged.value_got).abs()
        assert diff.max() < 1e-5, f"{backend} differs by {diff.max()}"
        soo = merged[merged.metric == "latent_soo"]
        rel = ((soo.value_ref - soo.value_got).abs() / soo.value_ref.abs()).max()
        assert rel < 1e-3, f"{backend} relative difference {rel}"


def _hand_mse(lm, module, self_text, other_text, pooling):
    """Reference: a plain torch hook, one unpadded forward per prompt."""
    acts = []
    h = module.register_forward_hook(lambda m, i, o: acts.append(o[0] if isinstance(o, tuple) else o))
    try:
        with torch.no_grad():
            for t in (self_text, other_text):
                lm.model(input_ids=torch.tensor([token_ids(lm.tokenizer, t)]))
    finally:
        h.remove()
    a, b = acts[0][0], acts[1][0]
    if pooling == "last":
        a, b = a[-1], b[-1]
    elif pooling == "mean":
        a, b = a.mean(0), b.mean(0)
    return ((a - b) ** 2).mean().item()


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("site", ["attn", "mlp", "resid"])
def test_equals_hand_computed_mse_with_plain_hooks(tiny_llama, pooling, site):
    pairs = aligned_pairs(tiny_llama, 3)
    df = measure(tiny_llama, pairs, pooling=pooling, components=site, layers=[1], progress=False)
    df = df[df.metric == "latent_soo"].set_index("pair_id")["value"]
    module = {"attn": tiny_llama.model.model.layers[1].self_attn.o_proj,
              "mlp": tiny_llama.model.model.layers[1].mlp,
              "resid": tiny_llama.model.model.layers[1]}[site]
    for p in pairs:
        expected = _hand_mse(tiny_llama, module, p.self_text, p.other_text, pooling)
        assert df[p.pair_id] == pytest.approx(expected, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_changes_nothing(tiny_llama, pooling):
    target = soo_pairs("test")[0]
    longer = [dataclasses.replace(  # keeps the control prompts: they are padded too
        p, pair_id=f"long{i}", self_text=p.self_text + " and then some more words to pad the batch out",
        other_text=p.other_text + " and a much longer tail for the other prompt of the pair")
        for i, p in enumerate(soo_pairs("train")[:3])]
    alone = measure(tiny_llama, [target], pooling=pooling, progress=False)
    batched = measure(tiny_llama, longer + [target], pooling=pooling, progress=False)
    # per-pair metrics only: normalised_soo is scaled by the floor and ceiling of the pair set
    alone = alone[alone.metric != "normalised_soo"].reset_index(drop=True)
    batched = batched[(batched.pair_id == target.pair_id) & (batched.metric != "normalised_soo")]
    batched = batched.reset_index(drop=True)
    assert len(batched) == len(alone) and "floor_mse" in set(alone.metric)
    torch.testing.assert_close(torch.tensor(batched.value.values), torch.tensor(alone.value.values),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_supported_family_loads_by_path_and_measures(tiny_model_dir, family):
    from soo_interp import load_model

    lm = load_model(str(tiny_model_dir(family, n_layers=2, d_model=32)))
    df = measure(lm, soo_pairs("test")[:2], progress=False)
    assert set(df.layer) == {0, 1} and set(df.component) == {"attn", "mlp", "resid"}
    # NaN only where a random model's control ceiling is not above its floor
    assert df[df.metric != "normalised_soo"].value.notna().all()
    for backend in ("nnsight", "transformer_lens"):
        other = measure(lm, soo_pairs("test")[:2], backend=backend, progress=False)
        assert (other.value.isna() == df.value.isna()).all()
        raw = df.metric != "normalised_soo"  # the ratio is compared relatively
        assert (other.value - df.value)[raw].abs().max() < 1e-5, backend
        assert ((other.value - df.value) / df.value)[~raw].abs().max() < 1e-4, backend


def test_unalignable_pairs_are_named(tiny_llama):
    bad = PromptPair("uneven", "You want it", "Bob wants it very much indeed")
    with pytest.raises(AlignmentError, match="uneven.*--pooling last"):
        measure(tiny_llama, [bad], pooling="aligned", progress=False)


def test_unknown_layer_and_site(tiny_llama):
    with pytest.raises(SiteError, match=r"layers 0\.\.2"):
        measure(tiny_llama, soo_pairs("test")[:1], layers=[7], progress=False)
    with pytest.raises(SiteError, match="choose from attn, mlp, resid"):
        measure(tiny_llama, soo_pairs("test")[:1], components="ffn", progress=False)


def test_hooks_are_removed_even_when_the_reduction_fails(tiny_llama):
    from soo_interp.models.tokenize import encode

    site = Site(1, "attn")

    def boom(*_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        trace_sites(tiny_llama, encode(tiny_llama.tokenizer, ["You want"]), [site], boom)
    assert not site_module(tiny_llama.model, site)._forward_hooks


def test_summary_has_ci_bracketing_the_mean(tiny_llama):
    df = measure(tiny_llama, soo_pairs("test")[:5], progress=False, controls=False)
    s = summarize(df)
    assert len(s) == tiny_llama.n_layers * 3 * 2
    assert (s.n == 5).all()
    assert ((s.ci_low <= s["mean"]) & (s["mean"] <= s.ci_high)).all()
    one = df[(df.layer == 0) & (df.component == "attn") & (df.metric == "latent_soo")].value
    row = s[(s.layer == 0) & (s.component == "attn") & (s.metric == "latent_soo")].iloc[0]
    assert row["mean"] == pytest.approx(one.mean())
