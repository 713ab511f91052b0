"""The protocol's report: summary tables (CSV), figures and `report.md`, read from the folders
`rl train`, `rl value` and `rl finetune` wrote (`rl value`/`rl finetune` are optional)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..runs import atomic_path, atomic_write_text, output_dir
from ..stats import summarize
from .model_stats import class_tests, signflip_test, within_base_interval
from .plots import behaviour_plot, model_points_plot, soo_value_plot, training_plot
from .protocol import find_runs
from .soo_value import classification_summary
from .traps import KINDS, class_pairs, trap_table

FIGURES = {"soo_value": "rl_soo_value.png", "behaviour": "rl_behaviour.png",
           "training": "rl_training.png", "models": "rl_models.png", "traps": "rl_traps.png"}
BEHAVIOUR = ("trap_rate", "trap_following_rate", "lead_fake_rate", "blue_goal_rate",
             "red_goal_rate", "eligible_fraction", "near_red_rate", "blue_return")
TESTED = ("trap_rate", "trap_following_rate", "lead_fake_rate", "blue_goal_rate",
          "eligible_fraction", "soo_value_own", "soo_value_shared")
KEPT = ("near_red_rate", "blue_return", "blue_goal_rate", "trap_rate", "red_sensitivity")
CONTRASTS = (("soo", "base"), ("plain", "base"), ("sham", "base"), ("soo", "plain"),
             ("soo", "sham"))


def _md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3f")


def training_summary(runs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(logs, summary): every run's log, and its last 10% of rounds averaged."""
    logs = pd.concat([pd.read_csv(p / "log.csv").assign(model=p.name) for p in runs])
    tail = logs[logs["round"] >= (0.9 * logs.groupby("model")["round"].transform("size")).astype(int)]
    cols = ["return_blue", "return_red", "trap_rate", "blue_goal_rate"]
    summary = tail.groupby(["model", "baseline", "seed"])[cols].mean().reset_index()
    summary.insert(3, "episodes", summary["model"].map(logs.groupby("model")["episodes"].max()))
    return logs, summary


def model_table(folder: Path) -> pd.DataFrame:
    """One row per (model, metric) of a `rl value` folder: behaviour and SOO values (own and
    shared states), mean over evaluation seeds with a 95% t-interval."""
    keys = ["model", "baseline", "seed", "train_episodes", "eval_seed"]
    states = pd.read_csv(folder / "states.csv")
    values = pd.read_csv(folder / "value.csv")
    values = values.assign(metric="soo_value_" + values["states"], value=values["soo_value"])
    present = [m for m in BEHAVIOUR if m in states.columns]
    long = pd.concat([states.melt(id_vars=keys, value_vars=present, var_name="metric"),
                      values[keys + ["metric", "value"]]], ignore_index=True)
    return summarize(long, by=("model", "baseline", "seed", "train_episodes", "metric"))


def model_means(table: pd.DataFrame) -> pd.DataFrame:
    """`model_table` as one row per model, one column per metric (the means)."""
    wide = table.pivot_table(index=["model", "baseline", "seed", "train_episodes"],
                             columns="metric", values="mean")
    return wide.reset_index().rename_axis(columns=None)


def model_sections(runs: Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """Per-model behaviour and SOO value, and the model-level tests (deception first, then
    classification), at every training length that has a `value*` folder."""
    folders = sorted(p.parent for p in runs.glob("value*/states.csv"))
    tables = pd.concat([model_table(f) for f in folders], ignore_index=True)
    means = model_means(tables)
    final = means["train_episodes"].max()
    tests = class_tests(means, [m for m in TESTED if m in means.columns], by=["train_episodes"])
    at_end = tests[tests["train_episodes"] == final].drop(columns="train_episodes")
    lines = [
        f"## Model-level statistics ({final} episodes)", "",
        ("The unit is the trained model. Per model: mean over evaluation seeds (each of fresh "
         "episodes) with 95% t-intervals in `models.csv`. `lead_fake_rate`: share of episodes in"
         " which blue comes within 0.16 of the fake landmark with red within its sight (leading "
         "a following red there); `trap_following_rate`: share of episodes in which red is "
         "trapped while within sight of blue (following it). Tests: `diff` = mean of deceptive "
         "models - mean of honest models, `p_diff` its one-sided exact permutation p over which "
         "models carry the deceptive label (deceptive higher); `loo_accuracy` = leave-one-model-"
         "out accuracy of a nearest-class-mean rule on that value (its direction learned without"
         " the held-out model, chance 0.5), `p_loo` its exact permutation p."), "",
        _md(means[means["train_episodes"] == final]), "", _md(at_end), "",
        "## Accuracy vs training episodes (snapshots of the same runs)", "",
        _md(tests[["train_episodes", "metric", "n_deceptive", "n_honest", "diff", "p_diff",
                   "loo_accuracy", "p_loo"]]), ""]
    return lines, {"models": tables, "model_means": means, "model_tests": tests}


# not trap_spawn: every model plays the same evaluation episodes, so it is the same for all
TRAP_TESTED = ("trap_rate", *KINDS[1:], "trap_rate_as_blue", "trap_rate_as_red")


def trap_sections(folder: Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """How red gets trapped: per-model kinds of trap and cross-play, with model-level tests."""
    play = pd.read_csv(folder / "traps.csv")
    cfg = json.loads((folder / "run.json").read_text())["config"]
    table = summarize(trap_table(play), by=("model", "baseline", "metric"))
    means = table.pivot_table(index=["model", "baseline"], columns="metric", values="mean")
    means = means.reset_index().rename_axis(columns=None)
    tests = class_tests(means, list(TRAP_TESTED))
    lines = [
        "## How red gets trapped", "",
        (f"`rl traps`: {cfg['eval_seeds']} x {cfg['episodes']} evaluation episodes per pair of "
         "models. Each trap by red's contact with blue before it: `trap_spawn` (red spawned on the "
         "fake landmark), `trap_in_sight` (blue within red's sight at the trap: led there), "
         f"`trap_after_contact` (blue lost from sight 1-{cfg['recent']} steps before: led part of "
         f"the way, then let go), `trap_alone` (more than {cfg['recent']} steps after); they add "
         "up to `trap_rate`. Cross-play: every model's blue with every other model's red on the "
         "same episodes; `trap_rate_as_blue` = a model's blue with all other reds (mean), "
         "`trap_rate_as_red` = its red with all other blues. Red is trained alongside blue, so a "
         "class difference in `trap_rate_as_red` is red's part of the trap-rate difference, one in "
         "`trap_rate_as_blue` blue's. Tests as above (exact permutation over models; partners "
         "are shared, so the cross-play tests are descriptive of these models)."), "",
        _md(means), "", _md(tests), "",
        "Mean over cross-play pairs by class (own play left out):", "",
        _md(class_pairs(play)), ""]
    return lines, {"traps": table, "trap_tests": tests}


def finetune_tests(res: pd.DataFrame) -> pd.DataFrame:
    """Exact sign-flip tests over models of each condition's change (per model, means over
    evaluation seeds), for each metric and contrast in CONTRASTS."""
    per = res.groupby(["model", "condition", "metric"])["value"].mean().unstack("condition")
    rows = []
    for metric, d in per.groupby(level="metric"):
        for a, b in CONTRASTS:
            if {a, b} <= set(d.columns):
                diff = (d[a] - d[b]).dropna()
                rows.append({"metric": metric, "contrast": f"{a} - {b}",
                             **signflip_test(diff.to_numpy())})
    return pd.DataFrame(rows)


def value_sections(folder: Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    values = pd.read_csv(folder / "value.csv")
    pairs = pd.read_csv(folder / "value_pairs.csv")
    states = pd.read_csv(folder / "states.csv")
    per_model = summarize(values.rename(columns={"soo_value": "value"}),
                          by=("states", "model", "baseline"))
    cls = classification_summary(pairs)
    conf = states.drop(columns=["eval_seed"]).groupby(["model", "baseline", "seed"]).mean()
    conf = conf.reset_index()
    lines = [
        "## SOO value per model", "",
        ("Mean over evaluation seeds with 95% t-intervals; `own` = each model's own eligible "
         "steps (red out of sight), `shared` = one pool of every model's eligible states."), "",
        _md(per_model[["states", "model", "baseline", "mean", "ci_low", "ci_high", "n"]]), "",
        "## Classification across independent training seeds, with same-kind controls", "",
        ("`first_higher`: share of (pair, eval seed) where the first model's value is higher "
         "(for deceptive-honest: the paper's accuracy, 0.5 = chance). `consistency` = "
         "max(f, 1 - f): how reliably the value tells the two networks apart in *some* "
         "direction; if deceptive-deceptive and honest-honest pairs are as consistent as "
         "deceptive-honest ones, the value separates networks, not kinds. "
         "`mean_first_higher`: share of pairs whose mean difference is positive."), "",
        _md(cls), "",
        "## Confound check: states of eligible steps, and behaviour, per model", "",
        _md(conf), "",
    ]
    return lines, {"values": values, "value_summary": per_model, "classification": cls,
                   "states_summary": conf}


def finetune_sections(folder: Path, values: pd.DataFrame | None) -> tuple[list[str], dict]:
    res = pd.read_csv(folder / "finetune.csv")
    wide = res.groupby(["model", "condition", "metric"])["value"].mean().unstack("metric")
    wide = wide.reset_index()
    base = wide[wide["condition"] == "base"].set_index("model")
    delta = wide[wide["condition"] != "base"].set_index("model")
    cols = [c for c in wide.columns if c not in ("model", "condition")]
    delta[cols] = delta[cols] - base.loc[delta.index, cols]
    cfg = json.loads((folder / "run.json").read_text())["config"]
    lines = ["## SOO fine-tuning vs sham (deceptive runs)", "",
             f"Settings: {json.dumps({k: v for k, v in cfg.items() if k != 'runs'})}.", "",
             "Means over evaluation seeds:", "", _md(wide), "",
             "Change from base:", "", _md(delta.reset_index()), ""]
    if values is not None:
        own = values[values["states"] == "own"].groupby("baseline")["soo_value"].mean()
        if {"deceptive", "honest"} <= set(own.index):
            gap = own["honest"] - own["deceptive"]
            lines += [f"Reference: mean SOO value gap honest - deceptive (own states) = {gap:.3f}.",
                      ""]
    ci = summarize(res, by=("metric", "model", "condition"))
    tests = finetune_tests(res)
    kept = within_base_interval(ci, list(KEPT))
    counts = pd.crosstab([kept["metric"], kept["condition"]], kept["position"]).reset_index()
    lines += ["Model-level tests (exact sign-flip over models of the per-model change):", "",
              _md(tests), "",
              ("Kept within the baseline's interval? Per model, the tuned policy's mean against "
               "the base policy's 95% t-interval over evaluation seeds (`within_base.csv`); "
               "`near_red_rate` is the control task's reward rate (keep_close variant). "
               "Models per position:"), "", _md(counts), "",
              _md(kept[kept["metric"] == "near_red_rate"]), ""]
    return lines, {"finetune": res, "finetune_summary": wide, "finetune_ci": ci,
                   "finetune_tests": tests, "within_base": kept}


def write_report(runs: str | Path, figures: str | Path | None = None) -> Path:
    """Write RUNS/report/ (report.md, summary CSVs, figures); copies the figures into
    `figures` too when given (for the README). Returns the report folder."""
    runs = Path(runs)
    found = find_runs(runs)
    logs, train = training_summary(found)
    lines = ["# Physical Deception: SOO value and SOO fine-tuning", "",
             f"Runs under `{runs}`. Training (last 10% of rounds):", "", _md(train), ""]
    tables, figs = {"training_summary": train}, {"training": training_plot(logs)}
    if (runs / "value" / "value.csv").exists():
        more, t = value_sections(runs / "value")
        lines += more
        tables.update(t)
        figs["soo_value"] = soo_value_plot(t["value_summary"])
        more, t = model_sections(runs)
        lines += more
        tables.update(t)
        figs["models"] = model_points_plot(t["models"], t["model_means"]["train_episodes"].max())
    if (runs / "traps" / "traps.csv").exists():
        more, t = trap_sections(runs / "traps")
        lines += more
        tables.update(t)
        figs["traps"] = model_points_plot(t["traps"], None, ("trap_in_sight", "trap_after_contact",
                                                             "trap_alone", "trap_rate_as_blue",
                                                             "trap_rate_as_red"))
    if (runs / "finetune" / "finetune.csv").exists():
        more, t = finetune_sections(runs / "finetune", tables.get("values"))
        lines += more
        tables.update(t)
        shown = set(t["finetune_ci"]["metric"])
        figs["behaviour"] = behaviour_plot(t["finetune_ci"], [
            m for m in ("trap_rate", "blue_goal_rate", "near_red_rate", "red_sensitivity",
                        "soo_value") if m in shown])
    with output_dir(runs / "report", overwrite=True, kind="rl-report") as tmp:
        for name in ("training_summary", "value_summary", "classification", "states_summary",
                     "finetune_summary", "finetune_ci", "models", "model_tests", "finetune_tests",
                     "within_base", "traps", "trap_tests"):
            if name in tables:
                tables[name].to_csv(tmp / f"{name}.csv", index=False)
        for key, fig in figs.items():
            fig.savefig(tmp / FIGURES[key], dpi=110)
            if figures is not None:
                with atomic_path(Path(figures) / FIGURES[key]) as f:
                    fig.savefig(f, dpi=110)
        lines += [f"![{k}]({FIGURES[k]})" for k in figs]
        atomic_write_text(tmp / "report.md", "\n".join(lines) + "\n")
    return runs / "report"
