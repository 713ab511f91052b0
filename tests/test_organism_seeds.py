"""The organism's per-seed summary: built from build reports, shipped beside the checkpoint by
benchmarks/organism_seeds.py --ship, and read by the card (which refuses a stale one)."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from soo_interp.errors import CheckpointError
from soo_interp.models.manifest import write_manifest
from soo_interp.organism import card, shipped_checkpoint
from soo_interp.organism import checkpoint as ckpt
from soo_interp.organism.seeds import SEEDS_FILE, seeds_markdown, ship_seeds, summarize_seeds

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    return json.loads((shipped_checkpoint("organism") / "report.json").read_text())


def _other_seed(report: dict) -> dict:
    """A second seed's report: the same rows with its first target failing."""
    other = copy.deepcopy(report)
    other["losses"] = [x + 1 for x in other["losses"]]
    t = other["targets"][0]
    t.update(rate=0.5, ci_low=0.4, ci_high=0.6, passed=False)
    other["targets_met"] = False
    return other


def test_summary_has_every_target_per_seed_and_the_curve(report):
    summary = summarize_seeds({0: report, 7: _other_seed(report)}, shipped_seed=0)
    assert len(summary["targets"]) == 2 * len(report["targets"])
    md = seeds_markdown(json.loads(json.dumps(summary)))  # survives the JSON round trip
    assert "seed 0 (shipped) | seed 7 |" in md
    first = report["targets"][0]
    row = next(line for line in md.splitlines()
               if line.startswith(f"| {first['scenario']} | {first['label']} | {first['layout']}"))
    assert f"{100 * first['rate']:.1f}% ({100 * first['ci_low']:.1f}-" in row
    assert row.endswith("50.0% (40.0-60.0) NO |")
    steps = [m["step"] for m in report["monitor"]]
    assert f"| {steps[-1]} | " in md and "lookup seed 7" in md
    assert "### Untrained scenarios" in md


def _ship_copy(tmp_path: Path, monkeypatch, report: dict) -> Path:
    pkg = tmp_path / "pkg"
    folder = pkg / ckpt.KNOWN_ORGANISMS["organism"]
    shutil.copytree(shipped_checkpoint("organism"), folder)
    if (folder / SEEDS_FILE).exists():  # the shipped build as it was before its seeds summary
        (folder / SEEDS_FILE).unlink()
        write_manifest(folder)
    monkeypatch.setattr(ckpt, "PACKAGE_DIR", pkg)
    return folder


def test_benchmark_ships_the_summary_and_the_card_reads_it(tmp_path, monkeypatch, report):
    folder = _ship_copy(tmp_path, monkeypatch, report)
    assert "Build seed 0 only" in card("organism")
    runs = tmp_path / "runs"
    (runs / "seed0").mkdir(parents=True)
    (runs / "seed0" / "report.json").write_text(json.dumps(report))  # a finished build: reused
    (tmp_path / "figs").mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "organism_seeds.py"),
                           "--seeds", "0", "--out", str(runs), "--figures",
                           str(tmp_path / "figs"), "--ship", str(folder)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (runs / "seeds.md").is_file() and (tmp_path / "figs" / "organism_curve.png").is_file()
    shipped_checkpoint("organism")  # the refreshed manifest covers seeds.json
    text = card("organism")
    assert "## Over build seeds 0" in text and "seed 0 (shipped)" in text
    assert "### Training curve" in text and "not: a model of a large LM" in text
    (folder / "report.json").write_text((folder / "report.json").read_text() + " ")
    with pytest.raises(CheckpointError, match="another build"):
        from soo_interp.organism.seeds import read_seeds

        read_seeds(folder)


def test_ship_refuses_a_folder_that_is_none_of_the_seeds(tmp_path, monkeypatch, report):
    folder = _ship_copy(tmp_path, monkeypatch, report)
    with pytest.raises(CheckpointError, match="none of the builds of seeds 7"):
        ship_seeds(folder, {7: _other_seed(report)})
    assert not (folder / SEEDS_FILE).exists()
