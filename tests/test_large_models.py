"""Large models on one machine: a model split by accelerate between the CPU and disk offload
traces, measures, probes and trains like the same model in one piece (to 1e-5), is never moved
with `.to()`, and bad placements fail in one line."""
from __future__ import annotations

import pytest
import torch

from soo_interp import load_model, measure, soo_pairs, train_soo
from soo_interp.cli import main
from soo_interp.errors import ModelLoadError
from soo_interp.metrics import collect_pooled
from soo_interp.models.placement import input_device, is_dispatched
from soo_interp.models.sites import Site
from soo_interp.probes import ProbeConfig, fit_probes
from soo_interp.training import TrainConfig

PAIRS = soo_pairs("test")[:8]
SPLIT = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
         "model.layers.1": "disk", "model.layers.2": "disk", "model.norm": "cpu", "lm_head": "cpu"}


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    path = str(tiny_model_dir("llama", n_layers=3))
    split = load_model(path, device_map=SPLIT, offload_folder=str(tmp_path_factory.mktemp("offload")))
    return path, load_model(path), split


def test_split_model_stays_where_accelerate_put_it(models):
    _, whole, split = models
    assert is_dispatched(split.model) and not is_dispatched(whole.model)
    assert split.model.hf_device_map["model.layers.1"] == "disk"
    on_disk = split.model.model.layers[1].self_attn.q_proj.weight
    assert on_disk.device.type == "meta"  # weights stay offloaded, not loaded and moved
    assert input_device(split.model) == torch.device("cpu") == split.device


@pytest.mark.parametrize("backend", ["hooks", "nnsight"])
def test_split_model_traces_and_measures_like_the_whole(models, backend):
    _, whole, split = models
    sites = [Site(layer, c) for layer in range(3) for c in ("attn", "mlp", "resid")]
    texts = [p.self_text for p in PAIRS]
    a = collect_pooled(whole, texts, sites, backend=backend)
    b = collect_pooled(split, texts, sites, backend=backend)
    assert max(float((a[s] - b[s]).abs().max()) for s in sites) < 1e-5
    for pooling in ("last", "mean"):
        got = measure(split, PAIRS, backend=backend, pooling=pooling, progress=False)
        want = measure(whole, PAIRS, backend=backend, pooling=pooling, progress=False)
        assert (got.value - want.value).abs().max() < 1e-5


def test_split_model_probes_and_trains_like_the_whole(models, tmp_path):
    path, whole, split = models
    cfg = ProbeConfig(layers="1-2", components=("attn", "resid"), folds=2)
    got, want = (fit_probes(lm, cfg, progress=False).summary for lm in (split, whole))
    assert (got["mean"] - want["mean"]).abs().max() < 1e-5
    tcfg = TrainConfig(layer=2, epochs=1, lr=1e-3, max_steps=2, seed=0)
    got = train_soo(split, PAIRS, tcfg, out=tmp_path / "split", progress=False)
    want = train_soo(load_model(path), PAIRS, tcfg, out=tmp_path / "whole", progress=False)
    assert (got.log.value - want.log.value).abs().max() < 1e-5
    assert got.final_latent_soo != got.initial_latent_soo  # the step did train
    # the adapters themselves, LoRA initialisation included (it used to differ by 0.176)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / d / "adapter_model.safetensors")) for d in ("split", "whole"))
    assert a.keys() == b.keys() and len(a) > 0
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_bad_placements_fail_in_one_line(models, tmp_path, capsys):
    path, _, _ = models
    with pytest.raises(ModelLoadError, match="device 'cuda:3' is not available on this machine"):
        load_model(path, device="cuda:3")
    with pytest.raises(ModelLoadError, match="device 'cuda:0' is not available"):
        load_model(path, device_map={"": "cuda:0"})
    with pytest.raises(ModelLoadError, match="4bit quantization needs a CUDA GPU"):
        load_model(path, quantization="4bit")
    cases = [["--device-map", '{"model.layers.0": 7}'], ["--quantization", "8bit"],
             ["--load-in-4bit"], ["--device-map", "everywhere"]]
    for extra in cases:
        out = tmp_path / "m"
        assert main(["measure", "--model", path, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "error:" in err and not out.exists(), err
