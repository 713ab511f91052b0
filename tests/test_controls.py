"""Control pairs and the normalised overlap: constructed cases with known answers, the built-in
controls, pairs files carrying controls, and the figures defaulting to the normalised score."""
import dataclasses

import pytest
import torch

from soo_interp import PromptPair, load_pairs, measure, soo_pairs
from soo_interp.data.pairs import save_pairs
from soo_interp.errors import PairsError
from soo_interp.metrics import normalised_overlap
from soo_interp.stats import summarize

# A random tiny model's built-in ceiling can sit below its floor (BPE splits the names): give
# the constructed cases an unrelated prompt far from every pair prompt.
FAR = "The weather was cold all week, and the river by the old mill froze over twice."


def _far(pairs):
    return [dataclasses.replace(p, unrelated_text=FAR) for p in pairs]


def _means(df, metric):
    return df[df.metric == metric].groupby(["layer", "component"]).value.mean()


def test_normalised_overlap_formula():
    soo = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    floor = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    ceiling = torch.tensor([[5.0, 5.0], [1.0, 1.0]])  # second site: ceiling below floor
    got = normalised_overlap(soo, floor, ceiling)
    assert got[0].tolist() == [0.0, 0.5]
    assert got[1].isnan().all()


def test_builtin_pairs_carry_both_controls():
    for p in soo_pairs("all"):
        assert p.has_controls
        assert p.swap_text == p.other_text.replace("Bob", "Alice")
        assert p.swap_text != p.other_text and p.unrelated_text.startswith("You ")
    assert soo_pairs("test", other="Alice")[0].swap_text.endswith("to Maya")


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_known_answers_other_equals_floor_or_ceiling(tiny_llama, pooling):
    base = _far(soo_pairs("test")[:6])
    # self replaced by the swap prompt: MSE(self, other) = MSE(swap, other) = the floor -> 0
    at_floor = [dataclasses.replace(p, self_text=p.swap_text) for p in base]
    # other replaced by the unrelated prompt: MSE(self, other) = the ceiling -> 1
    at_ceiling = [dataclasses.replace(p, other_text=p.unrelated_text) for p in base]
    for pairs, expected in ((at_floor, 0.0), (at_ceiling, 1.0)):
        df = measure(tiny_llama, pairs, pooling=pooling, progress=False)
        norm = _means(df, "normalised_soo")
        assert len(norm) == 3 * 3
        assert norm.sub(expected).abs().max() < 1e-5, norm


def test_identical_prompts_score_minus_floor_over_span(tiny_llama):
    pairs = [dataclasses.replace(p, other_text=p.self_text) for p in _far(soo_pairs("test")[:4])]
    df = measure(tiny_llama, pairs, progress=False)
    assert (df[df.metric == "latent_soo"].value == 0).all()
    f, c = _means(df, "floor_mse"), _means(df, "ceiling_mse")
    expected = (-f / (c - f)).where(c > f)  # no scale where the ceiling is not above the floor
    got = _means(df, "normalised_soo")
    assert (got.isna() == expected.isna()).all() and expected.notna().sum() >= 3
    assert ((got - expected) / expected).abs().max() < 1e-5


def test_normalised_is_scale_free(tiny_llama):
    """Scaling every activation by k leaves the normalised score unchanged (raw MSE: x k^2)."""
    from soo_interp.models.loading import LoadedModel

    pairs = soo_pairs("test")[:5]
    ref = measure(tiny_llama, pairs, layers=[2], components="resid", progress=False)
    model = tiny_llama.model
    block = model.model.layers[2]
    h = block.register_forward_hook(
        lambda m, i, o: (o[0] * 10.0,) + tuple(o[1:]) if isinstance(o, tuple) else o * 10.0)
    try:
        got = measure(LoadedModel(model, tiny_llama.tokenizer, "scaled"), pairs, layers=[2],
                      components="resid", progress=False)
    finally:
        h.remove()
    raw = _means(got, "latent_soo") / _means(ref, "latent_soo")
    assert raw.sub(100.0).abs().max() < 1e-3
    assert (_means(got, "normalised_soo") - _means(ref, "normalised_soo")).abs().max() < 1e-5


def test_summary_gives_ci_of_normalised_overlap(tiny_llama):
    df = measure(tiny_llama, _far(soo_pairs("test")[:8]), progress=False)
    s = summarize(df)
    s = s[(s.metric == "normalised_soo") & (s.n > 0)]
    assert len(s) >= 6 and (s.n == 8).all()
    assert ((s.ci_low < s["mean"]) & (s["mean"] < s.ci_high)).all()


def test_controls_can_be_skipped_or_demanded(tiny_llama):
    pairs = soo_pairs("test")[:2]
    assert set(measure(tiny_llama, pairs, controls=False, progress=False).metric) == {
        "latent_soo", "cosine"}
    bare = [PromptPair("a", "You go", "Bob goes")]
    assert set(measure(tiny_llama, bare, progress=False).metric) == {"latent_soo", "cosine"}
    with pytest.raises(PairsError, match="'swap' and 'unrelated'"):
        measure(tiny_llama, bare, controls=True, progress=False)


def test_pairs_files_round_trip_controls(tmp_path):
    pairs = soo_pairs("test")[:3]
    save_pairs(pairs, tmp_path / "p.jsonl")
    assert load_pairs(tmp_path / "p.jsonl") == pairs
    csv = tmp_path / "p.csv"
    csv.write_text("self,other,swap,unrelated\nYou go,Bob goes,Alice goes,You eat\n"
                   "You sit,Bob sits,,You eat\n")
    with pytest.raises(PairsError, match=r"p\.csv:3: control field 'swap' is missing"):
        load_pairs(csv)


def test_figures_default_to_normalised_and_raw_is_one_flag_away(tiny_llama):
    from soo_interp.plots import default_metric, soo_heatmap

    df = measure(tiny_llama, _far(soo_pairs("test")[:3]), progress=False)
    assert default_metric(df) == "normalised_soo"
    assert default_metric(df[df.metric.isin(["latent_soo", "cosine"])]) == "latent_soo"
    norm = soo_heatmap(df)
    raw = soo_heatmap(df, "latent_soo")
    assert norm.axes[0].get_title().startswith("normalised_soo")
    assert raw.axes[1].get_ylabel() == "log10 latent_soo"  # log scale: every site visible
