"""The one outcome schema every experiment writes (sweep, search, verdict; and the probes and
evaluations they call): one name per column, one meaning per name, listed in `COLUMNS`.

`layer`/`component` are always where a value was *measured*; `train_layer`/`train_component`
where a `soo` cell *trained*. A component is `attn`, `mlp` or `resid` and is never called
`site`. The layout a story is told in is `deceptive_first` or `honest_first` (`layout="paper"`
is the argument that selects `deceptive_first`, the paper's order). A probe's shuffled-label
baseline is `control="shuffled"` (beside `real`) wherever a probe is fit. KL to the base model
is the metric `next_token_kl`. Tables derived from the outcomes (`effects.csv`, `configs.csv`,
`verdict.csv`) keep these names, with `sham.` and `base.` prefixes for the control cells'
values. Splits are named by their data source: SOO pairs `train|test|all`, scenarios
`train|eval`, neutral texts `heldout|train`; each keeps evaluation data out of training.

Reports written before this schema (e.g. `reports/organism-search`, `reports/organism-verdict`)
used `layer`/`component` for the trained site, `at_layer`/`at_component` for the measured one,
`kl_to_base` and the layout `paper`: `upgrade` reads them into this schema; the committed files
stay as they were written.
"""
from __future__ import annotations

import pandas as pd

COLUMNS: dict[str, str] = {
    "model": "the model's name or path",
    "cell_id": "the cell's folder name under OUT/cells/ (e.g. soo-L1.attn-mse-s0)",
    "condition": "base (untrained), soo (SOO fine-tuning) or sham (same data, plain LM loss); "
                 "the verdict adds soo-sham for the effect",
    "train_layer": "the layer a soo cell trained at (empty for base and sham)",
    "train_component": "the component (attn, mlp, resid) a soo cell trained at",
    "loss": "the SOO loss of a soo cell (the sweep writes lm for sham, none for base)",
    "pooling": "how a soo cell's loss pooled token positions (last, mean)",
    "lr": "the cell's learning rate",
    "capability_weight": "the weight of the cell's capability (KL to base) term",
    "pair_set": "the SOO pair set the cell trained on",
    "seed": "the cell's training seed",
    "sham_text": "what a sham cell's LM loss read: pairs (the SOO prompt strings, the "
                 "scenario-exposure sham) or neutral (unrelated text, same tokens)",
    "stop_grad_self": "whether a soo cell detached the self prompt's activations",
    "lora_scope": "where a cell's LoRA adapters sat: every layer (all) or the trained one (target)",
    "scenario": "the evaluated scenario (soo_interp.data.scenarios)",
    "layout": "which room the story describes first: deceptive_first or honest_first",
    "layer": "the layer a value was measured at (empty for whole-model metrics)",
    "component": "the component (attn, mlp, resid) a value was measured at",
    "metric": "what was measured: deceptive_rate, honest_rate, margin (honest minus deceptive "
              "answer log-probability, nats), perplexity, next_token_kl (KL of the next-token "
              "distribution from the base's on held-out neutral text), latent_soo, "
              "normalised_soo, unclear_rate and sentence_rate (greedy burglar generations "
              "naming neither or both rooms; reading as language), "
              "signature.<name>.<base|tuned>",
    "value": "the measured value",
    "n": "how many items (prompts, pairs, texts) the value averages",
    "control": "a probe fit on the true labels (real) or on shuffled labels (shuffled: chance)",
    "probe": "the probe's kind (logistic, mean_diff, lat)",
}

# a `Cell`'s field -> its column in the outcome tables (the other fields keep their names)
CELL_COLUMNS = {"layer": "train_layer", "component": "train_component"}
LEGACY_MEASURED = {"at_layer": "layer", "at_component": "component"}
LEGACY_NAMES = {"kl_to_base": "next_token_kl", "paper": "deceptive_first"}


def cell_columns(cell: object) -> dict:
    """A cell's coordinates under their outcome-table names."""
    import dataclasses

    return {CELL_COLUMNS.get(k, k): v for k, v in dataclasses.asdict(cell).items()}


def cell_fields(row: dict) -> dict:
    """The inverse of `cell_columns`: a table row's configuration as `Cell` keyword arguments."""
    fields = {v: k for k, v in CELL_COLUMNS.items()}
    return {fields.get(k, k): v for k, v in row.items()}


def upgrade(df: pd.DataFrame) -> pd.DataFrame:
    """A search or verdict table written before this schema, in this schema (a current table is
    returned unchanged): the trained site to `train_layer`/`train_component`, the measured one to
    `layer`/`component`, `kl_to_base` to `next_token_kl` (metric values and column names, also
    behind `sham.`/`base.`) and the layout `paper` to `deceptive_first`."""
    legacy = "train_layer" not in df and ("pooling" in df or "at_layer" in df)
    if not legacy:
        return df
    df = df.rename(columns=CELL_COLUMNS).rename(columns=LEGACY_MEASURED)
    df = df.rename(columns=lambda c: ".".join(LEGACY_NAMES.get(p, p) for p in c.split(".")))
    for col in ("metric", "layout"):
        if col in df:
            df[col] = df[col].replace(LEGACY_NAMES)
    return df
