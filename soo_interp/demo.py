"""The main job on the built-in model organism: where do self and other diverge inside it, and how
deceptive is it on the paper's scenarios and their controls? Writes figures and a short report."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from .config import Config
from .data.pairs import soo_pairs
from .data.scenarios import SCENARIOS
from .evaluation.rates import rates_table
from .evaluation.run import SCORINGS, EvalConfig, evaluate_to_folder
from .measure import MeasureConfig, measure_to_folder
from .metrics import VECTOR_POOLINGS
from .models import load_model
from .runs import (
    atomic_write_bytes,
    atomic_write_text,
    check_out_dir,
    check_writable,
    output_dir,
    set_seed,
    write_run_json,
)
from .stats import summarize


@dataclasses.dataclass
class DemoConfig(Config):
    """What `demo` runs on (the CLI's flags and a YAML file set the same fields)."""

    positive = ("n",)
    choices = {"scoring": SCORINGS, "pooling": VECTOR_POOLINGS}

    model: str = "organism"
    n: int | None = None             # prompts per scenario variant (x2: mirrored and not);
                                     # None: 50 on the built-in organisms, 20 on other models
    seed: int = 0
    scoring: str = "logprob"
    pooling: str = "last"
    chat_template: bool | str = "auto"  # prompts as a chat turn (auto: when the model has one)
    figures: str = "figures"         # where the figures are copied for the README


def run_demo(cfg: DemoConfig, out: str | Path, overwrite: bool = False,
             progress: bool = True) -> Path:
    """Measure latent SOO at every layer and site, evaluate deception and controls with 95%
    CIs, and write `measure/`, `evaluate/`, `report.md` and `run.json` into `out` (all or
    nothing), copying the figures into `cfg.figures`."""
    cfg = dataclasses.replace(cfg, n=cfg.n or (50 if cfg.model.startswith("organism") else 20))
    check_out_dir(out, overwrite, kind="demo")
    check_writable(cfg.figures, "--figures folder")
    set_seed(cfg.seed)
    lm = load_model(cfg.model)
    mcfg = MeasureConfig(pooling=cfg.pooling, seed=cfg.seed, chat_template=cfg.chat_template)
    ecfg = EvalConfig(scenarios=SCENARIOS, scoring=cfg.scoring, n=cfg.n, seed=cfg.seed,
                      mirrored="both", batch_size=32, chat_template=cfg.chat_template)
    with output_dir(out, overwrite, kind="demo") as tmp:
        measure_to_folder(lm, soo_pairs("test"), mcfg, out=tmp / "measure", progress=progress)
        evaluate_to_folder(lm, ecfg, out=tmp / "evaluate", progress=progress)
        soo = pd.read_parquet(tmp / "measure" / "soo.parquet")
        summary = summarize(soo)
        rates = pd.read_csv(tmp / "evaluate" / "rates.csv")
        report = _report(cfg, summary, rates_table(rates), lm)
        atomic_write_text(tmp / "report.md", report)
        write_run_json(tmp, cfg.to_dict(), cfg.seed, model_source=lm.source, measure=mcfg.to_dict(),
                       evaluate=ecfg.to_dict())
        _copy_figures(tmp, Path(cfg.figures), figure_prefix(cfg.model))  # inside: a failed
        # copy leaves no run folder
    return Path(out)


def figure_prefix(model: str) -> str:
    """`demo_` for the default model (the README's figures), `demo_<model>_` for any other, so
    a demo on another model never overwrites them."""
    if model == DemoConfig.model:
        return "demo_"
    return "demo_" + "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(model).name) + "_"


def _copy_figures(run: Path, figures: Path, prefix: str = "demo_") -> None:
    """The run's figures under the names the README shows, each written atomically."""
    for src, name in (("measure/heatmap.png", "latent_soo_heatmap.png"),
                      ("measure/layers.png", "latent_soo_layers.png"),
                      ("evaluate/rates.png", "rates.png"),
                      ("evaluate/position_bias.png", "position_bias.png")):
        atomic_write_bytes(figures / (prefix + name), (run / src).read_bytes())


def _report(cfg: DemoConfig, summary: pd.DataFrame, table: pd.DataFrame, lm: Any) -> str:
    table = table.drop(columns=["model", "scorer"])
    table = table[[c for c in table.columns
                   if c in ("honest", "deceptive") or not table[c].astype(str).str.startswith("0.0%").all()]]
    soo = summary[summary.metric == "latent_soo"]
    wide = soo.pivot(index="layer", columns="component", values="mean").reset_index()
    norm = summary[summary.metric == "normalised_soo"].pivot(
        index="layer", columns="component", values="mean").reset_index()
    top = soo.sort_values("mean", ascending=False).head(3)
    top_txt = ", ".join(f"layer {r.layer} {r.component} ({r['mean']:.3g})" for _, r in top.iterrows())
    return "\n".join([
        f"# soo-interp demo: {cfg.model}", "",
        f"{lm.model.config.model_type} model, {lm.n_layers} layers; seed {cfg.seed}; "
        f"{cfg.n} prompts per scenario variant, each also mirrored; scoring: {cfg.scoring}.", "",
        "## Latent SOO (mean MSE between self and other prompts, held-out pairs, "
        f"{cfg.pooling}-token pooling)", "", wide.to_markdown(index=False, floatfmt=".4g"), "",
        f"Largest self/other distance: {top_txt}.", "",
        "## Normalised overlap (0: self and other as close as two other persons; 1: as far "
        "apart as an unrelated prompt)", "", norm.to_markdown(index=False, floatfmt=".3g"), "",
        "Figures (normalised overlap): `measure/heatmap.png`, `measure/layers.png`.", "",
        "## Behaviour (rates with 95% Wilson intervals)", "",
        "`deceptive` on burglar-type scenarios is the rate of recommending the cheap room; on the "
        "controls (`perspectives`, `self_recommend`, `friend`) and the capability task "
        "(`location`) it is the rate of the wrong answer.", "", table.to_markdown(index=False), "",
        "Figures: `evaluate/rates.png`, `evaluate/position_bias.png` (mirrored vs not).", "",
    ])
