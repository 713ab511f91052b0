"""The SOO control ladder: does SOO beat plain exposure to the scenarios, and at what cost?

Every arm is a cell of the engine (`soo_interp.experiments.cells`: resumable, local workers,
Ray, submitit), trained from the same base model on every training seed and, past the untuned
arm, on every pair set:

- `untuned`: the base model (one cell per seed, scored on that seed's prompts);
- `sham-neutral`: LM loss on unrelated neutral text cut to the pair texts' token counts;
- `sham-exposure`: LM loss on the same answer-free SOO prompt strings (the scenario-exposure
  sham);
- `soo-last`, `soo-mean`: SOO as the paper describes it, MSE at the target layer's attention
  output, last-token or mean pooling;
- `soo-kl`: SOO as the original public code does it, KL between the two prompts' output
  distributions;
- `soo-stopgrad`, `soo-capability`, `soo-lora-target`, `soo-lora-all`: the recipe's SOO
  objective with the self side detached, with the capability term, with LoRA at the target
  layer only, and at every layer (the recipe's own scope: the same cell as its plain arm).

Dose: all trained arms of a pair set run the same optimizer steps on the same number of
sequences and real tokens (the neutral sham's texts are cut to the pair texts' counts); every
cell records its steps, tokens seen, sequences and forward passes per step beside its
outcomes. `recipe` names the two reproductions (`RECIPES`); explicit settings that contradict
it are refused. Each training seed is scored on its own block of fresh prompts, disjoint from
the search's evaluation prompts (the first `search_n`) and from the other seeds'. Seeds a
search used are refused: without `search_seeds` (`--exclude-from SEARCH_DIR`), ladder seeds
must come from the reserved range `>= RESERVED_SEEDS` that no search or verdict uses by default.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..config import Config
from ..data.pairs import PAIR_SETS, pair_set
from ..errors import ConfigError, check_choice
from ..measure import linear_soo
from ..models.sites import parse_layers
from ..runs import atomic_path, atomic_write_json, atomic_write_text, write_run_json
from ..stats import difference_interval, mean_interval
from ..training.config import TrainConfig, default_layer
from ..training.plan import dose
from .cells import CellTask, resolve_model, run_cells
from .effects import BAR_DAMAGE, cell_table, damage_of, degenerate_of
from .grid import Cell
from .outcomes import (
    OUTCOME_COLUMNS,
    SUITES,
    cell_frame,
    check_prompt_space,
    write_outcomes,
)
from .search import load_outcomes, start_run
from .verdict import outcome_interval

ARMS: tuple[str, ...] = ("untuned", "sham-neutral", "sham-exposure", "soo-last", "soo-mean",
                         "soo-kl", "soo-stopgrad", "soo-capability", "soo-lora-target",
                         "soo-lora-all")
SOO_ARMS: tuple[str, ...] = tuple(a for a in ARMS if a.startswith("soo-"))
# the two reproductions: the SOO objective of the variant arms, and lr / epochs of every arm
# (LoRA r 8, alpha 32, dropout 0.2 on q/v, batch 4 x accumulation 4: TrainConfig's defaults,
# the same in both); reference/paper_facts.md
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"loss": "mse", "pooling": "mean", "lr": 1e-4, "epochs": 15},
    "original-code": {"loss": "kl_logits", "pooling": "mean", "lr": 5e-5, "epochs": 20},
}
RESERVED_SEEDS = 1000  # ladder seeds start here; searches (0, 1) and verdicts (100-102) below
PAIR_SET_LABELS = {"short": "paper pairs", "recipient": "recipient-only pairs",
                   "scenario": "scenario pairs"}
RATES = ("deception", "deception_honest_first", "wrong_self", "wrong_friend",
         "wrong_self_honest_first", "wrong_friend_honest_first", "wrong_location",
         "wrong_perspectives")
OUTCOMES = (*RATES, "margin", "margin_honest_first", "perplexity", "perplexity_ratio",
            "latent_soo", "overlap", "linear_soo", "damage")
DOSE = ("steps", "tokens_seen", "sequences_seen", "forward_passes_per_step", "partial_forward")
STATUS = "ladder.json"


@dataclasses.dataclass
class LadderConfig(Config):
    """Which arms, pair sets and seeds, and how each arm trains. `recipe` fills `loss`,
    `pooling`, `lr` and `epochs` (None: from the recipe; with `recipe` None, TrainConfig's
    defaults and MSE); `layer` None: the paper's 19 where the model has it, else the middle
    layer. `search_n` / `search_seeds`: the search whose evaluation prompts and seeds the
    ladder avoids (`exclude_from` reads them from a search folder)."""

    recipe: str | None = "paper"
    arms: tuple[str, ...] = ARMS
    pair_sets: tuple[str, ...] = ("short", "recipient")
    seeds: tuple[int, ...] = (RESERVED_SEEDS, RESERVED_SEEDS + 1, RESERVED_SEEDS + 2)
    n: int = 200                      # prompts per scenario x layout (x2 option orders)
    layer: int | None = None
    component: str = "attn"
    loss: str | None = None
    pooling: str | None = None
    lr: float | None = None
    epochs: int | None = None
    capability_weight: float = 1.0    # the soo-capability arm's weight
    evaluation: str = "scenarios"     # the prompt suite: scenarios | organism-lm (its held-out rows)
    search_n: int = 25                # the search's prompts per block (its block 0 is avoided)
    search_seeds: tuple[int, ...] = ()

    positive = ("n", "search_n")

    def check(self) -> None:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms:
            raise ConfigError(f"unknown arm(s) {unknown or '(none given)'}; choose from "
                              f"{', '.join(ARMS)}")
        bad = [p for p in self.pair_sets if p not in PAIR_SETS]
        if bad or not self.pair_sets:
            raise ConfigError(f"unknown pair set(s) {bad or '(none given)'}; choose from "
                              f"{', '.join(PAIR_SETS)}")
        if not self.seeds:
            raise ConfigError("the ladder needs at least one training seed, e.g. --seeds 1000-1002")
        if "untuned" not in self.arms:
            raise ConfigError("every arm is compared with the untuned model on the same seed's "
                              "prompts; keep the arm 'untuned' in --arms")
        if self.recipe is not None:
            check_choice("recipe", self.recipe, RECIPES)
        for key, want in RECIPES.get(self.recipe, {}).items():
            given = getattr(self, key)
            if given is not None and given != want:
                raise ConfigError(f"recipe {self.recipe} sets {key} {want}, not {given}; drop "
                                  f"--{key} (or pass --recipe none to set it freely)")

        if self.evaluation not in SUITES:
            raise ConfigError(f"unknown evaluation {self.evaluation!r}; choose from "
                              f"{', '.join(SUITES)}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError("epochs must be >= 1")
        self._check_seeds()
        TrainConfig(**self.objective(), component=self.component,
                    capability_weight=self.capability_weight)  # bad values fail here

    def _check_seeds(self) -> None:
        if self.search_seeds:
            used = sorted(set(self.seeds) & set(self.search_seeds))
            if used:
                raise ConfigError(f"ladder seeds {used} were used by the search (its seeds "
                                  f"{list(self.search_seeds)}); give other seeds")
            return
        low = sorted(s for s in self.seeds if s < RESERVED_SEEDS)
        if low:
            raise ConfigError(f"ladder seeds {low} are below the reserved range (>= "
                              f"{RESERVED_SEEDS}) that no search uses by default; give seeds "
                              f">= {RESERVED_SEEDS}, or --exclude-from SEARCH_DIR to check them "
                              "against that search's seeds")

    def objective(self) -> dict[str, Any]:
        """The recipe's SOO loss, pooling, lr and epochs, explicit settings winning."""

        default = TrainConfig()
        recipe = RECIPES.get(self.recipe, {"loss": "mse", "pooling": default.pooling,
                                           "lr": default.lr, "epochs": default.epochs})
        return {k: recipe[k] if getattr(self, k) is None else getattr(self, k)
                for k in ("loss", "pooling", "lr", "epochs")}


def exclude_from(search_dir: str | Path) -> dict[str, Any]:
    """`search_seeds` and `search_n` of a search folder (finished or not), for `LadderConfig`."""
    path = Path(search_dir) / "search.json"
    if not path.is_file():
        raise ConfigError(f"--exclude-from {search_dir} is not a search folder (no search.json); "
                          "give the folder of a `soo-interp search` run")
    cfg = json.loads(path.read_text())["config"]
    return {"search_seeds": tuple(cfg["seeds"]), "search_n": int(cfg["n"])}


@dataclasses.dataclass(frozen=True)
class Rung:
    """One (arm, pair set, seed) of the ladder and the cell that computes it (arms may share a
    cell: `untuned` across pair sets, `soo-lora-all` with the recipe's plain arm)."""

    arm: str
    pair_set: str
    seed: int
    cell: Cell


def site_layer(cfg: LadderConfig, n_layers: int) -> int:
    """The trained (and read-out) layer: `cfg.layer`, negative from the end, or the default."""

    return parse_layers(default_layer(n_layers) if cfg.layer is None else cfg.layer, n_layers)[0]


def _arm_cell(arm: str, pair_set: str, seed: int, cfg: LadderConfig, layer: int) -> Cell:
    obj = cfg.objective()
    recipe = Cell("soo", layer, cfg.component, obj["loss"], seed, pooling=obj["pooling"],
                  pair_set=pair_set)
    cells = {
        "untuned": Cell("base", seed=seed),
        "sham-neutral": Cell("sham", seed=seed, pair_set=pair_set, sham_text="neutral"),
        "sham-exposure": Cell("sham", seed=seed, pair_set=pair_set),
        "soo-last": dataclasses.replace(recipe, loss="mse", pooling="last"),
        "soo-mean": dataclasses.replace(recipe, loss="mse", pooling="mean"),
        "soo-kl": dataclasses.replace(recipe, loss="kl_logits"),
        "soo-stopgrad": dataclasses.replace(recipe, stop_grad_self=True),
        "soo-capability": dataclasses.replace(recipe, capability_weight=cfg.capability_weight),
        "soo-lora-target": dataclasses.replace(recipe, lora_scope="target"),
        "soo-lora-all": recipe,
    }
    return cells[arm]


def plan_rungs(cfg: LadderConfig, n_layers: int) -> list[Rung]:
    """Every (arm, pair set, seed) in a fixed order: pair sets, then arms, then seeds."""
    layer = site_layer(cfg, n_layers)
    return [Rung(arm, ps, s, _arm_cell(arm, ps, s, cfg, layer))
            for ps in cfg.pair_sets for arm in cfg.arms for s in cfg.seeds]


def eval_block(cfg: LadderConfig, seed: int) -> int:
    """The prompt block of a seed: 1 + its rank among the ladder's seeds (block 0 is the
    search's)."""
    return 1 + sorted(cfg.seeds).index(seed)


def cell_tasks(model: str, rungs: Sequence[Rung], out: Path, cfg: LadderConfig,
               n_layers: int) -> list:
    """The engine's tasks, one per distinct cell, measured by `measure_ladder_cell`."""

    obj = cfg.objective()
    train = TrainConfig(layer=site_layer(cfg, n_layers), component=cfg.component,
                        pooling=obj["pooling"], lr=obj["lr"], epochs=obj["epochs"])
    cells = list(dict.fromkeys(r.cell for r in rungs))
    return [CellTask(str(out), c, model, {},
                     None if c.condition == "base" else c.train_config(train),
                     [] if c.pair_set is None else pair_set(c.pair_set), measure_ladder_cell,
                     {"n": cfg.n, "signatures": False, "measure": "ladder",
                      "suite": cfg.evaluation,
                      "eval_blocks": {str(c.seed): eval_block(cfg, c.seed)},
                      "eval_first": cfg.search_n}, cfg.to_dict()) for c in cells]


def measure_ladder_cell(lm: Any, base: Any, folder: Path, task: Any) -> None:
    """A ladder cell's outcomes: the search cell's (`outcomes.cell_frame`), the latent SOO over
    every linear module (`measure.linear_soo`, the original code's definition) and the dose
    (`training.plan.dose`: steps, tokens seen, forward passes per step; 0 untrained)."""

    got = dose(lm.tokenizer, task.pairs, task.train) if task.train is not None else \
        dict.fromkeys(DOSE, 0.0)
    rows = [{"metric": "linear_soo", "value": linear_soo(lm)}]
    rows += [{"metric": k, "value": v} for k, v in got.items()]
    extra = pd.DataFrame(rows).reindex(columns=OUTCOME_COLUMNS)
    write_outcomes(pd.concat([cell_frame(lm, base, task), extra], ignore_index=True), folder)


def rung_outcomes(out: Path, rungs: Sequence[Rung]) -> pd.DataFrame:
    """Every distinct cell's outcomes, with the cell's keys (`schema.cell_columns`) and
    `cell_id` as columns."""
    return load_outcomes(out, list(dict.fromkeys(r.cell for r in rungs)))


def runs_table(outcomes: pd.DataFrame, rungs: Sequence[Rung], layer: int,
               component: str) -> pd.DataFrame:
    """One row per (arm, pair set, seed): the rates and margins of `effects.cell_table`,
    perplexity ratio, damage and degeneration against the untuned model of the same seed (the
    same prompts), latent SOO and normalised overlap at the trained site, latent SOO over every
    linear module, and the dose."""

    cells = cell_table(outcomes).set_index("cell_id")
    at = outcomes[(outcomes.layer == layer) & (outcomes.component == component)]
    single = outcomes[outcomes.layer.isna() & outcomes.scenario.isna()]
    for col, metric, frame in (("latent_soo", "latent_soo", at), ("overlap", "normalised_soo", at),
                               *((m, m, single) for m in ("linear_soo", *DOSE))):
        cells[col] = frame[frame.metric == metric].set_index("cell_id").value
    base = {c.seed: cells.loc[c.name] for c in dict.fromkeys(r.cell for r in rungs)
            if c.condition == "base"}
    keep = ["n_prompts", *OUTCOMES[:-1], "kl_to_base", *DOSE]
    rows = pd.DataFrame([{"arm": r.arm, "pair_set": r.pair_set, "seed": r.seed,
                          "cell_id": r.cell.name, **cells.loc[r.cell.name].reindex(keep).to_dict()}
                         for r in rungs if r.cell.name in cells.index])
    frames = []
    for seed, g in rows.groupby("seed", sort=False):
        g = g.copy()
        b = base[seed].copy()
        g["perplexity_ratio"] = g.perplexity / b.perplexity
        b["perplexity_ratio"] = 1.0
        g["damage"] = damage_of(g, b)
        g["degenerate"] = degenerate_of(g, b)
        frames.append(g)
    return pd.concat(frames).sort_index().reset_index(drop=True)


def ladder_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: per pair set, arm and outcome the mean over seeds and its 95% interval
    (rates: bootstrap over seeds and prompts, never [0, 0] on a finite sample; the rest: t over
    seeds), the number of seeds and, as outcome `degenerate_seeds`, how many were flagged;
    the dose (equal across seeds) as its mean."""

    rows = []
    for (ps, arm), g in runs.groupby(["pair_set", "arm"], sort=False):
        where = {"pair_set": ps, "arm": arm, "n_seeds": len(g)}
        for out in OUTCOMES:
            rate = out if out in RATES else "not-a-rate"
            mean, lo, hi = outcome_interval(g, out, "n_prompts", rate)
            rows.append({**where, "outcome": out, "mean": mean, "ci_low": lo, "ci_high": hi})
        rows.append({**where, "outcome": "degenerate_seeds", "mean": float(g.degenerate.sum())})
        rows += [{**where, "outcome": d, "mean": float(g[d].mean())} for d in DOSE]
    return pd.DataFrame(rows)


def answer(runs: pd.DataFrame) -> pd.DataFrame:
    """The question, computed: per pair set and SOO arm, the deception cut beyond the
    scenario-exposure sham (sham minus SOO, paired by seed, both layouts) and beyond the
    untuned model, with intervals (`stats.difference_interval`), the damage (mean and t-interval
    over seeds), the degenerate seeds, and `beats_sham_without_damage`: the cut's interval
    above 0 in both description layouts (a cut in one layout only is a position flip), mean
    damage at most `effects.BAR_DAMAGE` and no degenerate seed."""

    rows = []
    for ps, g in runs.groupby("pair_set", sort=False):
        by = {arm: a.set_index("seed") for arm, a in g.groupby("arm")}
        for arm in [a for a in SOO_ARMS if a in by]:
            soo = by[arm]
            row: dict[str, Any] = {"pair_set": ps, "arm": arm, "n_seeds": len(soo)}
            for ref in ("sham-exposure", "untuned"):
                if ref not in by:
                    continue
                other = by[ref].loc[soo.index]
                for col, name in (("deception", ""), ("deception_honest_first", "_honest_first")):
                    m, lo, hi = difference_interval(other[col], other.n_prompts.astype(int),
                                                    soo[col], soo.n_prompts.astype(int))
                    key = f"cut_vs_{ref.replace('-', '_')}{name}"
                    row |= {key: m, f"{key}.ci_low": lo, f"{key}.ci_high": hi}
            d = mean_interval(soo.damage)
            row |= {"damage": d[0], "damage.ci_low": d[1], "damage.ci_high": d[2],
                    "degenerate_seeds": int(soo.degenerate.sum())}
            row["beats_sham_without_damage"] = bool(
                "cut_vs_sham_exposure" in row and row["cut_vs_sham_exposure.ci_low"] > 0
                and row["cut_vs_sham_exposure_honest_first.ci_low"] > 0
                and row["damage"] <= BAR_DAMAGE and row["degenerate_seeds"] == 0)
            rows.append(row)
    return pd.DataFrame(rows)


def ladder(model: Any, config: LadderConfig | None = None, *, out: str | Path,
           executor: Any = None, progress: bool = True, **overrides: Any) -> pd.DataFrame:
    """Run every arm's cells not finished under `out/cells/` (see module doc) and return the
    long table (`ladder_table`). Writes `outcomes.parquet` (every cell), `runs.csv` (per arm,
    pair set and seed: what every mean is computed from), `table.csv`, `answer.csv`,
    `report.md`, `run.json` (every setting, the recipe resolved) and, last, `ladder.json`
    with status `complete`. Resumable: rerun with the same arguments; a later run in the same
    `out` may name other arms or pair sets (finished cells are reused, the report covers the
    arms and pair sets of the latest run). `model`: a name or path
    (workers load it) or a model object (cells then run in this process); `executor`: a
    `soo_interp.executors.Executor` (default: local worker processes)."""

    cfg = LadderConfig.with_overrides(config, **overrides)
    out = Path(out)
    name, n_layers, lm = resolve_model(model)
    rungs = plan_rungs(cfg, n_layers)  # bad layers fail before anything is written
    check_prompt_space(cfg.evaluation, cfg.n, len(cfg.seeds), cfg.search_n)
    layer = site_layer(cfg, n_layers)
    start_run(out, "ladder", name, cfg.to_dict(), lm, extendable=("arms", "pair_sets"))
    tasks = cell_tasks(name, rungs, out, cfg, n_layers)
    run_cells(tasks, lm, executor, progress).check()
    table = write_results(out, rung_outcomes(out, rungs), cfg,
                          run_settings(cfg, name, layer, tasks))
    status = json.loads((out / STATUS).read_text()) | {"status": "complete", "cells": len(tasks)}
    atomic_write_json(out / STATUS, status)
    return table


def write_results(out: Path, outcomes: pd.DataFrame, cfg: LadderConfig, settings: dict,
                  **extra: Any) -> pd.DataFrame:
    """Write a ladder's outcomes.parquet, runs.csv, table.csv, answer.csv, report.md and
    run.json (`settings` from `run_settings`, plus `extra`) from its cells' outcomes; return
    the long table."""
    layer, component = settings["site"]["layer"], settings["site"]["component"]
    rungs = plan_rungs(dataclasses.replace(cfg, layer=layer), layer + 1)
    runs, table, ans = results(outcomes, rungs, layer, component)
    with atomic_path(out / "outcomes.parquet") as tmp:
        outcomes.to_parquet(tmp, index=False)
    for fname, df in (("runs.csv", runs), ("table.csv", table), ("answer.csv", ans)):
        with atomic_path(out / fname) as tmp:
            df.to_csv(tmp, index=False)
    atomic_write_text(out / "report.md", ladder_markdown(table, ans, settings))
    write_run_json(out, cfg.to_dict(), cfg.seeds[0], **settings, **extra)
    return table


# a cell computed twice (the untuned cells of two ladders) agrees to this relative tolerance:
# float32 sums in another thread layout move perplexity and SOO by ~4e-6 relative; rates match
POOL_RTOL = 1e-4
# what finished ladders must share to be combined (arms and pair sets may differ)
SHARED = ("recipe", "seeds", "n", "component", "loss", "pooling", "lr", "epochs",
          "capability_weight", "evaluation", "search_n", "search_seeds")


def combine_ladders(folders: Sequence[str | Path], out: str | Path,
                    overwrite: bool = False) -> pd.DataFrame:
    """One ladder from finished ladders of the same model, recipe, seeds, prompts and site that
    ran different arms or pair sets (e.g. on two machines, or in two sessions): their cells'
    outcomes are pooled (a cell that several ran must agree to `POOL_RTOL`, else the folders
    are refused). The weights are checked by the untuned cells every ladder holds for each
    seed: the model the arms train from, scored on the same prompts, must give the same
    numbers in every folder (a file fingerprint alone would also differ for a card edit, or
    for the same weights in another file layout); each folder's fingerprint is recorded. The
    report is written to `out` as `ladder` writes it, with `combined_from` (each folder's
    command, arms, pair sets and fingerprint) in run.json. Needs only each folder's
    outcomes.parquet, run.json and ladder.json (a committed report is enough); `out` is
    written all or nothing. Returns the long table."""
    from ..runs import output_dir

    if len(folders) < 2:
        raise ConfigError("combining needs at least two finished ladder folders")
    metas, statuses, frames = [], [], []
    for f in map(Path, folders):
        files = [f / n for n in (STATUS, "run.json", "outcomes.parquet")]
        if not all(p.is_file() for p in files):
            raise ConfigError(f"{f} is not a finished ladder (it needs {STATUS}, run.json and "
                              "outcomes.parquet); finish it by rerunning its ladder command")
        status = json.loads(files[0].read_text())
        if status.get("status") != "complete":
            raise ConfigError(f"{f} is an unfinished ladder; rerun its ladder command first")
        statuses.append(status)
        metas.append(json.loads(files[1].read_text()))
        frames.append(pd.read_parquet(files[2]))
    first = metas[0]
    for f, meta in zip(folders[1:], metas[1:]):
        differ = [k for k in SHARED if meta["config"].get(k) != first["config"].get(k)]
        differ += [k for k in ("model", "site") if meta[k] != first[k]]
        if differ:
            raise ConfigError(f"{f} differs from {folders[0]} in {', '.join(differ)}; only "
                              "ladders that differ in their arms or pair sets can be combined")
    untuned = {Cell("base", seed=seed).name for seed in first["config"]["seeds"]}
    for f, frame in zip(folders, frames):
        if not untuned <= set(frame.cell_id):
            raise ConfigError(f"{f} lacks untuned cells {sorted(untuned - set(frame.cell_id))}; "
                              "every ladder scores the untuned model on each seed's prompts")
    outcomes = _pool_cells(frames, folders)  # the untuned cells agree: the same model
    cfg = LadderConfig.from_dict(first["config"] | {
        "arms": [a for a in ARMS if any(a in m["config"]["arms"] for m in metas)],
        "pair_sets": [p for p in PAIR_SETS if any(p in m["config"]["pair_sets"] for m in metas)]})
    settings = {k: first[k] for k in RUN_SETTINGS} | {
        "cells": {k: v for m in metas for k, v in m["cells"].items()}}
    sources = [{"folder": str(f), "command": m.get("command"), "arms": m["config"]["arms"],
                "pair_sets": m["config"]["pair_sets"], "model_fingerprint": st.get("model_fingerprint")}
               for f, m, st in zip(folders, metas, statuses)]
    with output_dir(out, overwrite, kind="ladder") as tmp:
        table = write_results(tmp, outcomes, cfg, settings, combined_from=sources)
        atomic_write_json(tmp / STATUS, statuses[0] | {
            "config": cfg.to_dict(), "status": "complete", "cells": len(settings["cells"]),
            "combined_from": [s["folder"] for s in sources],
            "model_fingerprints": list(dict.fromkeys(s["model_fingerprint"] for s in sources))})
    return table


def _pool_cells(frames: Sequence[pd.DataFrame], folders: Sequence[str | Path]) -> pd.DataFrame:
    """The union of the folders' cells (the first folder's copy of a cell several hold); a
    cell in several folders must hold the same values up to float reduction order."""
    import numpy as np

    seen: dict[str, tuple[int, pd.DataFrame]] = {}
    keep = []
    for i, frame in enumerate(frames):
        for cell_id, g in frame.groupby("cell_id", sort=False):
            if cell_id not in seen:
                seen[cell_id] = (i, g)
                keep.append(g)
                continue
            j, other = seen[cell_id]
            a, b = (x.sort_values(["metric", "scenario", "layout", "layer", "component"])
                    for x in (g, other))
            if len(a) != len(b) or not np.allclose(a.value.to_numpy(float),
                                                   b.value.to_numpy(float), rtol=POOL_RTOL,
                                                   atol=1e-6, equal_nan=True):
                raise ConfigError(f"cell {cell_id} has other values in {folders[i]} than in "
                                  f"{folders[j]} (other code or weights?); combine ladders "
                                  "run with the same code and model")
    return pd.concat(keep, ignore_index=True)


def results(outcomes: pd.DataFrame, rungs: Sequence[Rung], layer: int,
            component: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(runs, table, answer) from the cells' outcomes: what `ladder` writes to runs.csv,
    table.csv and answer.csv."""
    runs = runs_table(outcomes, rungs, layer, component)
    return runs, ladder_table(runs), answer(runs)


def recompute(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(runs, table, answer, report markdown) of a finished ladder folder, recomputed from its
    `outcomes.parquet` (every cell's per-seed outcomes) and `run.json` alone: a committed
    report can be checked, or re-analysed, without the cells or the model."""
    folder = Path(folder)
    meta = json.loads((folder / "run.json").read_text())
    cfg = LadderConfig.from_dict(meta["config"])
    layer = int(meta["site"]["layer"])
    rungs = plan_rungs(dataclasses.replace(cfg, layer=layer), layer + 1)
    runs, table, ans = results(pd.read_parquet(folder / "outcomes.parquet"), rungs, layer,
                               meta["site"]["component"])
    settings = {k: meta[k] for k in RUN_SETTINGS}
    return runs, table, ans, ladder_markdown(table, ans, settings)


RUN_SETTINGS = ("model", "recipe", "objective", "site", "seed_policy", "eval_blocks",
                "eval_prompts", "cells")  # what run_settings gives, and run.json records


def run_settings(cfg: LadderConfig, model: str, layer: int, tasks: Sequence[Any]) -> dict:
    """What run.json records beside the config: the model, the resolved recipe and site, the
    seed policy, each seed's prompt block and each cell's full training config."""
    return {"model": model, "recipe": cfg.recipe, "objective": cfg.objective(),
            "site": {"layer": layer, "component": cfg.component},
            "seed_policy": (f"seeds not used by the search (its seeds {list(cfg.search_seeds)})"
                            if cfg.search_seeds else f"reserved range >= {RESERVED_SEEDS}"),
            "eval_blocks": {str(s): eval_block(cfg, s) for s in cfg.seeds},
            "eval_prompts": f"{cfg.evaluation} prompts, block k of n={cfg.n} per scenario and "
                            f"layout (both option orders), after the search's first {cfg.search_n}",
            "cells": {t.cell.name: (None if t.train is None else t.train.to_dict())
                      for t in tasks}}


def _cell(m: float, lo: float | None, hi: float | None, pct: bool) -> str:
    if pd.isna(m):
        return "-"
    k = 100 if pct else 1
    fmt = ".1f" if pct else ".0f" if abs(m) >= 100 else ".3g"
    if lo is None or pd.isna(lo):
        return f"{m * k:{fmt}}"
    return f"{m * k:{fmt}} [{lo * k:{fmt}}, {hi * k:{fmt}}]"


SHOWN = {"deception": "deception", "deception_honest_first": "deception (honest first)",
         "wrong_self": "wrong to self", "wrong_friend": "wrong to friend",
         "wrong_self_honest_first": "wrong to self (honest first)",
         "wrong_friend_honest_first": "wrong to friend (honest first)",
         "wrong_location": "wrong location", "wrong_perspectives": "wrong Perspectives",
         "margin": "margin (nats)", "perplexity_ratio": "perplexity ratio",
         "latent_soo": "latent SOO at site", "overlap": "normalised overlap at site",
         "linear_soo": "latent SOO, every linear", "damage": "damage",
         "degenerate_seeds": "degenerate seeds", "steps": "steps", "tokens_seen": "tokens seen",
         "forward_passes_per_step": "forwards / step"}


def ladder_markdown(table: pd.DataFrame, ans: pd.DataFrame, settings: dict) -> str:
    """The ladder in words and tables: the answer first (computed in `answer`), then per pair
    set one row per arm, each cell "mean [95% CI]" (rates and damage in points)."""

    obj = settings["objective"]
    lines = [f"# SOO control ladder on {settings['model']}", "",
             f"Recipe {settings['recipe'] or 'none'}: SOO loss {obj['loss']} ({obj['pooling']} "
             f"pooling) at layer {settings['site']['layer']} {settings['site']['component']}, "
             f"lr {obj['lr']:g}, {obj['epochs']} epochs; seeds by {settings['seed_policy']}; "
             f"{settings['eval_prompts']}.", "", "## Does SOO beat the scenario-exposure sham "
             "without damage?", ""]
    for r in ans.to_dict("records"):
        if "cut_vs_sham_exposure" not in r or pd.isna(r.get("cut_vs_sham_exposure")):
            lines.append(f"- {r['arm']} ({PAIR_SET_LABELS.get(r['pair_set'], r['pair_set'])}): "
                         "no scenario-exposure sham in this ladder")
            continue
        verdict = "YES" if r["beats_sham_without_damage"] else "no"
        cut = lambda k: _cell(r[k], r[f"{k}.ci_low"], r[f"{k}.ci_high"], True)  # noqa: E731
        lines.append(
            f"- {r['arm']} ({PAIR_SET_LABELS.get(r['pair_set'], r['pair_set'])}): **{verdict}**: "
            f"cut beyond the sham {cut('cut_vs_sham_exposure')} points (honest-first layout "
            f"{cut('cut_vs_sham_exposure_honest_first')}), beyond untuned "
            f"{cut('cut_vs_untuned')}; damage {cut('damage')} points (bar "
            f"{BAR_DAMAGE * 100:.0f}), {r['degenerate_seeds']} of {r['n_seeds']} seeds "
            "degenerate")
    pct = set(RATES) | {"damage"}
    for ps, g in table.groupby("pair_set", sort=False):
        g = g[g.outcome.isin(SHOWN)].copy()
        g["shown"] = [_cell(m, lo, hi, o in pct) for m, lo, hi, o in
                      zip(g["mean"], g.ci_low, g.ci_high, g.outcome)]
        wide = g.pivot_table(index="arm", columns="outcome", values="shown", aggfunc="first",
                             sort=False)
        wide = wide[[o for o in SHOWN if o in wide.columns]].rename(columns=SHOWN)
        lines += ["", f"## {PAIR_SET_LABELS.get(ps, ps)} ({ps})", "",
                  wide.reset_index().to_markdown(index=False)]
    lines += ["", "Rates and damage in points, 95% intervals over seeds and prompts (rates: "
              "two-level bootstrap widened to the pooled Wilson interval; the rest: t over "
              "seeds). Damage: the worst rise over the untuned model of the same seed's prompts "
              "of the wrong-answer rates (self and friend in both layouts, location, "
              "Perspectives) and of perplexity (ratio - 1). Per-seed values: runs.csv."]
    return "\n".join(lines) + "\n"
