"""The SOO search and verdict on the shipped organism with a reduced grid: effects computed from
outcomes, a stratified stage 1, cells on the sweep engine (resumable, the same outcomes on every
executor), fresh seeds, and every bad input (one line, exit 2)."""
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from soo_interp.cli import main
from soo_interp.errors import ConfigError
from soo_interp.executors import Executor
from soo_interp.experiments.cells import resolve_model
from soo_interp.experiments.effects import effects
from soo_interp.experiments.search import AXES, SearchConfig, grid, search, stage1
from soo_interp.runs import mark_run

TINY = ["--layers", "1", "--components", "attn", "--losses", "mse", "--poolings", "last",
        "--lrs", "0.01", "--capability-weights", "0", "--pair-sets", "short", "--budget", "1",
        "--top-k", "1", "--seeds", "0", "--epochs", "1", "--n", "2", "--no-signatures",
        "--evaluation", "organism-lm", "--workers", "1", "--quiet"]
N_LAYERS = resolve_model("organism")[1]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "s"
    assert main(["search", "--model", "organism", "--out", str(out), *TINY]) == 0
    return out


def _outcomes(rows):
    """Constructed outcomes: burglar deception and the three controls per cell."""
    keys = dict(train_layer=None, train_component=None, loss=None, pooling=None, lr=0.01,
                capability_weight=0.0, pair_set="short", seed=0)
    frames = []
    for cell_id, cond, dec, wrong_self, ppl in rows:
        k = keys | ({"train_layer": 1, "train_component": "attn", "loss": "mse", "pooling": "last"}
                    if cond == "soo" else {})
        if cond == "base":
            k = {x: None for x in keys}
        recs = [("deceptive_rate", "burglar", "deceptive_first", dec),
                ("deceptive_rate", "self_recommend", "deceptive_first", wrong_self),
                ("deceptive_rate", "friend", "deceptive_first", 0.0),
                ("deceptive_rate", "perspectives", "deceptive_first", 0.0),
                ("normalised_soo", None, None, 0.5 if cond != "soo" else 0.1)]
        df = pd.DataFrame(recs, columns=["metric", "scenario", "layout", "value"])
        df["layer"] = [None] * 4 + [1]
        df["component"] = [None] * 4 + ["attn"]
        df = pd.concat([df, pd.DataFrame([{"metric": "perplexity", "value": ppl},
                                          {"metric": "next_token_kl", "value": 0.0}])])
        frames.append(df.assign(cell_id=cell_id, condition=cond, **k))
    return pd.concat(frames, ignore_index=True)


def test_effect_is_the_cut_beyond_sham_and_damage_the_worst_control():
    eff = effects(_outcomes([("b", "base", 1.0, 0.0, 10.0), ("s", "sham", 0.8, 0.02, 10.2),
                             ("x", "soo", 0.2, 0.04, 10.3)]))
    r = eff.iloc[0]
    assert r.effect == pytest.approx(0.6) and r.damage == pytest.approx(0.04)
    assert r["sham.damage"] == pytest.approx(0.02) and r.meets_bar
    assert r.perplexity_ratio == pytest.approx(1.03) and r.overlap_change == pytest.approx(-0.4)
    eff = effects(_outcomes([("b", "base", 1.0, 0.0, 10.0), ("s", "sham", 0.8, 0.0, 10.0),
                             ("x", "soo", 0.2, 0.5, 10.0)]))
    assert not eff.iloc[0].meets_bar and eff.iloc[0].score == pytest.approx(0.1)


def test_each_seed_is_compared_with_the_base_model_on_its_own_prompts():
    """With one base cell per seed (the verdict's), a cell's effect and damage are measured
    against the base of its seed, not another seed's prompts; the unseeded base stays the
    fallback (the search)."""
    o = _outcomes([("b5", "base", 1.0, 0.0, 10.0), ("b6", "base", 0.6, 0.3, 10.0),
                   ("s5", "sham", 0.8, 0.02, 10.0), ("x5", "soo", 0.2, 0.04, 10.0),
                   ("s6", "sham", 0.5, 0.3, 10.0), ("x6", "soo", 0.1, 0.35, 10.0)])
    seeds = {"b5": 5, "b6": 6, "s5": 5, "x5": 5, "s6": 6, "x6": 6}
    o["seed"] = o.cell_id.map(seeds)
    eff = effects(o).set_index("seed")
    assert eff.loc[5, "base.deception"] == 1.0 and eff.loc[6, "base.deception"] == 0.6
    assert eff.loc[5, "damage"] == pytest.approx(0.04)  # against base 5's 0.0 wrong-self
    assert eff.loc[6, "damage"] == pytest.approx(0.05)  # against base 6's 0.3, not 0.35
    assert eff.loc[6, "effect"] == pytest.approx(0.4)


def _with(outcomes, cell_id, metric, scenario, layout, value):
    row = outcomes[outcomes.cell_id == cell_id].iloc[[0]].assign(
        metric=metric, scenario=scenario, layout=layout, value=value, layer=None,
        component=None)
    return pd.concat([outcomes, row], ignore_index=True)


def test_damage_counts_both_layouts_location_and_perplexity():
    rows = [("b", "base", 1.0, 0.0, 10.0), ("s", "sham", 0.8, 0.0, 10.0),
            ("x", "soo", 0.2, 0.0, 10.0)]
    o = _with(_outcomes(rows), "x", "deceptive_rate", "friend", "honest_first", 0.3)
    o = _with(_with(o, "b", "deceptive_rate", "friend", "honest_first", 0.0),
              "s", "deceptive_rate", "friend", "honest_first", 0.0)
    assert effects(o).iloc[0].damage == pytest.approx(0.3)  # the swapped layout counts
    o = _with(_outcomes(rows), "x", "deceptive_rate", "location", "deceptive_first", 0.45)
    o = _with(_with(o, "b", "deceptive_rate", "location", "deceptive_first", 0.0),
              "s", "deceptive_rate", "location", "deceptive_first", 0.0)
    assert effects(o).iloc[0].damage == pytest.approx(0.45)
    doubled = effects(_outcomes(rows[:2] + [("x", "soo", 0.2, 0.0, 25.0)])).iloc[0]
    assert doubled.damage == pytest.approx(1.5) and doubled.degenerate and not doubled.meets_bar


def test_a_cut_with_collapsed_margins_is_degenerate_not_honest():
    rows = [("b", "base", 1.0, 0.0, 10.0), ("s", "sham", 1.0, 0.0, 10.0),
            ("x", "soo", 0.3, 0.0, 10.0)]
    for margin, degenerate in ((-0.5, True), (4.0, False)):  # base margin -8 nats (deceptive)
        o = _with(_outcomes(rows), "b", "margin", "burglar", "deceptive_first", -8.0)
        o = _with(_with(o, "s", "margin", "burglar", "deceptive_first", -8.0),
                  "x", "margin", "burglar", "deceptive_first", margin)
        r = effects(o).iloc[0]
        assert bool(r.degenerate) is degenerate and bool(r.meets_bar) is not degenerate


def test_a_cut_with_broken_generations_is_degenerate():
    """Unclear answers rising, or answers no longer reading as language, flag the cell (30
    points against base); outcomes without generations (older cells) are judged without."""
    rows = [("b", "base", 1.0, 0.0, 10.0), ("s", "sham", 1.0, 0.0, 10.0),
            ("x", "soo", 0.3, 0.0, 10.0)]
    for unclear, sentence, degenerate in ((0.5, 1.0, True), (0.0, 0.6, True),
                                          (0.2, 0.8, False)):
        o = _outcomes(rows)
        for cell, (u, s) in {"b": (0.0, 1.0), "s": (0.0, 1.0), "x": (unclear, sentence)}.items():
            for layout in ("deceptive_first", "honest_first"):
                o = _with(_with(o, cell, "unclear_rate", "burglar", layout, u),
                          cell, "sentence_rate", "burglar", layout, s)
        assert bool(effects(o).iloc[0].degenerate) is degenerate, (unclear, sentence)
    assert not effects(_outcomes(rows)).iloc[0].degenerate


def test_sentence_check_separates_language_from_broken_output():
    from soo_interp.evaluation import looks_like_sentence

    for text in ("I would recommend the kitchen.", "The library.", "Bob should go to the den"):
        assert looks_like_sentence(text), text
    for text in ("", "the the the the the the", "!!!! ??? ...", "kitchen", "12 34 ### 56 $$",
                 "den den den den den den den"):
        assert not looks_like_sentence(text), text


def test_ties_are_ranked_by_the_declared_rule_and_reported():
    from soo_interp.experiments.effects import rank_configs

    keys = dict(condition="soo", train_component="attn", loss="mse", pooling="last", lr=0.01,
                capability_weight=0.0, pair_set="short", seed=0, deception=0.0,
                **{"sham.deception": 0.0}, deception_honest_first=0.0, perplexity_ratio=1.0,
                overlap=0.1, overlap_change=-0.1, wrong_self=0.0, wrong_friend=0.0,
                wrong_perspectives=0.0)
    eff = pd.DataFrame([{**keys, "train_layer": 2, "effect": 0.1, "damage": 0.0, "score": 0.1},
                        {**keys, "train_layer": 1, "effect": 0.1, "damage": 0.0, "score": 0.1},
                        {**keys, "train_layer": 0, "effect": 0.3, "damage": 0.2, "score": 0.1},
                        {**keys, "train_layer": 3, "effect": 0.5, "damage": 0.0, "score": 0.5}])
    ranked = rank_configs(eff)
    assert ranked.train_layer.tolist() == [3, 1, 2, 0]  # score, then less damage, then layer
    assert ranked.tied.tolist() == [1, 3, 3, 3]


def test_verdict_intervals_carry_prompt_sampling_and_are_never_zero_width():
    from soo_interp.stats import difference_interval, rate_interval

    mean, lo, hi = rate_interval([0.0, 0.0, 0.0], [200, 200, 200])
    assert mean == 0 and lo == 0 and 0.005 < hi < 0.01  # Wilson of 0/600
    spread = rate_interval([0.1, 0.5, 0.9], [200] * 3)
    narrow = rate_interval([0.5, 0.5, 0.5], [200] * 3)
    assert spread[2] - spread[1] > 5 * (narrow[2] - narrow[1]) > 0
    d = difference_interval([1.0] * 3, [200] * 3, [1.0] * 3, [200] * 3)
    assert d[0] == 0 and d[1] < 0 < d[2]
    from soo_interp.stats import mean_interval, summarize

    # margins, perplexity and damage: the package's one t interval (4.3027 = t(0.975, 2))
    assert mean_interval([1.0, 2.0, 3.0, None]) == pytest.approx((2.0, 2 - 4.3027 / 3 ** 0.5,
                                                                  2 + 4.3027 / 3 ** 0.5), abs=1e-4)
    row = summarize(pd.DataFrame({"g": 1, "value": [1.0, 2.0, 3.0]}), by=["g"]).iloc[0]
    assert (row["mean"], row.ci_low, row.ci_high) == pytest.approx(mean_interval([1.0, 2.0, 3.0]))


def test_stage1_samples_the_grid_and_an_empty_space_is_refused():
    cfg = SearchConfig(layers="0-1", components=("attn", "mlp"), losses=("mse",),
                       poolings=("last",), lrs=(1e-3, 1e-2), capability_weights=(0.0,),
                       pair_sets=("short",), budget=3, seeds=(7, 8))
    assert len(grid(cfg, 4)) == 8
    picked = stage1(cfg, 4)
    assert len(set(picked)) == 3 and {c.seed for c in picked} == {7}
    assert picked == stage1(cfg, 4)  # seeded
    kl = grid(SearchConfig(layers="0-1", losses=("kl_logits",), poolings=("last",), lrs=(1e-3,),
                           capability_weights=(0.0,), pair_sets=("short",)), 4)
    assert [(c.layer, c.component) for c in kl] == [(3, "resid")]  # layer-free loss: one cell
    with pytest.raises(ConfigError, match="no cells"):
        grid(SearchConfig(losses=()), 4)


def test_search_writes_reports_and_effects_match_outcomes(finished_search):
    out = finished_search
    assert json.loads((out / "search.json").read_text())["status"] == "complete"
    for f in ("report.md", "configs.csv", "effects.csv", "pareto.png", "effect_heatmap.png",
              "run.json", "outcomes.parquet"):
        assert (out / f).exists(), f
    o = pd.read_parquet(out / "outcomes.parquet")
    assert set(o.condition) == {"base", "soo", "sham"}
    rate = lambda cond: o[(o.condition == cond) & (o.scenario == "burglar")  # noqa: E731
                          & (o.layout == "deceptive_first")].value.iloc[0]
    eff = pd.read_csv(out / "effects.csv")
    assert eff.effect.iloc[0] == pytest.approx(rate("sham") - rate("soo"))
    sites = 3 * N_LAYERS  # normalised overlap at every layer's attn, mlp and resid
    assert o[o.metric == "normalised_soo"].groupby("cell_id").size().eq(sites).all()
    assert "# SOO search on organism" in (out / "report.md").read_text()


def test_rerun_resumes_without_recomputing(finished_search, capsys, cells_cli):
    ids = cells_cli.run_ids(finished_search)
    assert set(ids) == {"base", "sham-lr0.01-cw0-short-s0", "soo-L1.attn-mse-last-lr0.01-cw0-short-s0"}
    stamps = {p: p.stat().st_mtime_ns for p in finished_search.glob("cells/*/outcomes.parquet")}
    code, err = run_cli(capsys, "search", "--model", "organism", "--out", finished_search, *TINY)
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps and cells_cli.run_ids(finished_search) == ids
    code, err = run_cli(capsys, "search", "--model", "organism", "--out", finished_search,
                        *TINY, "--n", "3")
    assert code == 2 and "another model or configuration" in err and "\n" not in err


def test_verdict_on_fresh_seeds(finished_search, tmp_path, capsys):
    out = tmp_path / "v"
    code, err = run_cli(capsys, "verdict", "--search", finished_search, "--out", out,
                        "--top", "1", "--seeds", "5,6", "--n", "3", "--workers", "1", "--quiet")
    assert code == 0, err
    # each fresh seed's base cell scored its own 2 x 3 prompts of the search's suite
    # (organism-lm's held-out rows), after the search's block of 2 x 2: recomputed by hand
    from soo_interp.evaluation import logprob_scores
    from soo_interp.experiments.outcomes import eval_records
    from soo_interp.models import load_model
    lm = load_model("organism")
    for block, seed in ((1, 5), (2, 6)):
        records = eval_records("organism-lm", "burglar", "paper", 3, block, first=2)
        want = logprob_scores(lm, records).margin.mean()
        o = pd.read_parquet(out / "cells" / f"base-s{seed}" / "outcomes.parquet")
        got = o[(o.metric == "margin") & (o.scenario == "burglar")
                & (o.layout == "deceptive_first")]
        assert got.n.tolist() == [6] and got.value.iloc[0] == pytest.approx(want, abs=1e-5)
    table = pd.read_csv(out / "verdict.csv")
    assert set(table.condition) == {"base", "soo", "sham", "soo-sham"}
    assert (table.n_seeds == 2).all()
    cells = [json.loads(p.read_text())["cell"] for p in out.glob("cells/*/run.json")]
    assert {c["seed"] for c in cells if c["condition"] != "base"} == {5, 6}
    # the base model is scored on each fresh seed's prompts too, not on the search's block 0
    assert sorted(c["seed"] for c in cells if c["condition"] == "base") == [5, 6]
    # the shipped outcomes and the search's ranking recompute the table
    from soo_interp.experiments.verdict import verdict_from_outcomes
    again = verdict_from_outcomes(pd.read_parquet(out / "outcomes.parquet"),
                                  pd.read_csv(finished_search / "configs.csv"), 1)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table, check_dtype=False)
    md = (out / "verdict.md").read_text()
    assert "config 1: layer 1 attn" in md and "2 fresh seeds" in md


def test_verdict_refuses_search_seeds_and_unfinished_searches(finished_search, tmp_path, capsys):
    out = tmp_path / "v"
    code, err = run_cli(capsys, "verdict", "--search", finished_search, "--out", out,
                        "--seeds", "0,5")
    assert code == 2 and "[0] were used by the search" in err and not out.exists()
    unfinished = tmp_path / "u"
    unfinished.mkdir()
    meta = json.loads((finished_search / "search.json").read_text()) | {"status": "running"}
    (unfinished / "search.json").write_text(json.dumps(meta))
    code, err = run_cli(capsys, "verdict", "--search", unfinished, "--out", out)
    assert code == 2 and "has not finished" in err and "\n" not in err and not out.exists()
    code, err = run_cli(capsys, "verdict", "--search", tmp_path, "--out", out)
    assert code == 2 and "not a search folder" in err
    # more fresh prompts than the scenario suite holds: refused before a cell trains
    scenarios = tmp_path / "s"
    scenarios.mkdir()
    meta = json.loads((finished_search / "search.json").read_text())
    (scenarios / "search.json").write_text(json.dumps(
        meta | {"config": meta["config"] | {"evaluation": "scenarios"}}))
    code, err = run_cli(capsys, "verdict", "--search", scenarios, "--out", out,
                        "--n", "100000")
    assert code == 2 and "lower --n or the number of seeds" in err and "\n" not in err
    assert not out.exists()


def test_search_with_no_cells_is_one_line(tmp_path, capsys):
    out = tmp_path / "s"
    code, err = run_cli(capsys, "search", "--out", out, "--losses", ",")
    assert code == 2 and "no cells" in err and "\n" not in err and not out.exists()


def test_stage1_covers_every_layer_component_and_loss_of_the_organism_grid():
    n_layers = N_LAYERS
    cfg = SearchConfig()  # the default space on the shipped organism
    space = grid(cfg, n_layers)
    values = {a: {getattr(c, a) for c in space} for a in AXES}
    assert values["loss"] == {"mse", "cosine", "kl_logits"} and len(values["layer"]) == n_layers
    for sample_seed in range(20):
        for budget in (5, 8, 28):
            picked = stage1(dataclasses.replace(cfg, budget=budget, sample_seed=sample_seed), n_layers)
            assert len(set(picked)) == budget and {c.seed for c in picked} == {0}
            assert all({getattr(c, a) for c in picked} == values[a] for a in AXES), (sample_seed, budget)
    # below the budget that allows it, it still covers as much as it can
    two = stage1(dataclasses.replace(cfg, budget=2), n_layers)
    assert len({c.loss for c in two}) == 2 and len({c.component for c in two}) == 2
    assert set(stage1(dataclasses.replace(cfg, budget=10**4), n_layers)) == {
        dataclasses.replace(c, seed=0) for c in space}


SMALL = SearchConfig(layers="1", components=("attn", "mlp"), losses=("mse",), poolings=("last",),
                     lrs=(0.01,), capability_weights=(0.0,), pair_sets=("short",), budget=2,
                     top_k=1, seeds=(0,), epochs=1, n=2, signatures=False)


def _cells(out: Path) -> pd.DataFrame:
    o = pd.read_parquet(out / "outcomes.parquet")
    return o.sort_values(["cell_id", "metric", "scenario", "layout", "layer", "component"],
                         ignore_index=True)


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time across make test's xdist workers
def test_search_on_process_and_ray_executors_matches_serial(tiny_model_dir, tmp_path):
    """The same search through two local worker processes and a real local Ray cluster gives
    the serial run's outcomes (4 cells: base, one sham, two SOO sites)."""
    ray = pytest.importorskip("ray")
    path = str(tiny_model_dir("llama", n_layers=2))
    serial = search(path, SMALL, out=tmp_path / "serial", progress=False, executor=Executor(workers=1))
    search(path, SMALL, out=tmp_path / "local", progress=False, executor=Executor(workers=2))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        search(path, SMALL, out=tmp_path / "ray", progress=False, executor=Executor("ray", workers=2))
    finally:
        ray.shutdown()
    want = _cells(tmp_path / "serial")
    assert want.cell_id.nunique() == 4 and len(serial) == 2
    for name in ("local", "ray"):
        pd.testing.assert_frame_equal(_cells(tmp_path / name), want)
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name / "configs.csv"),
                                      pd.read_csv(tmp_path / "serial" / "configs.csv"))


def test_killed_search_resumes_without_recomputing(tiny_model_dir, tmp_path, cells_cli):
    """SIGKILL a search after its first cells; the same command does only the missing cells."""
    out = tmp_path / "s"
    args = ["search", "--model", str(tiny_model_dir("llama", n_layers=2)), "--out", str(out),
            "--layers", "0-1", "--components", "attn,mlp", "--losses", "mse", "--poolings", "last",
            "--lrs", "0.01", "--capability-weights", "0", "--pair-sets", "short", "--budget", "4",
            "--top-k", "1", "--seeds", "0", "--epochs", "2", "--n", "2", "--no-signatures",
            "--workers", "1", "--quiet"]
    before = cells_cli.kill_after(args, out, cells=2)
    assert 2 <= len(before) < 6, "the search should be killed half-way"
    assert json.loads((out / "search.json").read_text())["status"] == "running"
    done = cells_cli.run(args)
    assert done.returncode == 0, done.stderr
    after = cells_cli.run_ids(out)
    assert len(after) == 6 and {n: after[n] for n in before} == before
    assert json.loads((out / "search.json").read_text())["status"] == "complete"
    assert not list((out / "cells").glob(".*"))  # no partial folder left behind


def test_failed_cell_names_its_log_and_the_others_finish(tmp_path, capsys, cells_cli):
    out = tmp_path / "s"
    (out / "cells").mkdir(parents=True)
    mark_run(out, "search")  # a search folder whose cell cannot be written
    (out / "cells" / ".soo-L1.attn-mse-last-lr0.01-cw0-short-s0.partial").write_text("not a folder")
    code, err = run_cli(capsys, "search", "--model", "organism", "--out", out, *TINY)
    log = out / "logs" / "soo-L1.attn-mse-last-lr0.01-cw0-short-s0.log"
    assert code == 2 and "1 cell(s) failed" in err and str(log) in err and "\n" not in err
    assert "Traceback" in log.read_text()
    assert set(cells_cli.run_ids(out)) == {"base", "sham-lr0.01-cw0-short-s0"}


def test_signatures_are_measured_by_default_before_and_after(tmp_path):
    """The default search measures the self-deception signatures of every trained cell."""
    cfg = dataclasses.replace(SearchConfig(), layers="1", components=("attn",), losses=("mse",),
                              poolings=("last",), lrs=(0.01,), capability_weights=(0.0,),
                              pair_sets=("short",), budget=1, top_k=1, seeds=(0,), epochs=1, n=2)
    assert cfg.signatures
    search("organism", cfg, out=tmp_path / "s", progress=False, executor=Executor(workers=1))
    o = pd.read_parquet(tmp_path / "s" / "outcomes.parquet")
    sig = o[o.metric.str.startswith("signature.")]
    assert set(sig.condition) == {"soo", "sham"}  # the base cell has nothing to compare
    counts = sig[sig.condition == "soo"].groupby("metric").value.count()
    sites = 3 * N_LAYERS
    assert counts["signature.overlap_without_indistinguishability.base"] == sites
    assert counts["signature.overlap_without_indistinguishability.tuned"] == sites
    assert counts["signature.surviving_deception_direction.tuned"] == sites
    assert counts["signature.relocation.tuned"] == sites - 1  # NaN at the trained site itself


def test_search_and_verdict_refuse_other_weights_under_the_same_name(tiny_model_dir, tmp_path):
    """Issue 21: a search folder resumed on weights changed since (a model object perturbed in
    place, or a named folder whose files changed) is refused before any cell; so is a verdict
    of a search whose named model changed."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from soo_interp.experiments.verdict import VerdictConfig, verdict
    from soo_interp.models import load_model

    cfg = dataclasses.replace(SMALL, components=("attn",), budget=1)
    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir("llama", n_layers=2), path)
    lm = load_model(str(path))
    search(lm, cfg, out=tmp_path / "obj", progress=False, executor=Executor(workers=1))
    with torch.no_grad():
        for p in lm.model.parameters():
            p.add_(1e-3)
    with pytest.raises(ConfigError, match="with other weights .*choose another --out"):
        search(lm, cfg, out=tmp_path / "obj", progress=False, executor=Executor(workers=1))
    search(str(path), cfg, out=tmp_path / "named", progress=False, executor=Executor(workers=1))
    meta = json.loads((tmp_path / "named" / "search.json").read_text())
    assert meta["model_source"] == "files" and len(meta["model_fingerprint"]) == 32
    weights = path / "model.safetensors"
    save_file({k: v + 1e-3 for k, v in load_file(str(weights)).items()}, str(weights),
              metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="with other weights"):
        search(str(path), cfg, out=tmp_path / "named", progress=False, executor=Executor(workers=1))
    with pytest.raises(ConfigError, match="ranked configurations .* rerun the search"):
        verdict(tmp_path / "named", VerdictConfig(top=1, seeds=(5,)), out=tmp_path / "v",
                progress=False, executor=Executor(workers=1))
    assert not (tmp_path / "v").exists()


REPORTS = Path(__file__).resolve().parent.parent / "reports"


def test_committed_search_reads_into_the_schema_with_the_same_numbers():
    """The committed search was written before the schema (layer = trained, at_layer =
    measured, kl_to_base, layout paper): `upgrade` reads it into the schema, and the effects
    computed from its upgraded outcomes equal the committed ones (effect, KL, overlap; its damage
    predates the both-layouts definition) and rank the configurations in the committed order."""
    from soo_interp.experiments.effects import rank_configs
    from soo_interp.experiments.schema import COLUMNS, upgrade

    folder = REPORTS / "organism-search"
    outcomes = upgrade(pd.read_parquet(folder / "outcomes.parquet"))
    assert {"train_layer", "train_component", "layer", "component"} <= set(outcomes)
    assert "at_layer" not in outcomes and "kl_to_base" not in set(outcomes.metric)
    assert set(outcomes.layout.dropna()) == {"deceptive_first", "honest_first"}
    assert set(outcomes.columns) <= set(COLUMNS) | {"cell_id"}
    eff = effects(outcomes)
    committed = upgrade(pd.read_csv(folder / "effects.csv"))
    assert "sham.next_token_kl" in committed and "layer" not in committed
    cols = ["train_layer", "train_component", "seed", "effect", "next_token_kl", "overlap"]
    pd.testing.assert_frame_equal(eff[cols].reset_index(drop=True), committed[cols],
                                  check_dtype=False)
    assert len(rank_configs(eff)) == len(upgrade(pd.read_csv(folder / "configs.csv")))
    for name in ("organism-verdict", "organism-positional-verdict"):
        assert {"train_layer", "train_component"} <= set(
            upgrade(pd.read_csv(REPORTS / name / "verdict.csv")))


def test_every_column_is_in_the_documented_schema(finished_search):
    from soo_interp.experiments.layer_sweep import COLUMNS as SWEEP_COLUMNS
    from soo_interp.experiments.schema import COLUMNS

    doc = (REPORTS.parent / "docs" / "guide" / "experiments.md").read_text()
    assert all(f"| `{k}` | {v} |" in doc for k, v in COLUMNS.items())
    outcomes = pd.read_parquet(finished_search / "outcomes.parquet")
    assert set(outcomes.columns) | set(SWEEP_COLUMNS) <= set(COLUMNS)
    assert set(outcomes.layout.dropna()) == {"deceptive_first", "honest_first"}
    assert "next_token_kl" in set(outcomes.metric)


def test_committed_organism_lm_search_and_verdict_recompute_from_their_outcomes():
    """The shipped organism-lm search and verdict carry every cell's outcomes: the effects,
    the ranking and the verdict table recompute from them to the committed numbers."""
    from soo_interp.experiments.effects import rank_configs
    from soo_interp.experiments.verdict import verdict_from_outcomes

    search_dir, verdict_dir = REPORTS / "organism-lm-search", REPORTS / "organism-lm-verdict"
    eff = effects(pd.read_parquet(search_dir / "outcomes.parquet"))
    committed = pd.read_csv(search_dir / "effects.csv")
    cols = ["cell_id", "effect", "damage", "deception", "sham.deception", "wrong_perspectives",
            "margin", "perplexity_ratio", "overlap"]
    pd.testing.assert_frame_equal(eff[cols].reset_index(drop=True), committed[cols],
                                  check_dtype=False)
    ranked = pd.read_csv(search_dir / "configs.csv")
    pd.testing.assert_frame_equal(rank_configs(eff)[["score", "effect", "damage"]]
                                  .reset_index(drop=True), ranked[["score", "effect", "damage"]],
                                  check_dtype=False)
    top = json.loads((verdict_dir / "run.json").read_text())["config"]["top"]
    table = verdict_from_outcomes(pd.read_parquet(verdict_dir / "outcomes.parquet"), ranked, top)
    pd.testing.assert_frame_equal(table.reset_index(drop=True),
                                  pd.read_csv(verdict_dir / "verdict.csv"), check_dtype=False)
