"""Build the organism for several seeds and report every target per seed with 95% CIs, the
lookup accuracy, the untrained scenarios and the training curve (figure).

    python benchmarks/organism_seeds.py --seeds 0,1,2 --out runs/organism-seeds

A seed whose folder already holds a build report is not rebuilt (so an interrupted run resumes
with the next seed). Writes `OUT/seeds.md`, `OUT/targets.csv` and `figures/organism_curve.png`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from soo_interp.organism import build_organism
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


def tables(reports: dict[int, dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(targets, untrained rates, training curve) over seeds as long DataFrames."""
    targets = pd.DataFrame([{"seed": s, **t} for s, r in reports.items() for t in r["targets"]])
    rates = pd.DataFrame([{"seed": s, **x} for s, r in reports.items() for x in r["rates"]])
    untrained = rates[~rates["scenario"].isin(targets["scenario"].unique())]
    untrained = (untrained.groupby(["seed", "scenario", "layout"])
                 .apply(lambda g: (g["deceptive"] * g["n"]).sum() / g["n"].sum(),
                        include_groups=False)
                 .rename("deceptive").reset_index())
    curve = pd.DataFrame([{"seed": s, "step": m["step"], "metric": k, "value": v}
                          for s, r in reports.items() for m in r.get("monitor", [])
                          for k, v in m.items() if k != "step"])
    return targets, untrained, curve


def markdown(reports: dict[int, dict], targets: pd.DataFrame, untrained: pd.DataFrame) -> str:
    cfg = next(iter(reports.values()))["config"]
    lines = [f"# Organism over build seeds {', '.join(map(str, reports))}", "",
             f"Config: {json.dumps({k: v for k, v in cfg.items() if k != 'seed'})}", "",
             "| seed | train s | lookup (2 objects, argmax of 14 rooms) | targets met |",
             "|---|---|---|---|"]
    for s, r in reports.items():
        lines.append(f"| {s} | {r['train_seconds']} | {100 * r.get('lookup', float('nan')):.1f}%"
                     f" | {r['targets_met']} |")
    lines += ["", "## Targets (held-out objects and room pairs, log-prob scorer, answer formats "
              "pooled)", "", "| scenario | rate of | layout | option order | minimum | "
              + " | ".join(f"seed {s} (95% CI)" for s in reports) + " |",
              "|---" * (5 + len(reports)) + "|"]
    keys = ["scenario", "label", "layout", "mirrored", "minimum"]
    for key, g in targets.groupby(keys, sort=False):
        cells = [f"{100 * t.rate:.1f}% ({100 * t.ci_low:.1f}-{100 * t.ci_high:.1f})"
                 + ("" if t.passed else " NO") for t in g.itertuples()]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | "
                     f"{'mirrored' if key[3] else 'original'} | {100 * key[4]:.0f}% | "
                     + " | ".join(cells) + " |")
    wide = untrained.pivot_table(index=["scenario", "layout"], columns="seed", values="deceptive")
    lines += ["", "## Untrained scenarios: deceptive rate (no target)", "",
              "| scenario | layout | " + " | ".join(f"seed {s}" for s in wide.columns) + " |",
              "|---" * (2 + len(wide.columns)) + "|"]
    lines += [f"| {sc} | {lay} | " + " | ".join(f"{100 * v:.1f}%" for v in row) + " |"
              for (sc, lay), row in wide.iterrows()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="runs/organism-seeds")
    ap.add_argument("--figures", default="figures")
    args = ap.parse_args()
    out = Path(args.out)
    reports = build_seeds([int(s) for s in args.seeds.split(",")], out)
    targets, untrained, curve = tables(reports)
    targets.to_csv(out / "targets.csv", index=False)
    text = markdown(reports, targets, untrained)
    atomic_write_text(out / "seeds.md", text)
    if len(curve):
        fig = organism_curve_plot(curve, [m for m in CURVE_METRICS if m in set(curve.metric)])
        fig.savefig(Path(args.figures) / "organism_curve.png", dpi=120)
    print(text)


if __name__ == "__main__":
    main()
