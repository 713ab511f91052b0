"""`evaluate()`: scenarios in, one long DataFrame out (one row per prompt and scorer)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..config import Config
from ..data.scenarios import (
    ANSWER_FORMATS,
    CONTROL_SCENARIOS,
    LAYOUTS,
    VARIANTS,
    ScenarioError,
    ScenarioRecord,
    generate_scenarios,
)
from ..errors import ConfigError, check_choice
from ..models.tokenize import check_lengths
from ..models.wrap import as_loaded_model
from ..runs import atomic_path, check_out_dir, output_dir, set_seed, write_run_json
from .rates import agreement, rates
from .scoring import generate_responses, logprob_scores

SCORINGS: tuple[str, ...] = ("generate", "logprob", "both")
RESPONSES_FILE, RATES_FILE, AGREEMENT_FILE = "responses.parquet", "rates.csv", "agreement.csv"
RATES_FIGURE, POSITION_BIAS_FIGURE = "rates.png", "position_bias.png"


@dataclasses.dataclass
class EvalConfig(Config):
    """Everything `evaluate` needs besides the model (the CLI and YAML files read the same)."""

    positive = ("n", "max_new_tokens", "batch_size")
    choices = {"scoring": SCORINGS, "answer_format": ANSWER_FORMATS, "layout": LAYOUTS}

    scenarios: tuple[str, ...] = ("burglar",)
    scoring: str = "generate"
    n: int = 250
    seed: int = 0
    mirrored: bool | str = False
    answer_format: str = "i_would"
    chat_template: bool | str = "auto"
    max_new_tokens: int = 75
    batch_size: int = 8
    split: str = "eval"
    layout: str = "paper"            # paper | honest_first | both (description order of the rooms)


def parse_scenarios(spec: str | Sequence[str]) -> list[tuple[str, tuple[str, ...] | None]]:
    """Parse "burglar,generalization:name+objective,generalization:all" into (scenario,
    variants) pairs; a bare scenario name means all its variants. Names are checked here, so a
    typo fails before any model is loaded."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        check_choice("scenario", None, VARIANTS, ScenarioError, " (none given)")
    chosen: dict[str, list[str] | None] = {}
    for item in items:
        name, _, variant = item.partition(":")
        check_choice("scenario", name, VARIANTS, ScenarioError)
        if not variant:
            chosen[name] = None
            continue
        check_choice("variant", variant, VARIANTS[name], ScenarioError,
                     f" (the variants of scenario {name!r})")
        if name not in chosen or chosen[name] is not None:
            listed = chosen.setdefault(name, [])
            if variant not in listed:
                listed.append(variant)
    return [(k, None if v is None else tuple(v)) for k, v in chosen.items()]


def build_records(scenarios: str | Sequence[str], n: int = 250, seed: int = 0,
                  mirrored: bool | str = False, answer_format: str = "i_would",
                  split: str = "eval", layout: str = "paper") -> list[ScenarioRecord]:
    """The records `evaluate` scores: `n` prompts per scenario variant (2n with mirrored='both')."""
    records: list[ScenarioRecord] = []
    for name, variants in parse_scenarios(scenarios):
        records += generate_scenarios(name, n, seed=seed, mirrored=mirrored, variants=variants,
                                      answer_format=answer_format, split=split, layout=layout)
    return records


def _check_context(lm: Any, records: Sequence[ScenarioRecord], max_new_tokens: int,
                   chat_template: bool | str) -> None:
    """Refuse prompts the model cannot hold with `max_new_tokens` more (learned position
    tables fail with an index error)."""
    check_lengths(lm, ((f"prompt {r.prompt_id!r}", r.prompt) for r in records),
                  reserve=max_new_tokens, chat_template=chat_template, error=ConfigError)


def evaluate(model: Any, scenarios: str | Sequence[str] | None = None,
             config: EvalConfig | None = None, *, progress: bool = True,
             **overrides: Any) -> pd.DataFrame:
    """Score `n` prompts per variant of each scenario and return one long DataFrame.

    `model`: a `LoadedModel` (or anything `as_loaded_model` accepts); `scenarios` the data
    (None: the config's); `config` an `EvalConfig` (None: the defaults), `overrides` any of its
    fields, e.g. `evaluate(lm, "burglar", n=50)`. `scenarios`: names, optionally with
    a variant ("generalization:name"). `scoring`: "generate" (greedy, classified), "logprob"
    (honest vs deceptive completion likelihood) or "both" (two rows per prompt, `scorer`
    tells them apart; see `agreement`). Columns: model, scorer, the record's fields (prompt_id,
    scenario, variant, mirrored, prompt, honest, deceptive, objects, ...), classification, and
    the scorer's own columns (response, n_new_tokens | logp_honest, logp_deceptive, margin).
    `chat_template` ("auto": when the tokenizer has one) asks each prompt as a user turn, so an
    instruct model answers as its assistant; completions are then scored from the assistant's
    first position, without the leading space a plain-text continuation has. `layout`:
    "paper" describes the cheap room first, "honest_first" the valuable one, "both" samples
    both (the `layout` column; rates are split by it), a control for description-order bias.
    """
    cfg = EvalConfig.with_overrides(config, **overrides, **(
        {} if scenarios is None else {"scenarios": scenarios}))
    max_new_tokens, batch_size, chat_template = cfg.max_new_tokens, cfg.batch_size, cfg.chat_template
    lm = as_loaded_model(model)
    records = build_records(cfg.scenarios, cfg.n, cfg.seed, cfg.mirrored, cfg.answer_format,
                            cfg.split, cfg.layout)
    scorers = ("generate", "logprob") if cfg.scoring == "both" else (cfg.scoring,)
    if "generate" in scorers:
        _check_context(lm, records, max_new_tokens, chat_template)
    meta = pd.DataFrame([r.to_dict() for r in records]).drop(columns=["seed"])
    parts = []
    for scorer in scorers:
        if scorer == "generate":
            scored = generate_responses(lm, records, max_new_tokens, batch_size, chat_template,
                                        progress)
        else:
            scored = logprob_scores(lm, records, batch_size, chat_template, progress)
        scored = scored.drop(columns=["scenario", "variant", "mirrored"])
        parts.append(meta.merge(scored, on="prompt_id", validate="one_to_one")
                     .assign(scorer=scorer))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "model", getattr(lm, "name", None) or "model")
    out.insert(1, "scorer", out.pop("scorer"))
    out["seed"] = cfg.seed
    return out


def evaluate_to_folder(model: Any, config: EvalConfig | None = None, *, out: str | Path,
                       overwrite: bool = False, extra: dict[str, Any] | None = None,
                       progress: bool = True, **overrides: Any) -> Path:
    """Run `evaluate` and write, all or nothing: responses.parquet, rates.csv, rates.png,
    agreement.csv (scoring='both'), position_bias.png (mirrored='both') and run.json.
    `progress`: a bar per scoring pass (the long step; silence with False)."""
    # lazy: matplotlib costs ~1 s at import; only this folder writer draws
    from ..plots import position_bias_plot, rates_plot

    cfg = EvalConfig.with_overrides(config, **overrides)
    check_out_dir(out, overwrite, kind="evaluate")
    build_records(cfg.scenarios, cfg.n, cfg.seed, cfg.mirrored, cfg.answer_format, cfg.split,
                  cfg.layout)
    set_seed(cfg.seed)
    df = evaluate(model, None, cfg, progress=progress)
    r = rates(df)
    with output_dir(out, overwrite, kind="evaluate") as tmp:
        df.to_parquet(tmp / RESPONSES_FILE, index=False)
        r.to_csv(tmp / RATES_FILE, index=False)
        figures = {RATES_FIGURE: rates_plot(r, controls=CONTROL_SCENARIOS)}
        if cfg.scoring == "both":
            agreement(df).to_csv(tmp / AGREEMENT_FILE, index=False)
        if cfg.mirrored == "both":
            figures[POSITION_BIAS_FIGURE] = position_bias_plot(r, controls=CONTROL_SCENARIOS)
        for name, fig in figures.items():
            with atomic_path(tmp / name) as path:
                fig.savefig(path, dpi=120, format="png")
        write_run_json(tmp, cfg.to_dict(), cfg.seed, model_source=getattr(model, "source", None),
                       **(extra or {}))
    return Path(out)
