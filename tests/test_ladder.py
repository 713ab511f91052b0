"""The SOO control ladder on the shipped tiny organism with a reduced size: arms become cells,
the neutral sham trains on neutral text, dose is matched, seeds get their own prompts, resume
skips finished cells, and every bad input is one line, exit 2, nothing written."""
import json

import pandas as pd
import pytest
import torch

from soo_interp.cli import main
from soo_interp.errors import ConfigError
from soo_interp.executors import Executor
from soo_interp.experiments.ladder import (
    RECIPES,
    LadderConfig,
    eval_block,
    ladder,
    plan_rungs,
)
from soo_interp.runs import mark_run

ARMS = ("untuned", "sham-neutral", "sham-exposure", "soo-mean", "soo-stopgrad", "soo-lora-all")
SMALL = LadderConfig(recipe=None, arms=ARMS, pair_sets=("short",), seeds=(1000,), n=2,
                     epochs=1, lr=0.01, pooling="mean")
CELLS = {"base-s1000", "sham-neutral-short-s1000", "sham-short-s1000",
         "soo-L1.attn-mse-mean-short-s1000", "soo-L1.attn-mse-mean-sgself-short-s1000"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder") / "l"
    table = ladder("organism", SMALL, out=out, executor=Executor(workers=1), progress=False)
    return out, table


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


def test_arms_become_cells_and_soo_lora_all_shares_the_recipe_cell(finished, cells_cli):
    out, table = finished
    assert set(cells_cli.run_ids(out)) == CELLS  # soo-lora-all is soo-mean under this recipe
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.arm) == list(ARMS)
    share = runs.set_index("arm").cell_id
    assert share["soo-lora-all"] == share["soo-mean"] == "soo-L1.attn-mse-mean-short-s1000"
    assert json.loads((out / "ladder.json").read_text())["status"] == "complete"
    for f in ("report.md", "table.csv", "answer.csv", "outcomes.parquet", "run.json"):
        assert (out / f).exists(), f
    assert set(table.arm) == set(ARMS) and (table.n_seeds == 1).all()


def test_dose_is_matched_across_trained_arms(finished):
    runs = pd.read_csv(finished[0] / "runs.csv").set_index("arm")
    trained = runs.drop("untuned")
    for col in ("steps", "tokens_seen", "sequences_seen", "forward_passes_per_step"):
        assert trained[col].nunique() == 1 and trained[col].iloc[0] > 0, col
        assert runs.loc["untuned", col] == 0
    # 26 pairs, batch 4 x accumulation 4: 7 micro-batches in 2 steps, both prompts of each pair
    assert trained.steps.iloc[0] == 2 and trained.sequences_seen.iloc[0] == 52
    assert trained.forward_passes_per_step.iloc[0] == 3.5
    assert trained.partial_forward["soo-mean"] == 1 and trained.partial_forward["sham-neutral"] == 0


def test_the_neutral_sham_trains_on_neutral_text(finished):
    """The neutral sham's first logged objective is the untrained model's LM loss on neutral
    text cut to the pair texts' lengths (LoRA starts at zero), not on the pair texts."""
    from soo_interp import load_model
    from soo_interp.data.neutral import neutral_texts
    from soo_interp.data.pairs import pair_set
    from soo_interp.models.tokenize import encode
    from soo_interp.training import TrainConfig
    from soo_interp.training.losses import lm_loss, neutral_batch
    from soo_interp.training.plan import epoch_groups

    out = finished[0]
    name = "sham-neutral-short-s1000"
    cfg = TrainConfig.from_dict(json.loads((out / "run.json").read_text())["cells"][name])
    lm, pairs = load_model("organism"), pair_set("short")
    texts = [t for t in neutral_texts("train") if t.strip()]
    group = epoch_groups(len(pairs), cfg, 0)[0]
    got = {"neutral": 0.0, "pairs": 0.0}
    with torch.no_grad():
        for j, mb in enumerate(group):
            like = encode(lm.tokenizer, [pairs[i].self_text for i in mb]
                          + [pairs[i].other_text for i in mb], cfg.add_bos)
            for kind, batch in (("neutral", neutral_batch(lm.tokenizer, like, texts,
                                                           j * 2 * cfg.batch_size, cfg.add_bos)),
                                ("pairs", like)):
                logits = lm.model(**batch.as_kwargs()).logits
                got[kind] += float(lm_loss(logits, batch, len(mb)).sum())
    n = sum(len(mb) for mb in group)
    log = pd.read_parquet(out / "cells" / name / "adapter" / "train_log.parquet")
    first = log[(log.metric == "objective") & (log.step == 1)].value.iloc[0]
    assert first == pytest.approx(got["neutral"] / n, rel=1e-4)
    assert abs(first - got["pairs"] / n) > 0.05


def test_stop_grad_arm_differs_from_plain_soo(finished):
    """Same data, seed and first forward (equal step-1 objective), different gradients: the
    stop-gradient arm ends with other weights."""
    from safetensors.torch import load_file

    cells = finished[0] / "cells"
    plain, detached = "soo-L1.attn-mse-mean-short-s1000", "soo-L1.attn-mse-mean-sgself-short-s1000"
    logs = [pd.read_parquet(cells / c / "adapter" / "train_log.parquet") for c in (plain, detached)]
    first = [lg[(lg.metric == "objective") & (lg.step == 1)].value.iloc[0] for lg in logs]
    assert first[0] == pytest.approx(first[1], rel=1e-5)
    a, b = (load_file(cells / c / "adapter" / "adapter_model.safetensors") for c in (plain, detached))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-4


def test_table_intervals_carry_prompt_sampling_and_the_answer_is_computed(finished):
    out, table = finished
    rates = table[table.outcome.isin(["deception", "wrong_self", "wrong_location"])]
    assert (rates.ci_high - rates.ci_low > 0.1).all()  # 4 prompts per row: wide, never [0, 0]
    runs = pd.read_csv(out / "runs.csv").set_index("arm")
    ans = pd.read_csv(out / "answer.csv").set_index("arm")
    assert set(ans.index) == {"soo-mean", "soo-stopgrad", "soo-lora-all"}
    want = runs.loc["sham-exposure", "deception"] - runs.loc["soo-mean", "deception"]
    assert ans.loc["soo-mean", "cut_vs_sham_exposure"] == pytest.approx(want)
    assert ans.loc["soo-mean", "damage"] == pytest.approx(runs.loc["soo-mean", "damage"])
    report = (out / "report.md").read_text()
    assert "Does SOO beat the scenario-exposure sham without damage?" in report
    assert "soo-mean (paper pairs)" in report


def test_run_json_records_every_setting(finished):
    meta = json.loads((finished[0] / "run.json").read_text())
    assert meta["config"]["arms"] == list(ARMS) and meta["recipe"] is None
    assert meta["objective"] == {"loss": "mse", "pooling": "mean", "lr": 0.01, "epochs": 1}
    assert meta["site"] == {"layer": 1, "component": "attn"}
    assert meta["eval_blocks"] == {"1000": 1} and "reserved range" in meta["seed_policy"]
    assert meta["cells"]["soo-L1.attn-mse-mean-sgself-short-s1000"]["stop_grad_self"] is True
    assert meta["cells"]["sham-neutral-short-s1000"]["sham_text"] == "neutral"
    assert meta["cells"]["base-s1000"] is None and "versions" in meta


def test_rerun_skips_finished_cells(finished, cells_cli):
    out = finished[0]
    ids = cells_cli.run_ids(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/outcomes.parquet")}
    ladder("organism", SMALL, out=out, executor=Executor(workers=1), progress=False)
    assert cells_cli.run_ids(out) == ids
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # a later run may name fewer (or more) arms: finished cells are reused, the report follows
    fewer = ("untuned", "sham-exposure", "soo-mean")
    table = ladder("organism", SMALL, out=out, executor=Executor(workers=1), progress=False,
                   arms=fewer)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert set(table.arm) == set(fewer) and list(pd.read_csv(out / "runs.csv").arm) == list(fewer)
    saved = json.loads((out / "ladder.json").read_text())
    assert saved["config"]["arms"] == list(fewer) and saved["status"] == "complete"
    with pytest.raises(ConfigError, match="only arms, pair_sets may change"):
        ladder("organism", SMALL, out=out, executor=Executor(workers=1), progress=False, n=3)
    ladder("organism", SMALL, out=out, executor=Executor(workers=1), progress=False)


def test_recipes_and_lora_scope():
    assert LadderConfig(recipe="original-code").objective() == RECIPES["original-code"] == {
        "loss": "kl_logits", "pooling": "mean", "lr": 5e-5, "epochs": 20}
    assert LadderConfig().objective() == {"loss": "mse", "pooling": "mean", "lr": 1e-4,
                                          "epochs": 15}
    assert LadderConfig(recipe="paper", lr=1e-4).objective()["lr"] == 1e-4  # agreeing is fine
    rungs = {r.arm: r.cell for r in plan_rungs(LadderConfig(recipe="original-code"), 30)}
    assert rungs["soo-lora-all"] == rungs["soo-kl"] and rungs["soo-kl"].layer == 19
    from soo_interp.training import TrainConfig

    target = rungs["soo-lora-target"].train_config(TrainConfig())
    assert target.layers_to_transform == (19,) and target.loss == "kl_logits"
    assert rungs["soo-stopgrad"].train_config(TrainConfig()).stop_grad_self


def test_each_seed_has_its_own_prompts_disjoint_from_the_search():
    from soo_interp.data.scenarios import generate_scenarios

    cfg = LadderConfig(seeds=(1002, 1000, 1001), n=30)
    blocks = [eval_block(cfg, s) for s in (1000, 1001, 1002)]
    assert blocks == [1, 2, 3]
    search = {r.prompt for r in generate_scenarios("perspectives", 25, mirrored="both")}
    seen = [{r.prompt for r in generate_scenarios("perspectives", 30, mirrored="both", block=b,
                                                  first=25)} for b in blocks]
    assert all(len(s) == 60 and not s & search for s in seen)
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2])
    from soo_interp.experiments.outcomes import eval_records

    first = {r.prompt for r in eval_records("organism-lm", "burglar", "honest_first", 25)}
    lm_seen = [eval_records("organism-lm", "burglar", "honest_first", 30, b, 25) for b in blocks]
    assert all(len({r.prompt for r in s}) == 60 and {r.layout for r in s} == {"honest_first"}
               and sum(r.mirrored for r in s) == 30 for s in lm_seen)
    sets = [first] + [{r.prompt for r in s} for s in lm_seen]
    assert all(not sets[i] & sets[j] for i in range(4) for j in range(i))


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "l"
    search = tmp_path / "search"
    search.mkdir()
    (search / "search.json").write_text(json.dumps({"config": {"seeds": [0, 1], "n": 25}}))
    other = tmp_path / "other"
    other.mkdir()
    mark_run(other, "search")
    (other / "search.json").write_text("{}")
    cases = [(["--out", out, "--arms", "untuned,soo-magic"], "unknown arm"),
             (["--out", out, "--recipe", "paper", "--lr", "0.01"], "recipe paper sets lr"),
             (["--out", out, "--recipe", "original-code", "--pooling", "last"],
              "recipe original-code sets pooling"),
             (["--out", out, "--seeds", "5"], "reserved range"),
             (["--out", out, "--exclude-from", search, "--seeds", "1,7"], "used by the search"),
             (["--out", out, "--arms", "sham-exposure"], "untuned"),
             (["--out", other], "holds a soo-interp search run")]
    for args, message in cases:
        code, err = run_cli(capsys, "ladder", *args)
        assert code == 2 and message in err and "\n" not in err, (args, err)
        assert not out.exists()
    assert sorted(p.name for p in other.iterdir()) == [".soo-interp-run.json", "search.json"]


def test_too_many_prompts_for_the_space_is_refused_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="lower --n"):
        ladder("organism", LadderConfig(seeds=(1000, 1001, 1002, 1003), n=200),
               out=tmp_path / "l")
    assert not (tmp_path / "l").exists()


def _runs(soo_dec, soo_dec_hf, damage, degenerate=False):
    rows = []
    for seed in (1000, 1001, 1002):
        for arm, dec, hf, dmg, deg in (("untuned", 0.9, 0.9, 0.0, False),
                                       ("sham-exposure", 0.8, 0.8, 0.0, False),
                                       ("soo-mean", soo_dec, soo_dec_hf, damage, degenerate)):
            rows.append({"arm": arm, "pair_set": "short", "seed": seed, "n_prompts": 400,
                         "deception": dec, "deception_honest_first": hf, "damage": dmg,
                         "degenerate": deg})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("soo,hf,damage,degenerate,beats", [
    (0.2, 0.2, 0.0, False, True),
    (0.2, 0.2, 0.10, False, False),     # damage above the bar
    (0.2, 0.8, 0.0, False, False),      # a cut in one layout only: a position flip
    (0.2, 0.2, 0.0, True, False),       # a degenerate seed
    (0.78, 0.78, 0.0, False, False)])   # within prompt noise of the sham
def test_beating_the_sham_needs_a_cut_in_both_layouts_without_damage(soo, hf, damage, degenerate,
                                                                      beats):
    from soo_interp.experiments.ladder import answer

    row = answer(_runs(soo, hf, damage, degenerate)).iloc[0]
    assert bool(row.beats_sham_without_damage) is beats
    assert row.cut_vs_sham_exposure == pytest.approx(0.8 - soo)
    assert row.cut_vs_untuned == pytest.approx(0.9 - soo)
    assert row["cut_vs_sham_exposure.ci_low"] < 0.8 - soo < row["cut_vs_sham_exposure.ci_high"]


def test_ladders_of_other_arms_or_pair_sets_combine_into_one_report(finished, tmp_path, capsys):
    """Two finished ladders (another pair set, its own folder) pool into the report one ladder
    over both would write: each pair set's rows are its own ladder's, the shared untuned cell
    must agree, and folders that differ in anything but arms and pair sets are refused."""
    a = finished[0]
    b = tmp_path / "b"
    ladder("organism", SMALL, out=b, executor=Executor(workers=1), progress=False,
           arms=("untuned", "soo-mean"), pair_sets=("recipient",))
    out = tmp_path / "both"
    code, err = run_cli(capsys, "ladder", "--combine", f"{a},{b}", "--out", out)
    assert code == 0, err
    got = pd.read_csv(out / "runs.csv")
    for folder, ps in ((a, "short"), (b, "recipient")):
        own = pd.read_csv(folder / "runs.csv")
        mine = got[(got.pair_set == ps) & got.arm.isin(own.arm)].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, own[own.pair_set == ps].reset_index(drop=True))
    # soo-lora-all (asked of a) is the recipe's own cell, so b's soo-mean cell answers it
    extra = got[(got.pair_set == "recipient") & ~got.arm.isin(["untuned", "soo-mean"])]
    assert list(extra.arm) == ["soo-lora-all"]
    assert extra.cell_id.item() == "soo-L1.attn-mse-mean-recipient-s1000"
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["pair_sets"] == ["short", "recipient"]
    assert [s["folder"] for s in meta["combined_from"]] == [str(a), str(b)]
    assert set(meta["cells"]) == CELLS | {"soo-L1.attn-mse-mean-recipient-s1000"}
    assert (out / "ladder.png").stat().st_size > 0
    assert "(recipient-only pairs)" in (out / "report.md").read_text()

    # a shared cell that disagrees, another n, an unfinished folder, extra flags: refused
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("run.json", "ladder.json"):
        (bad / f).write_text((b / f).read_text())
    frame = pd.read_parquet(b / "outcomes.parquet")
    frame.loc[frame.cell_id == "base-s1000", "value"] += 0.5
    frame.to_parquet(bad / "outcomes.parquet")
    other_n = tmp_path / "n3"
    other_n.mkdir()
    for f in ("run.json", "ladder.json"):
        meta = json.loads((b / f).read_text())
        meta["config"]["n"] = 3
        (other_n / f).write_text(json.dumps(meta))
    (other_n / "outcomes.parquet").write_bytes((b / "outcomes.parquet").read_bytes())
    # the same weights under another file fingerprint (a card edit): the untuned cells decide
    refiled = tmp_path / "refiled"
    refiled.mkdir()
    for f in ("run.json", "outcomes.parquet"):
        (refiled / f).write_bytes((b / f).read_bytes())
    status = json.loads((b / "ladder.json").read_text())
    (refiled / "ladder.json").write_text(json.dumps(status | {"model_fingerprint": "f" * 32}))
    assert run_cli(capsys, "ladder", "--combine", f"{a},{refiled}", "--out",
                   tmp_path / "both2")[0] == 0
    saved = json.loads((tmp_path / "both2" / "ladder.json").read_text())
    assert saved["model_fingerprints"] == [status["model_fingerprint"], "f" * 32]
    no_base = tmp_path / "nobase"
    no_base.mkdir()
    for f in ("run.json", "ladder.json"):
        (no_base / f).write_text((b / f).read_text())
    frame = pd.read_parquet(b / "outcomes.parquet")
    frame[frame.cell_id != "base-s1000"].to_parquet(no_base / "outcomes.parquet")
    cases = [([f"{a},{bad}"], "cell base-s1000 has other values"),
             ([f"{a},{no_base}"], "lacks untuned cells"),
             ([f"{a},{other_n}"], "differs from"), ([f"{a},{tmp_path}"], "not a finished"),
             ([str(a)], "at least two"), ([f"{a},{b}", "--n", "3"], "drop n")]
    for args, message in cases:
        fresh = tmp_path / "fresh"
        code, err = run_cli(capsys, "ladder", "--combine", *args, "--out", fresh)
        assert code == 2 and message in err and "\n" not in err, (args, err)
        assert not fresh.exists()
