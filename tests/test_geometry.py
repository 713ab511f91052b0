import pytest
import torch

from soo_interp import load_model, soo_pairs
from soo_interp.geometry import compare_models, linear_cka
from soo_interp.measure import measure


def test_linear_cka_invariances():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3 * x @ q + 1) == pytest.approx(1.0)  # rotation, scale, shift
    assert linear_cka(x, torch.randn(40, 8, generator=g)) < 0.6


def test_model_against_itself_and_a_perturbed_copy(tiny_model_dir):
    path = str(tiny_model_dir("llama", n_layers=3))
    base, same = load_model(path), load_model(path)
    pairs = soo_pairs("test")[:6]
    df = compare_models(base, same, pairs, pooling="last")
    cka = df[df.metric == "cka_base_tuned"].value
    assert cka.sub(1).abs().max() < 1e-6
    assert df[df.metric == "delta_latent_soo"].value.abs().max() == 0
    # latent SOO here is the same number measure() reports (mean over pairs)
    m = measure(base, pairs, pooling="last", progress=False)
    m = m[(m.metric == "latent_soo")].groupby(["layer", "component"]).value.mean()
    g = df[(df.metric == "latent_soo") & (df.model == "base")].set_index(["layer", "component"]).value
    torch.testing.assert_close(torch.tensor(g.sort_index().values),
                               torch.tensor(m.sort_index().values), rtol=1e-5, atol=1e-12)
    tuned = load_model(path)
    with torch.no_grad():
        tuned.model.model.layers[1].self_attn.o_proj.weight.mul_(-3)
    df2 = compare_models(base, tuned, pairs)
    cka2 = df2[df2.metric == "cka_base_tuned"].set_index(["layer", "component"]).value
    assert cka2[(0, "attn")] == pytest.approx(1.0, abs=1e-6)   # before the change: untouched
    assert cka2[(0, "resid")] == pytest.approx(1.0, abs=1e-6)
    d = df2[df2.metric == "delta_latent_soo"].set_index(["layer", "component"]).value
    assert d[(1, "attn")] > 0   # o_proj scaled by -3 -> self/other distance x9


def test_compare_cli_with_an_adapter(tiny_model_dir, tmp_path, capsys):
    import pandas as pd
    from peft import LoraConfig, get_peft_model

    from soo_interp.cli import main

    path = str(tiny_model_dir("llama", n_layers=3))
    torch.manual_seed(0)
    peft_model = get_peft_model(load_model(path).model, LoraConfig(
        r=4, target_modules=["q_proj", "v_proj"], layers_to_transform=[2],
        init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    out = tmp_path / "cmp"
    code = main(["compare", "--model", path, "--adapter", str(tmp_path / "adapter"),
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    df = pd.read_parquet(out / "geometry.parquet")
    cka = df[df.metric == "cka_base_tuned"].set_index(["layer", "component"]).value
    assert cka[(1, "resid")] == pytest.approx(1.0, abs=1e-6)  # LoRA only on layer 2
    assert cka[(2, "attn")] < 1 - 1e-4
    assert (out / "geometry.png").exists() and (out / "run.json").exists()
    code = main(["compare", "--model", path, "--out", str(tmp_path / "x")])
    assert code == 2 and "--adapter" in capsys.readouterr().err
