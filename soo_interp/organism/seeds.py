"""The organism over build seeds: a small per-seed summary (`seeds.json`) shipped beside the
checkpoint, so its card can report every target per seed without the other seeds' weights.

Written by `benchmarks/organism_seeds.py --ship FOLDER` from the seeds' build reports; read by
`checkpoint.card`. Holds, per seed: every target row (rate, 95% Wilson CI, minimum, pass), the
untrained scenarios' deceptive rates, the two-object lookup accuracy, training time, and the
training curve (held-out rates every few training steps)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import CheckpointError
from ..models.manifest import sha256_file, verify_manifest, write_manifest
from ..runs import atomic_write_json

SEEDS_FILE = "seeds.json"
CURVE_COLUMNS = ("lookup", "location/paper")  # the card's curve: the capability's plateau and jump


def summarize_seeds(reports: dict[int, dict[str, Any]], shipped_seed: int | None = None
                    ) -> dict[str, Any]:
    """The per-seed summary of build reports `{seed: report.json}` (plain JSON data)."""
    targets = [{"seed": s, **t} for s, r in reports.items() for t in r["targets"]]
    trained = {t["scenario"] for t in targets}
    rates = pd.DataFrame([{"seed": s, **x} for s, r in reports.items() for x in r["rates"]])
    rates = rates[~rates["scenario"].isin(trained)]
    untrained = [{"seed": int(k[0]), "scenario": k[1], "layout": k[2],
                  "deceptive": float((g["deceptive"] * g["n"]).sum() / g["n"].sum()),
                  "n": int(g["n"].sum())}
                 for k, g in rates.groupby(["seed", "scenario", "layout"], sort=True)]
    return {
        "config": {k: v for k, v in next(iter(reports.values()))["config"].items() if k != "seed"},
        "shipped_seed": shipped_seed,
        "seeds": [{"seed": s, "train_seconds": r["train_seconds"], "lookup": r.get("lookup"),
                   "targets_met": r["targets_met"], "eval_n": r["eval_n"]}
                  for s, r in reports.items()],
        "targets": targets, "untrained": untrained,
        "curve": [{"seed": s, "step": m["step"], "metric": k, "value": v}
                  for s, r in reports.items() for m in r.get("monitor", [])
                  for k, v in m.items() if k != "step"],
    }


def read_seeds(folder: Path) -> dict[str, Any] | None:
    """The summary shipped in `folder`, or None when there is none; refused when it was written
    for another build than the one in the folder (its report's checksum differs)."""
    path = Path(folder) / SEEDS_FILE
    if not path.is_file():
        return None
    fix = "rewrite it with `python benchmarks/organism_seeds.py --seeds ... --ship FOLDER`"
    try:
        summary = json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); {fix}") from e
    if summary.get("report_sha256") != sha256_file(Path(folder) / "report.json"):
        raise CheckpointError(f"{path} describes another build than the one in {folder}; {fix}")
    return summary


def seeds_markdown(summary: dict[str, Any]) -> str:
    """Every target per seed with 95% CIs, the untrained scenarios and the training curve."""
    seeds = [s["seed"] for s in summary["seeds"]]
    shipped = summary.get("shipped_seed")
    head = " | ".join(f"seed {s}" + (" (shipped)" if s == shipped else "") for s in seeds)
    lines = [f"## Over build seeds {', '.join(map(str, seeds))}", "",
             "| | " + head + " |", "|---" * (len(seeds) + 1) + "|",
             "| all targets met | " + " | ".join(
                 "yes" if s["targets_met"] else "NO" for s in summary["seeds"]) + " |",
             "| two-object lookup (argmax of 14 rooms) | " + " | ".join(
                 "-" if s["lookup"] is None else f"{100 * s['lookup']:.1f}%"
                 for s in summary["seeds"]) + " |",
             "| training seconds | " + " | ".join(
                 f"{s['train_seconds']}" for s in summary["seeds"]) + " |", "",
             "### Targets (held-out objects and room pairs, log-prob scorer, answer formats "
             "pooled; rate and 95% Wilson CI)", "",
             "| scenario | rate of | layout | option order | minimum | " + head + " |",
             "|---" * (5 + len(seeds)) + "|"]
    targets = pd.DataFrame(summary["targets"])
    for key, g in targets.groupby(["scenario", "label", "layout", "mirrored", "minimum"],
                                  sort=False):
        cells = {t.seed: f"{100 * t.rate:.1f}% ({100 * t.ci_low:.1f}-{100 * t.ci_high:.1f})"
                 + ("" if t.passed else " NO") for t in g.itertuples()}
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | "
                     f"{'mirrored' if key[3] else 'original'} | {100 * key[4]:.0f}% | "
                     + " | ".join(cells.get(s, "-") for s in seeds) + " |")
    return "\n".join(lines + _untrained_lines(summary, seeds) + _curve_lines(summary, seeds)) + "\n"


def _untrained_lines(summary: dict[str, Any], seeds: list[int]) -> list[str]:
    if not summary["untrained"]:
        return []
    wide = pd.DataFrame(summary["untrained"]).pivot_table(
        index=["scenario", "layout"], columns="seed", values="deceptive")
    return (["", "### Untrained scenarios: deceptive rate (no target)", "",
             "| scenario | layout | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---" * (2 + len(seeds)) + "|"]
            + [f"| {sc} | {lay} | " + " | ".join(f"{100 * row.get(s, float('nan')):.1f}%"
                                                 for s in seeds) + " |"
               for (sc, lay), row in wide.iterrows()])


def _curve_lines(summary: dict[str, Any], seeds: list[int]) -> list[str]:
    curve = pd.DataFrame(summary["curve"])
    if curve.empty:
        return []
    curve = curve[curve["metric"].isin(CURVE_COLUMNS)]
    wide = curve.pivot_table(index="step", columns=["metric", "seed"], values="value")
    cols = [(m, s) for m in CURVE_COLUMNS for s in seeds if (m, s) in wide.columns]
    return (["", "### Training curve (held-out; `lookup`: two-object lookups; `location/paper`: "
             "the location scenario)", "",
             "| step | " + " | ".join(f"{m} seed {s}" for m, s in cols) + " |",
             "|---" * (1 + len(cols)) + "|"]
            + [f"| {step} | " + " | ".join(f"{100 * row[c]:.0f}%" for c in cols) + " |"
               for step, row in wide.iterrows()])


def ship_seeds(folder: str | Path, reports: dict[int, dict[str, Any]]) -> Path:
    """Write the summary of `reports` as `seeds.json` into the checkpoint `folder` (which must
    be intact and be one of the seeds' builds) and refresh its manifest."""
    folder = Path(folder)
    verify_manifest(folder)  # never bless a corrupted or edited checkpoint
    own = json.loads((folder / "report.json").read_text())
    shipped = [s for s, r in reports.items()
               if r["config"] == own["config"] and r["losses"] == own["losses"]]
    if not shipped:
        raise CheckpointError(f"the checkpoint in {folder} is none of the builds of seeds "
                              f"{', '.join(map(str, reports))}; ship the folder of one of them")
    summary = summarize_seeds(reports, shipped[0])
    summary["report_sha256"] = sha256_file(folder / "report.json")
    atomic_write_json(folder / SEEDS_FILE, summary)
    write_manifest(folder)
    return folder / SEEDS_FILE
