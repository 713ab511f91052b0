"""The layer ablation runs end to end: every condition, layer and outcome is present, the base
rows are the untouched model's, and SOO training moves latent SOO at its own site."""
import pandas as pd
import pytest

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


def test_sweep_plot_shows_every_seed_and_rates_on_0_1():
    from soo_interp.plots import sweep_plot

    rows = [dict(condition=c, train_layer=layer, seed=seed, scenario="burglar",
                 metric="deceptive_rate", value=v, n=10)
            for c, base in (("soo", 0.3), ("sham", 0.9))
            for layer in (0, 1) for seed, v in ((0, base), (1, base + 0.1))]
    fig = sweep_plot(pd.DataFrame(rows), panels=[("deceptive_rate", "burglar", "burglar")])
    ax = fig.axes[0]
    assert ax.get_ylim() == (-0.02, 1.02)
    seeds = [ln for ln in ax.lines if ln.get_linestyle() == "None"]
    assert sorted(v for ln in seeds for v in ln.get_ydata()) == sorted(r["value"] for r in rows)
    means = {ln.get_label(): list(ln.get_ydata()) for ln in ax.lines if ln.get_linestyle() == "-"}
    assert means["soo (mean)"] == pytest.approx([0.35, 0.35])
