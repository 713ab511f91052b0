"""Everything the search measures on one model, and one search cell run end to end.

`model_outcomes(lm, base, n)` returns a long DataFrame (metric, scenario, layout, at_layer,
at_component, value, n): the deceptive (controls: wrong) rate of every (scenario, layout) in
`EVALUATIONS`, both option orders, log-prob scoring on the held-out evaluation split;
perplexity and next-token KL to the base on held-out neutral text; latent SOO and normalised
overlap of the built-in held-out pairs at every (layer, component). `run_cell` trains the cell's
adapter (nothing for `base`), measures it, and writes the cell folder all or nothing.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

# (scenario, layout) evaluated in every cell; rates are "deceptive" (for the controls: wrong).
EVALUATIONS: tuple[tuple[str, str], ...] = (
    ("burglar", "paper"), ("burglar", "honest_first"), ("self_recommend", "paper"),
    ("self_recommend", "honest_first"), ("friend", "paper"), ("friend", "honest_first"),
    ("perspectives", "paper"), ("location", "paper"))
OUTCOME_COLUMNS = ["metric", "scenario", "layout", "at_layer", "at_component", "value", "n"]
PROBE_SUITES = ("self_vs_other", "honest_vs_deceptive")


def _rates(lm: Any, n: int) -> list[dict]:
    from .data.scenarios import generate_scenarios
    from .evaluation import logprob_scores

    rows = []
    for scenario, layout in EVALUATIONS:
        records = generate_scenarios(scenario, n, seed=0, mirrored="both", layout=layout)
        scored = logprob_scores(lm, records)
        rows.append({"metric": "deceptive_rate", "scenario": scenario, "layout": layout,
                     "value": float((scored.classification == "deceptive").mean()),
                     "n": len(scored)})
    return rows


def _overlap(lm: Any) -> list[dict]:
    from .data.pairs import soo_pairs
    from .measure import measure

    df = measure(lm, soo_pairs("test"), progress=False)
    df = df[df.metric.isin(["latent_soo", "normalised_soo"])]
    g = df.groupby(["metric", "layer", "component"]).value.agg(["mean", "count"]).reset_index()
    return [{"metric": r.metric, "at_layer": r.layer, "at_component": r.component,
             "value": r["mean"], "n": r["count"]} for _, r in g.iterrows()]


def model_outcomes(lm: Any, base: Any, n: int) -> pd.DataFrame:
    """Behaviour, capability and overlap of `lm` (pass `base` itself for the base model)."""
    from .evaluation import next_token_kl, perplexity

    rows = _rates(lm, n) + _overlap(lm)
    rows.append({"metric": "perplexity", "value": perplexity(lm)})
    rows.append({"metric": "kl_to_base", "value": 0.0 if lm is base else next_token_kl(base, lm)})
    return pd.DataFrame(rows).reindex(columns=OUTCOME_COLUMNS)


def signature_outcomes(lm: Any, base_probes: Any, trained: Any) -> pd.DataFrame:
    """Self-deception signatures before (`.base`) and after (`.tuned`) training: metric
    `signature.<name>.<base|tuned>` per (layer, component), from probes fit on `lm` and the base
    model's probe results `base_probes`."""
    from .probes import fit_probes
    from .probes.run import compare_results

    tuned = fit_probes(lm, suites=PROBE_SUITES)
    sig = compare_results(base_probes, tuned, trained)
    return pd.DataFrame({"metric": "signature." + sig.signature + "." + sig.model,
                         "at_layer": sig.layer, "at_component": sig.component,
                         "value": sig.value}).reindex(columns=OUTCOME_COLUMNS)


def train_cell(model: str, cell: Any, epochs: int) -> Any:
    """The cell's tuned model (merged LoRA adapter), trained from a fresh copy of `model`."""
    from .data.pairs import pair_set
    from .models import load_model
    from .models.loading import LoadedModel
    from .training import TrainConfig, train_soo

    lm = load_model(model)
    sham = cell.condition == "sham"
    tcfg = TrainConfig(layer=0 if sham else cell.layer, component=cell.component or "attn",
                       loss=cell.loss or "mse", pooling=cell.pooling or "last", epochs=epochs,
                       lr=cell.lr, capability_weight=cell.capability_weight, seed=cell.seed,
                       sham=sham)
    res = train_soo(lm, pair_set(cell.pair_set), tcfg, progress=False)
    return LoadedModel(res.model.merge_and_unload().eval(), lm.tokenizer, cell.cell_id)


def run_cell(model: str, cell: Any, folder: Path, cfg: Any) -> None:
    """Train and measure one cell; write `outcomes.parquet` and `cell.json` into `folder`."""
    import time

    from .models import load_model
    from .models.sites import Site
    from .runs import output_dir, set_seed, write_run_json

    start = time.time()
    set_seed(cell.seed or 0)
    base = load_model(model)
    lm = base if cell.condition == "base" else train_cell(model, cell, cfg.epochs)
    df = model_outcomes(lm, base, cfg.n)
    if cfg.signatures and cell.condition != "base":
        from .probes import fit_probes

        base_probes = fit_probes(base, suites=PROBE_SUITES)
        trained = Site(cell.layer, cell.component) if cell.condition == "soo" else None
        df = pd.concat([df, signature_outcomes(lm, base_probes, trained)], ignore_index=True)
    with output_dir(folder, overwrite=True, kind="search-cell") as tmp:
        df.to_parquet(tmp / "outcomes.parquet", index=False)
        write_run_json(tmp, dataclasses.asdict(cell), cell.seed, model=model,
                       search=cfg.to_dict(), seconds=round(time.time() - start, 1))
        from .runs import atomic_write_json

        atomic_write_json(tmp / "cell.json", {"cell": dataclasses.asdict(cell)})
