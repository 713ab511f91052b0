"""The layer ablation runs end to end: every condition, layer and outcome is present, the base
rows are the untouched model's, and SOO training moves latent SOO at its own site."""
import pandas as pd

from soo_interp import load_model
from soo_interp.cli import main
from soo_interp.evaluation import perplexity
from soo_interp.sweep import SweepConfig, sweep


def test_sweep_end_to_end(tiny_model_dir, tmp_path, capsys):
    path = str(tiny_model_dir("llama", n_layers=2))
    cfg = SweepConfig(layers="0-1", seeds=(0,), epochs=2, lr=5e-3, n=2,
                      scenarios=("burglar", "perspectives"))
    df = sweep(path, cfg, progress=False)
    assert set(df.condition) == {"base", "soo", "sham"}
    assert set(df.train_layer) == {0, 1}
    metrics = set(df.metric)
    assert {"deceptive_rate", "honest_rate", "perplexity", "next_token_kl", "latent_soo"} <= metrics
    base_ppl = df[(df.condition == "base") & (df.metric == "perplexity")].value
    assert base_ppl.iloc[0] == perplexity(load_model(path))
    soo = df[df.metric == "latent_soo"].set_index(["condition", "train_layer"]).value
    for layer in (0, 1):
        assert soo[("soo", layer)] < soo[("base", layer)]
    kl = df[(df.metric == "next_token_kl")]
    assert set(kl.condition) == {"soo", "sham"} and (kl.value > 0).all()

    out = tmp_path / "sw"
    code = main(["sweep", "--model", path, "--layers", "1", "--epochs", "1", "--n", "2",
                 "--no-sham", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    got = pd.read_parquet(out / "sweep.parquet")
    assert set(got.condition) == {"base", "soo"} and (out / "sweep.png").exists()
