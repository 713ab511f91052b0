"""Every Python and shell example in the README and the documentation (docs/**/*.md) runs, so
neither can drift from the code.

A block tagged `python` runs as a script; an untagged block holds shell commands, run in order
(README first, then docs/ by path) in one folder; `text`, `yaml` and `json` blocks are shown, not
run, and any other tag fails, so that a new example cannot escape the test by its tag. A block
shown in two places (the README's example is also in the guide) runs once. Examples run as
written except for the substitutions below, which only shrink them (fewer prompts, steps, seeds
and layers; the organism or a tiny model instead of a hub model). A shell line is a template,
not an example, when it shows optional `[...]` parts or `...` elisions or placeholder model
names; those are listed in TEMPLATES so that a new example that is neither run nor listed fails
this test."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text()
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}
SHOWN_ONLY = ("text", "yaml", "json")  # block languages that are shown, not run
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)

# exact text -> reduced text, applied to every example before it runs
REDUCE = [
    ("steps=800)", "steps=2, config=OrganismConfig(n_layers=2, hidden_size=32, n_heads=2, "
                   "intermediate_size=64, batch_size=8, eval_n=2))"),
    ("from soo_interp.organism import build_organism,",
     "from soo_interp.organism import OrganismConfig, build_organism,"),
    ("behaviour_rates(lm, n=100)", "behaviour_rates(lm, n=2)"),
    ("behaviour_rates(lm, n=100, layout=", "behaviour_rates(lm, n=2, layout="),
    ('load_model("path/to/model")', 'load_model("organism")'),
    ("n=100, mirrored", "n=2, mirrored"),
    ("epochs=5", "epochs=1"),
    ("--model mistralai/Mistral-7B-Instruct-v0.2 --load-in-4bit --layer 19",
     "--model organism --layer 1 --max-steps 2"),
    ("--model mistralai/Mistral-7B-Instruct-v0.2", "--model organism"),
    ("--seeds 1,2,3", "--seeds 1"),
    ("rl train --out runs/rl --seeds 0,1,2 --episodes 6000 --workers 3 --checkpoint-every 5",
     "rl train --out runs/rl --seeds 0,1 --episodes 20 --n-envs 10 --workers 1 "
     "--maddpg batch_size=64"),
    ("--episodes 200 --eval-seeds 10", "--episodes 10 --eval-seeds 2"),
    ("rl finetune --runs runs/rl", "rl finetune --runs runs/rl --steps 2 --episodes 10"),
    ("--seeds 0,1,2", "--seeds 0 --epochs 1 --n 1"),
    ("--layers all", "--layers 1"),
    ("--n 250", "--n 2"),
    ('"mistralai/Mistral-7B-Instruct-v0.2", device_map="auto", dispatch=True',
     '__import__("soo_interp.models.loading").models.loading.resolve_model_path("organism"), '
     'dispatch=True'),
    ("TrainConfig(layer=16))", "TrainConfig(layer=1, max_steps=1))"),
    ('SweepConfig(train=TrainConfig(lr=1e-3), layers="all", seeds=(0, 1))',
     'SweepConfig(train=TrainConfig(lr=1e-3, epochs=1), layers="1", seeds=(0,), n=1, '
     'scenarios=("burglar",), sham=False)'),
    ("workers=2)", "workers=1)"),
    ("build --seed 0 --out runs/organism", "build --seed 0 --steps 2 --eval-n 2 --n-layers 2 "
     "--hidden-size 32 --n-heads 2 --intermediate-size 64 --batch-size 8 --out runs/organism"),
    ("organism probe --", "organism probe --n-train 10 --n-test 5 --"),
    ("--model smollm2-135m-instruct --out runs/smollm2/measure",
     "--model smollm2-135m-instruct --layers 0,29 --out runs/smollm2/measure"),
    ("--model smollm2-135m-instruct --out runs/smollm2/probe",
     "--model smollm2-135m-instruct --layers 5 --components resid --folds 3 --out runs/smollm2/probe"),
    ("--scoring logprob --n 100 --mirrored", "--scoring logprob --n 2 --mirrored"),
    ("--model smollm2-135m-instruct --out runs/smollm2/demo --n 10",
     "--model organism --out runs/smollm2/demo --n 1"),
    ("n_train=200, n_test=100)", "n_train=10, n_test=5)"),
    ("build --quick --out runs/quick", "build --quick --steps 2 --eval-n 2 --n-layers 2 "
     "--hidden-size 32 --n-heads 2 --intermediate-size 64 --batch-size 8 --out runs/quick"),
]
# shell lines that show a command's shape rather than a runnable example
TEMPLATES = ("make demo", "make test", "make docs", "pip install", "soo-interp train ... --sham", "[",
             "--model M ", "PATH_OR_HUB_ID",
             # need a GPU, a cluster, NDIF or a hub model that the reductions cannot stand in for
             "--quantization 4bit", "--device-map auto", "--executor submitit", "--executor ray",
             "ray start", "--remote")


def _blocks(lang: str) -> list[str]:
    """The distinct blocks of one language, in README-then-docs order."""
    blocks = [m.group(2) for text in PAGES.values() for m in FENCE.finditer(text)
              if m.group(1) == lang]
    return list(dict.fromkeys(blocks))


def _shell_commands() -> list[str]:
    out = []
    for block in _blocks(""):
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.split("  #")[0].strip()
            if cmd and not any(t in cmd for t in TEMPLATES) and cmd not in out:
                out.append(cmd)
    return out


def _reduce(text: str) -> str:
    for a, b in REDUCE:
        text = text.replace(a, b)
    return text


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_docs_have_examples_of_both_kinds():
    assert len(_blocks("python")) >= 5 and len(_shell_commands()) >= 6
    assert any("```python" in text for name, text in PAGES.items() if name.startswith("docs/"))


def test_every_block_is_run_or_shown():
    tags = {(name, m.group(1)) for name, text in PAGES.items() for m in FENCE.finditer(text)}
    bad = sorted(t for t in tags if t[1] not in ("python", "", *SHOWN_ONLY))
    assert not bad, (f"code blocks tagged neither python, untagged (shell) nor one of "
                     f"{SHOWN_ONLY}: {bad}; tag shell examples with nothing so that they run")


def test_quickstart_is_make_demo_and_make_test():
    quickstart = README.split("## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    assert [m.group(2) for m in FENCE.finditer(quickstart)] == ["make demo\nmake test\n"]


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(_blocks("python"))))
def test_python_example_runs(i, tmp_path):
    code = _reduce(_blocks("python")[i])
    done = _run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, f"python example {i}:\n{code}\n{done.stderr[-3000:]}"


@pytest.mark.slow
def test_shell_examples_run_in_order(tmp_path):
    """In README-then-docs order, in one folder: later examples use what earlier ones wrote."""
    for cmd in _shell_commands():
        argv = _reduce(cmd).split()
        assert argv[0] == "soo-interp", cmd
        done = _run([sys.executable, "-m", "soo_interp", *argv[1:]], tmp_path)
        assert done.returncode == 0, f"example `{cmd}`:\n{done.stderr[-3000:]}"
