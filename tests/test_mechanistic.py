"""organism-lm's mechanistic check: the reliability rule on a table whose answer is known, the
whole check and its CLI on a tiny random model, and the committed reports recomputed from their
own per-layer tables."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soo_interp.cli import main
from soo_interp.organism.mechanistic import COLUMNS, first_reliable_layer

ROOT = Path(__file__).resolve().parent.parent


def _row(readout, layer, layout, control, acc, half=0.05):
    return dict(zip(COLUMNS, (readout, layer, layout, control, acc, acc - half, acc + half, 100)))


def test_first_reliable_layer_needs_every_layout_above_its_control_and_chance():
    rows = []
    for layer in range(5):
        # a read-out that becomes reliable at layer 2
        rows += [_row("a", layer, "both", "real", 0.5 + 0.1 * layer),
                 _row("a", layer, "both", "shuffled", 0.5)]
        # a room read-out right in one layout from layer 1, in both only from layer 3
        rows += [_row("room", layer, "honest_first", "real", 0.9 if layer >= 1 else 0.5),
                 _row("room", layer, "deceptive_first", "real", 0.9 if layer >= 3 else 0.2),
                 _row("room", layer, "honest_first", "shuffled", 0.5),
                 _row("room", layer, "deceptive_first", "shuffled", 0.5)]
        # above its control but not above chance: a control that is itself below 50%
        rows += [_row("low", layer, "both", "real", 0.52),
                 _row("low", layer, "both", "shuffled", 0.3)]
    first = first_reliable_layer(pd.DataFrame(rows)).set_index("readout")
    assert first.first_layer["a"] == 2 and first.accuracy_there["a"] == pytest.approx(0.7)
    assert first.first_layer["room"] == 3 and first.accuracy_there["room"] == pytest.approx(0.9)
    assert first.best_accuracy["room"] == pytest.approx(0.9)
    assert np.isnan(first.first_layer["low"])
    assert list(first.index) == ["a", "room", "low"]


def test_check_and_cli_on_a_tiny_model(tmp_path, tiny_model_dir, capsys):
    model = str(tiny_model_dir("llama", n_layers=2))
    out = tmp_path / "mech"
    args = ["organism", "mechanistic", "--model", model, "--out", str(out), "--n-stories", "10",
            "--n-train", "6", "--n-test", "4", "--quiet"]
    assert main(args) == 0
    assert "# Mechanistic check on" in capsys.readouterr().out
    assert {"mechanistic.csv", "first_layer.csv", "report.md", "mechanistic.png",
            "run.json"} <= {p.name for p in out.iterdir()}
    df = pd.read_csv(out / "mechanistic.csv")
    assert set(df.readout) == {"recipient_friend", "recipient_self", "room_burglar",
                               "room_self", "room_both", "answer_both"}
    for readout, d in df.groupby("readout"):
        assert set(d.layer) == {0, 1} and set(d.control) == {"real", "shuffled"}, readout
        assert d.accuracy.between(0, 1).all() and (d.ci_low <= d.accuracy + 1e-9).all()
    suites = df[df.readout.str.startswith("recipient")]
    assert (suites.layout == "both").all() and (suites.n == 20).all()
    rooms = df[df.readout.str.startswith(("room", "answer"))]
    assert set(rooms.layout) == {"honest_first", "deceptive_first"}
    pd.testing.assert_frame_equal(pd.read_csv(out / "first_layer.csv"),
                                  first_reliable_layer(df), check_dtype=False)
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad"
    assert main(args[:4] + ["--out", str(bad), "--n-stories", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "n_stories" in err.replace("-", "_") and "\n" not in err and not bad.exists()


@pytest.mark.parametrize("folder", sorted(p.parent for p in ROOT.glob(
    "reports/**/mechanistic.csv")), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_mechanistic_reports_recompute(folder):
    df = pd.read_csv(folder / "mechanistic.csv")
    pd.testing.assert_frame_equal(pd.read_csv(folder / "first_layer.csv"),
                                  first_reliable_layer(df), check_dtype=False)
