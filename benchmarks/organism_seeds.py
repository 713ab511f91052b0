"""Build the organism for several seeds and report every target per seed with 95% CIs, the
lookup accuracy, the untrained scenarios and the training curve (figure).

    python benchmarks/organism_seeds.py --seeds 0,1,2 --out runs/organism-seeds \
        [--ship soo_interp/organism/lookup]

A seed whose folder already holds a build report is not rebuilt (so an interrupted run resumes
with the next seed). Writes `OUT/seeds.md`, `OUT/targets.csv` and `figures/organism_curve.png`.
With `--ship FOLDER` it also writes the per-seed summary `seeds.json` into that checkpoint
folder (one of the seeds' builds, e.g. the shipped default) and refreshes its manifest, so
`soo-interp organism card` reports every seed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from soo_interp.organism import build_organism
from soo_interp.organism.seeds import seeds_markdown, ship_seeds, summarize_seeds
from soo_interp.plots import organism_curve_plot
from soo_interp.runs import atomic_write_text

CURVE_METRICS = ("lookup", "location/paper", "burglar/paper", "burglar/honest_first")


def build_seeds(seeds: list[int], out: Path) -> dict[int, dict]:
    """The build report of every seed (built now unless its folder is complete)."""
    reports = {}
    for seed in seeds:
        folder = out / f"seed{seed}"
        if not (folder / "report.json").is_file():
            build_organism(seed, folder, overwrite=folder.exists(), progress=False)
        reports[seed] = json.loads((folder / "report.json").read_text())
    return reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="runs/organism-seeds")
    ap.add_argument("--figures", default="figures")
    ap.add_argument("--ship", default=None, metavar="FOLDER",
                    help="checkpoint folder to write seeds.json into (one of the seeds' builds)")
    args = ap.parse_args()
    out = Path(args.out)
    reports = build_seeds([int(s) for s in args.seeds.split(",")], out)
    summary = summarize_seeds(reports)
    pd.DataFrame(summary["targets"]).to_csv(out / "targets.csv", index=False)
    text = (f"# Organism over build seeds {', '.join(map(str, reports))}\n\n"
            f"Config: {json.dumps(summary['config'])}\n\n" + seeds_markdown(summary))
    atomic_write_text(out / "seeds.md", text)
    curve = pd.DataFrame(summary["curve"])
    if len(curve):
        fig = organism_curve_plot(curve, [m for m in CURVE_METRICS if m in set(curve.metric)])
        fig.savefig(Path(args.figures) / "organism_curve.png", dpi=120)
    if args.ship:
        print(f"wrote {ship_seeds(args.ship, reports)}")
    print(text)


if __name__ == "__main__":
    main()
