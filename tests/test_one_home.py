"""Shared helpers that have exactly one home, tested where they live."""
from __future__ import annotations

import pytest
import torch

from soo_interp.config import parse_int_list
from soo_interp.errors import AlignmentError, ConfigError, ProbeError, SiteError
from soo_interp.metrics import check_aligned_masks, kl_divergence
from soo_interp.models.sites import parse_layers


def test_parse_int_list_reads_ranges_negatives_and_lists():
    assert parse_int_list("0-3,5") == [0, 1, 2, 3, 5]
    assert parse_int_list("-3--1") == [-3, -2, -1]
    assert parse_int_list(" 2 , 1,2") == [2, 1]
    assert parse_int_list([4, 1]) == [4, 1] and parse_int_list(7) == [7]
    for bad in ("", "1-", "a", "1,,2"):
        with pytest.raises(ConfigError, match="cannot read"):
            parse_int_list(bad)


def test_parse_layers_counts_negatives_from_the_end_and_checks_the_range():
    assert parse_layers("-2--1", 4) == [2, 3] and parse_layers(None, 3) == [0, 1, 2]
    with pytest.raises(SiteError, match="layer 9 does not exist; this model has layers 0..3"):
        parse_layers("9", 4)
    with pytest.raises(SiteError, match="layer spec: cannot read"):
        parse_layers("x", 4)


def test_train_config_resolves_layers_through_parse_layers(tiny_model_dir):
    from soo_interp import load_model
    from soo_interp.training.config import TrainConfig, resolve_lora_targets, target_site

    model = load_model(str(tiny_model_dir("llama", n_layers=3))).model  # fresh: no TL wrapping
    cfg = TrainConfig(layer=-1, layers_to_transform=(-1, 0))
    assert target_site(model, cfg).layer == 2
    assert resolve_lora_targets(model, cfg)[1] == [0, 2]
    with pytest.raises(SiteError, match="layer 5 does not exist"):
        resolve_lora_targets(model, TrainConfig(layers_to_transform=(5,)))


def test_kl_divergence_matches_torch_and_is_zero_on_equal_logits():
    p, q = torch.randn(3, 7), torch.randn(3, 7)
    ref = torch.nn.functional.kl_div(q.log_softmax(-1), p.log_softmax(-1), log_target=True,
                                     reduction="none").sum(-1)
    torch.testing.assert_close(kl_divergence(p, q), ref)
    assert kl_divergence(p, p).abs().max() < 1e-6


def test_aligned_masks_check_is_shared_by_metric_and_loss():
    from soo_interp.training.losses import kl_logits_loss

    a, b = torch.tensor([[1, 1, 0]]), torch.tensor([[1, 1, 1]])
    check_aligned_masks(a, a.clone())
    with pytest.raises(AlignmentError, match="equal token length"):
        check_aligned_masks(a, b)
    logits, mask = torch.randn(2, 3, 5), torch.cat([a, b])
    with pytest.raises(AlignmentError, match="equal token length"):
        kl_logits_loss(logits, mask, 1, "aligned")


def test_one_fingerprint_for_checkpoints_and_activation_caches(tiny_llama):
    from soo_interp.models.fingerprint import model_fingerprint

    fp = model_fingerprint(tiny_llama)
    assert fp == model_fingerprint(tiny_llama.model)
    w = tiny_llama.model.model.layers[0].mlp.down_proj.weight
    old = w[0, 0].item()
    with torch.no_grad():
        w[0, 0] = old + 1.0
        try:
            assert model_fingerprint(tiny_llama) != fp
        finally:
            w[0, 0] = old
    assert model_fingerprint(tiny_llama) == fp


def test_detector_kinds_come_from_the_registry():
    from soo_interp.probes.detectors import MeanDiffDetector, detector_kinds, make_detector

    assert detector_kinds()[:3] == ("logistic", "mean_diff", "lat")

    class Flipped(MeanDiffDetector):
        kind = "flipped_mean_diff_test"

    assert "flipped_mean_diff_test" in detector_kinds()
    assert isinstance(make_detector("flipped_mean_diff_test"), Flipped)
    with pytest.raises(ProbeError, match="unknown probe kind 'nope'; choose from logistic"):
        make_detector("nope")


def test_article_and_special_tokens_have_one_home():
    from soo_interp.data.scenarios import with_article
    from soo_interp.models.tokenize import SPECIAL_TOKENS
    from soo_interp.organism import world

    assert with_article("apple") == "an apple" and with_article("vase") == "a vase"
    tok = world.build_tokenizer(["a vase in the hall"])
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == list(SPECIAL_TOKENS)


def test_a_huge_layer_range_is_a_short_line():
    """`--layers 0-100000` used to print a 689 KB "line" (after seconds of list building)."""
    for spec in ("0-100000", "0-99999999999999"):
        with pytest.raises(SiteError, match="lists more than 10000 values") as e:
            parse_layers(spec, 4)
        assert len(str(e.value)) < 200
    with pytest.raises(SiteError, match=r"layers 4\.\.40 \(37 of them\) do not exist") as e:
        parse_layers("0-40", 4)
