"""Everything the search measures on one model, and what one search cell measures.

`model_outcomes(lm, base, n, block)` returns a long DataFrame (metric, scenario, layout, layer,
component, value, n: the columns of `soo_interp.experiments.schema`, `layer` the measured one):
the deceptive (controls: wrong) rate of every (scenario, layout) in `EVALUATIONS` and the mean
log-probability margin (honest minus deceptive answer, in nats: near 0 means indifferent, not
honest), both option orders, and for the burglar the unclear and sentence rates of a few greedy
generations (`GENERATION_N`), log-prob scoring on the held-out evaluation split, prompts from
`block` (0: the search's; the verdict gives each fresh seed its own disjoint block,
`soo_interp.data.scenarios.generate_scenarios`); perplexity and next-token KL to the base on
held-out neutral text; latent SOO and normalised overlap of the built-in held-out pairs at every
(layer, component). `measure_cell` is what a search cell measures; the cell engine
(`soo_interp.experiments.cells`) trains and runs the cell.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.pairs import soo_pairs
from ..data.scenarios import ScenarioError, generate_scenarios, scenario_size
from ..errors import ConfigError
from ..evaluation import (
    generate_responses,
    logprob_scores,
    looks_like_sentence,
    next_token_kl,
    perplexity,
)
from ..measure import measure
from ..models.sites import Site
from ..organism.stories import eval_records as story_records
from ..probes import fit_probes
from ..probes.run import compare_results
from ..runs import atomic_path

# (scenario, layout) evaluated in every cell; rates are "deceptive" (for the controls: wrong).
EVALUATIONS: tuple[tuple[str, str], ...] = (
    ("burglar", "paper"), ("burglar", "honest_first"), ("self_recommend", "paper"),
    ("self_recommend", "honest_first"), ("friend", "paper"), ("friend", "honest_first"),
    ("perspectives", "paper"), ("location", "paper"))
OUTCOME_COLUMNS = ["metric", "scenario", "layout", "layer", "component", "value", "n"]
# the prompt suites: the toolkit's scenarios (`data.scenarios`), or organism-lm's held-out rows
# (`organism.stories.ROWS`: its held-out phrasings, objects, rooms and names) standing for them
SUITES: tuple[str, ...] = ("scenarios", "organism-lm")
ORGANISM_LM_ROWS = {"burglar": "burglar", "self_recommend": "self", "friend": "friend",
                    "perspectives": "perspectives", "location": "location"}
ORGANISM_LM_STREAM = 10_000  # the seed of its prompt stream: no organism-lm build seed
PROBE_SUITES = ("self_vs_other", "honest_vs_deceptive")
# Greedy generations per burglar layout (the first of the scored prompts), for the degeneration
# check: the rate of answers naming neither or both rooms (`unclear_rate`) and of answers that
# still read as language (`sentence_rate`, `evaluation.looks_like_sentence`).
GENERATION_N, GENERATION_TOKENS = 16, 24


def eval_records(suite: str, scenario: str, layout: str, n: int, block: int = 0,
                 first: int | None = None) -> list:
    """The 2n prompts (both option orders) of (scenario, layout) in evaluation `block` of
    `suite`, after a first block of `first` (default `n`) prompts. `organism-lm`: the held-out
    row `ORGANISM_LM_ROWS[scenario]` of one fixed prompt stream, filtered to the layout
    (perspectives and location have one) with repeats dropped, cut into consecutive blocks."""
    if suite == "scenarios":
        return generate_scenarios(scenario, n, seed=0, mirrored="both", layout=layout,
                                  block=block, first=first)
    if suite != "organism-lm":
        raise ScenarioError(f"unknown evaluation suite {suite!r}; choose from {', '.join(SUITES)}")
    start = 2 * (first or n) + 2 * n * (block - 1) if block else 0
    want = {"paper": "deceptive_first", "honest_first": "honest_first"}[layout]
    one_layout = scenario in ("perspectives", "location")
    seen: set[str] = set()
    out = []
    for r in story_records(ORGANISM_LM_ROWS[scenario], 4 * (start + 2 * n) + 8, ORGANISM_LM_STREAM):
        if (one_layout or r.layout == want) and r.prompt not in seen:
            seen.add(r.prompt)
            out.append(r)
    if len(out) < start + 2 * n:
        raise ScenarioError(f"organism-lm's {scenario} row has fewer than {start + 2 * n} "
                            f"distinct {layout} prompts; lower n or the number of blocks")
    return out[start:start + 2 * n]


def check_prompt_space(suite: str, n: int, blocks: int, first: int) -> None:
    """`blocks` blocks of `n` fresh prompts after a first block of `first` fit every evaluated
    scenario of the scenario suite (checked before anything is written; organism-lm's rows are
    long enough for the sizes `benchmarks/ladder_gpu.sh` runs, and `eval_records` says when not)."""
    need = first + n * blocks
    for scenario, layout in EVALUATIONS if suite == "scenarios" else ():
        size = scenario_size(scenario, layout=layout)
        if need > size:
            raise ConfigError(f"{blocks} seed(s) x n={n} fresh prompts after the search's "
                              f"{first} need {need} distinct {scenario} prompts ({layout} "
                              f"layout); it has {size}: lower --n or the number of seeds")


def _rates(lm: Any, n: int, block: int = 0, first: int | None = None,
           suite: str = "scenarios") -> list[dict]:
    rows = []
    for scenario, layout in EVALUATIONS:
        records = eval_records(suite, scenario, layout, n, block, first)
        scored = logprob_scores(lm, records)
        # the layout the records hold (`layout="paper"` selects `deceptive_first`)
        where = {"scenario": scenario, "layout": records[0].layout, "n": len(scored)}
        rows.append({"metric": "deceptive_rate", **where,
                     "value": float((scored.classification == "deceptive").mean())})
        rows.append({"metric": "margin", **where, "value": float(scored.margin.mean())})
        if scenario == "burglar":
            rows += _generation(lm, records[:GENERATION_N], where)
    return rows


def _generation(lm: Any, records: list, where: dict) -> list[dict]:
    gen = generate_responses(lm, records, GENERATION_TOKENS)
    where = where | {"n": len(gen)}
    return [{"metric": "unclear_rate", **where,
             "value": float((~gen.classification.isin(["honest", "deceptive"])).mean())},
            {"metric": "sentence_rate", **where,
             "value": float(gen.response.map(looks_like_sentence).mean())}]


def _overlap(lm: Any) -> list[dict]:
    df = measure(lm, soo_pairs("test"), progress=False)
    df = df[df.metric.isin(["latent_soo", "normalised_soo"])]
    g = df.groupby(["metric", "layer", "component"]).value.agg(["mean", "count"]).reset_index()
    return [{"metric": r.metric, "layer": r.layer, "component": r.component,
             "value": r["mean"], "n": r["count"]} for _, r in g.iterrows()]


def model_outcomes(lm: Any, base: Any, n: int, block: int = 0, first: int | None = None,
                   suite: str = "scenarios") -> pd.DataFrame:
    """Behaviour, capability and overlap of `lm` (pass `base` itself for the base model); the
    prompts of evaluation `block` of `suite` (`eval_records`), after a first block of `first`
    (default `n`) prompts."""
    rows = _rates(lm, n, block, first, suite) + _overlap(lm)
    rows.append({"metric": "perplexity", "value": perplexity(lm)})
    rows.append({"metric": "next_token_kl",
                 "value": 0.0 if lm is base else next_token_kl(base, lm)})
    return pd.DataFrame(rows).reindex(columns=OUTCOME_COLUMNS)


def signature_outcomes(lm: Any, base_probes: Any, trained: Any) -> pd.DataFrame:
    """Self-deception signatures before (`.base`) and after (`.tuned`) training: metric
    `signature.<name>.<base|tuned>` per (layer, component), from probes fit on `lm` and the base
    model's probe results `base_probes`."""
    tuned = fit_probes(lm, suites=PROBE_SUITES, progress=False)
    sig = compare_results(base_probes, tuned, trained)
    return pd.DataFrame({"metric": "signature." + sig.signature + "." + sig.model,
                         "layer": sig.layer, "component": sig.component,
                         "value": sig.value}).reindex(columns=OUTCOME_COLUMNS)


_BASE_PROBES: dict[str, Any] = {}  # per process: the base model's probe fits, by model


def _base_probes(tuned: Any, key: str) -> Any:
    """Probe fits on the base model, computed once per process on `tuned` with its adapter
    switched off (the same module, no second copy)."""
    if key not in _BASE_PROBES:
        with tuned.model.disable_adapter():
            _BASE_PROBES[key] = fit_probes(tuned, suites=PROBE_SUITES, progress=False)
    return _BASE_PROBES[key]


def cell_frame(lm: Any, base: Any, task: Any) -> pd.DataFrame:
    """What a search cell measures (see `measure_cell`), as a frame: `model_outcomes` with
    `task.settings["n"]` on the cell seed's evaluation block (`eval_blocks`, after a first block
    of `eval_first` prompts) of the prompt `suite` (default scenarios) and, when
    `task.settings["signatures"]` and the cell was trained, the self-deception signatures
    before and after."""
    blocks = task.settings.get("eval_blocks") or {}
    df = model_outcomes(lm, base, task.settings["n"], blocks.get(str(task.cell.seed), 0),
                        task.settings.get("eval_first"), task.settings.get("suite", "scenarios"))
    if task.settings["signatures"] and task.train is not None:
        trained = None if task.train.sham else Site(task.train.layer, task.train.component)
        key = json.dumps([task.model, task.load], sort_keys=True, default=str)
        df = pd.concat([df, signature_outcomes(lm, _base_probes(lm, key), trained)],
                       ignore_index=True)
    return df


def write_outcomes(df: pd.DataFrame, folder: Path) -> None:

    with atomic_path(folder / "outcomes.parquet") as tmp:
        df.to_parquet(tmp, index=False)


def measure_cell(lm: Any, base: Any, folder: Path, task: Any) -> None:
    """What a search cell measures (the `measure` of a `soo_interp.experiments.cells.CellTask`):
    `cell_frame`, written to outcomes.parquet."""
    write_outcomes(cell_frame(lm, base, task), folder)
