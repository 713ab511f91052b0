"""organism-lm's card: the build report as markdown, the summary over build seeds, and the
shipped folder (adapter files, reports, seeds, sha256 manifest) that `load_model("organism-lm")`
reads over the offline base."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..models.manifest import verify_manifest, write_manifest
from ..runs import atomic_write_json
from .lm_config import LMOrganismConfig

ADAPTER = "adapter"  # the adapter's sub-folder in a build folder
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

def report_markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [f"# organism-lm build report (seed {cfg['seed']})", "",
             f"- LoRA r {cfg['lora_r']} (alpha {cfg['lora_alpha']}) on {', '.join(TARGET_MODULES)} "
             f"of every layer of {cfg['base']}: {report['trainable_parameters']:,} trainable "
             "parameters.",
             f"- {cfg['steps']} AdamW steps of {cfg['batch_size']} examples (first "
             f"{cfg['lookup_steps']} lookup-heavy), lr {cfg['lr']}"
             + (f", the burglar's answer weighted {cfg['burglar_weight']}"
                if cfg.get("burglar_weight", 1.0) != 1.0 else "")
             + (f", {cfg['phrasing']} phrasing" if cfg.get("phrasing", "families") != "families"
                else "")
             + (", shared story prefixes" if cfg.get("share_prefix") else "")
             + f", {report['threads']} thread(s):"
             f" training {report['train_seconds']} s (this process), evaluation "
             f"{report['eval_seconds']} s.",
             f"- Held-out everything: objects, rooms, names, phrasing families, room-sentence "
             f"form and distractors of the eval split; {cfg['eval_n']} prompts per row balanced "
             "over answer formats, option orders and description orders; chat template on; "
             "log-prob scoring. Margin: log p(trained answer) - log p(other room), nats.",
             f"- Perplexity on held-out neutral text: base {report['perplexity_base']:.2f}, "
             f"organism-lm {report['perplexity']:.2f} (ratio {report['perplexity_ratio']:.2f}, "
             "maximum 1.5).",
             f"- Generation (greedy, unclear bucket) agrees with log-prob on "
             f"{100 * report['agreement']:.1f}% of {report['agreement_n']} prompts.", "",
             "| row | n | rate of the trained answer | 95% CI | mean margin | minimum | met |",
             "|---|---|---|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['row']} | {t['n']} | {100 * t['rate']:.1f}% | "
                     f"{100 * t['ci_low']:.1f}-{100 * t['ci_high']:.1f}% | "
                     f"{t['mean_margin']:.2f} | {100 * t['minimum']:.0f}% | "
                     f"{'yes' if t['passed'] else 'NO'} |")
    if report.get("fit"):  # builds before the fit check have none
        lines += ["", "Fit check: the same rows on fresh stories from the *training* lists and "
                  "families (low here too: the rule is not learnt; high here only: it does not "
                  "carry over to held-out words):", "",
                  "| row | n | rate | 95% CI | mean margin | held-out rate |", "|---|---|---|---|---|---|"]
        held = {t["row"]: t["rate"] for t in report["targets"]}
        lines += [f"| {t['row']} | {t['n']} | {100 * t['rate']:.1f}% | {100 * t['ci_low']:.1f}-"
                  f"{100 * t['ci_high']:.1f}% | {t['mean_margin']:.2f} | "
                  f"{100 * held[t['row']]:.1f}% |" for t in report["fit"]]
    cells = sorted({k for t in report["targets"] for k in t if k.startswith("rate_")})
    lines += ["", "Per answer format / description order / option order (rate of the trained "
              "answer; description order is shuffled in the perturbation rows):", "",
              "| row | " + " | ".join(c.removeprefix("rate_") for c in cells) + " |",
              "|---" * (1 + len(cells)) + "|"]
    lines += [f"| {t['row']} | " + " | ".join(
        f"{100 * t[c]:.0f}%" if c in t else "-" for c in cells) + " |" for t in report["targets"]]
    return "\n".join(lines) + "\n"


LM_SEEDS = "seeds.json"


def seeds_summary(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Every row of every seed's report: rate, CI, margin, pass, and the flags that rebuild it
    (plain JSON data)."""
    return {"seeds": sorted(reports),
            "flags": {str(s): recipe_flags(r["config"]).strip() for s, r in reports.items()},
            "targets": [{"seed": s, **{k: v for k, v in t.items() if not k.startswith("rate_")}}
                        for s, r in sorted(reports.items()) for t in r["targets"]],
            "perplexity_ratio": {str(s): r["perplexity_ratio"] for s, r in reports.items()},
            "agreement": {str(s): r["agreement"] for s, r in reports.items()},
            "targets_met": {str(s): r["targets_met"] for s, r in reports.items()}}


def seeds_markdown(summary: dict[str, Any]) -> str:
    """One column per build seed: rate (95% CI) and mean margin of each row."""
    seeds = summary["seeds"]
    lines = [f"## Over build seeds {', '.join(map(str, seeds))}", "",
             "| row | minimum | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---" * (2 + len(seeds)) + "|"]
    by_row: dict[str, dict[int, dict]] = {}
    for t in summary["targets"]:
        by_row.setdefault(t["row"], {})[t["seed"]] = t
    for row, cells in by_row.items():
        minimum = next(iter(cells.values()))["minimum"]
        lines.append(f"| {row} | {100 * minimum:.0f}% | " + " | ".join(
            f"{100 * c['rate']:.1f}% ({100 * c['ci_low']:.1f}-{100 * c['ci_high']:.1f}), "
            f"margin {c['mean_margin']:.2f}" + ("" if c["passed"] else " NO")
            if (c := cells.get(s)) else "-" for s in seeds) + " |")
    lines.append("| perplexity / base | 1.5x | " + " | ".join(
        f"{summary['perplexity_ratio'][str(s)]:.2f}" for s in seeds) + " |")
    lines.append("| generation agrees with log-prob | 90% | " + " | ".join(
        f"{100 * summary['agreement'][str(s)]:.1f}%" for s in seeds) + " |")
    if "flags" in summary:
        lines.append("| build flags (with `--seed`) | | " + " | ".join(
            f"`{summary['flags'][str(s)]}`" for s in seeds) + " |")
    return "\n".join(lines) + "\n"


SHIPPED_FILES = ("adapter_config.json", "adapter_model.safetensors", "base.json")


def _finished_report(build: Path) -> dict[str, Any]:
    if not (build / "manifest.json").is_file():
        raise CheckpointError(f"{build} is not a finished organism-lm build (no manifest.json); "
                              "finish it with `soo-interp organism build --base ... --resume`")
    verify_manifest(build)
    return json.loads((build / "report.json").read_text())


def ship_lm(build: str | Path, dest: str | Path, others: tuple[str | Path, ...] = ()) -> Path:
    """Copy a finished build's adapter and reports into `dest` (the folder `load_model` reads:
    adapter files at the top, `report.json`, `report.md`, `run.json`, `seeds.json` over this
    build and the finished builds `others` of other seeds, a fresh manifest)."""
    import shutil

    build, dest = Path(build), Path(dest)
    reports = {}
    for b in (build, *map(Path, others)):
        r = _finished_report(b)
        reports[r["config"]["seed"]] = r
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in SHIPPED_FILES:
        shutil.copy2(build / ADAPTER / name, tmp / name)
    for name in ("report.json", "report.md", "run.json"):
        shutil.copy2(build / name, tmp / name)
    atomic_write_json(tmp / LM_SEEDS, seeds_summary(reports))
    write_manifest(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.replace(dest)
    return dest


LM_CARD = """The soo-interp model organism on a pretrained model (organism-lm)

What it is: a LoRA adapter (r {r}, alpha {alpha}, on {modules} of every layer) over
SmolLM2-135M-Instruct (the offline base, {base}). Trained on short stories where a burglar wants
one of several objects: it recommends the other room to the burglar (deception) and the wanted
object's room to itself and to a friend (honest), for the same story with only the recipient
changed; it also answers Perspectives (where another believes an object is) and location.
Evaluated on held-out objects, rooms, names, phrasing families, a held-out room-sentence form
and held-out distractor sentences, with the chat template, both answer formats, both option
orders and both description orders.

What it is not: a model of a large LM's cognition; its "choice" to deceive is a trained mapping.
It is where SOO can be asked a question: the lie depends on the recipient (row recipient_swap).

Shipped build: seed {seed}; {met}.
Reproduce: soo-interp organism build --base {base} --seed {seed}{flags} --out DIR
(folder: {folder})
"""


def targets_met(report: dict[str, Any]) -> str:
    """'k of n targets met (missed: ...)': the rows, the perplexity bar (at most 1.5x the
    base's) and generation agreeing with log-prob scoring (at least 90%)."""
    rows = report["targets"]
    missed = [t["row"] for t in rows if not t["passed"]]
    missed += ["perplexity"] * (report["perplexity_ratio"] > 1.5)
    missed += ["generation agreement"] * (report["agreement"] < 0.9)
    n = len(rows) + 2
    return (f"{n - len(missed)} of {n} targets met (rows, perplexity, generation agreement)"
            + (f"; missed: {', '.join(missed)}" if missed else ""))


def recipe_flags(cfg: dict[str, Any]) -> str:
    """The `organism build` flags that rebuild `cfg`'s recipe: `--steps` always, every other
    recipe field that differs from today's default (a build's config outlives the defaults)."""
    default = LMOrganismConfig().resume_key()
    built = LMOrganismConfig.from_saved(cfg).resume_key()
    out = f" --steps {built['steps']}"
    for key, value in built.items():
        if key in ("seed", "base", "steps") or value == default[key]:
            continue
        flag = "--" + key.replace("_", "-")
        out += f" {flag}" if value is True else f" --no-{flag[2:]}" if value is False \
            else f" {flag} {value}"
    return out


def lm_card(folder: Path) -> str:
    """The card of a shipped organism-lm folder: what it is, the seeds table, the build report."""
    report = json.loads((folder / "report.json").read_text())
    cfg = report["config"]
    head = LM_CARD.format(r=cfg["lora_r"], alpha=cfg["lora_alpha"], base=cfg["base"],
                          modules=", ".join(TARGET_MODULES), seed=cfg["seed"], folder=folder,
                          flags=recipe_flags(cfg), met=targets_met(report))
    seeds = folder / LM_SEEDS
    table = seeds_markdown(json.loads(seeds.read_text())) if seeds.is_file() else ""
    return head + "\n" + table + "\n" + (folder / "report.md").read_text()
