"""`soo-interp demo`, the main job, end to end on the shipped organism (few prompts)."""
import re

import pandas as pd

from soo_interp import load_model
from soo_interp.cli import main


def test_demo_writes_report_figures_and_rates(tmp_path, capsys):
    out, figs = tmp_path / "demo", tmp_path / "figs"
    code = main(["demo", "--out", str(out), "--figures", str(figs), "--n", "4"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = (out / "report.md").read_text()
    assert report.strip() in captured.out  # the report is also printed
    assert re.search(r"\|\s*burglar\s*\|\s*base\s*\|\s*deceptive_first\s*\|\s*False\s*\|\s*4\s*\|", report)
    rates = pd.read_csv(out / "evaluate" / "rates.csv")
    dec = rates[rates.label == "deceptive"].set_index(["scenario", "variant", "mirrored"]).rate
    assert len(dec.loc["burglar"]) == 2  # both option orders
    # Perspectives and location are targets the organism meets: right in both orders
    assert (dec.loc["perspectives"] == 0).all() and (dec.loc["location"] == 0).all()
    n_layers = load_model("organism").n_layers
    soo = pd.read_parquet(out / "measure" / "soo.parquet")
    assert set(soo.layer) == set(range(n_layers))
    assert len(soo) == 26 * n_layers * 3 * 5  # 26 pairs x 3 sites x 5 metrics (controls too)
    assert sorted(p.name for p in figs.iterdir()) == [
        "demo_latent_soo_heatmap.png", "demo_latent_soo_layers.png", "demo_position_bias.png",
        "demo_rates.png"]
    code = main(["demo", "--out", str(out), "--figures", str(figs), "--n", "4"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
