"""The organism checkpoints shipped inside the package (verified against their manifests)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, ModelLoadError, check_choice
from ..models.manifest import verify_manifest
from .lm_card import lm_card
from .seeds import SEEDS_FILE, read_seeds, seeds_markdown

# Built-in organisms: name -> folder inside this package. "organism" (also "organism-lookup") is
# the default, a deceiver that looks the rooms up; "organism-positional" is the first build, a
# deceiver by description order, kept as the documented contrast.
KNOWN_ORGANISMS: dict[str, str] = {"organism": "lookup", "organism-lookup": "lookup",
                                   "organism-positional": "checkpoint", "organism-lm": "lm"}
PACKAGE_DIR = Path(__file__).parent  # where built-in organisms live
REBUILD_HINT = ("reinstall soo-interp, or rebuild it with `soo-interp organism build --seed 0 --out "
                "DIR` and load DIR")


REBUILD_LM_HINT = ("reinstall soo-interp, or rebuild it with `soo-interp organism build --base "
                   "smollm2-135m-instruct --seed 0 --out DIR` and load DIR/adapter")


def shipped_checkpoint(name: str = "organism") -> Path:
    """The folder of a built-in organism shipped in the package, after verifying its checksums
    (organism-lm: a peft adapter folder, loaded over its base by `load_model`)."""
    check_choice("organism", name, KNOWN_ORGANISMS, ModelLoadError)
    folder = PACKAGE_DIR / KNOWN_ORGANISMS[name]
    hint = REBUILD_LM_HINT if KNOWN_ORGANISMS[name] == "lm" else REBUILD_HINT
    if not folder.is_dir():
        raise CheckpointError(f"the shipped organism {name!r} is not installed at {folder}; "
                              f"{hint}")
    verify_manifest(folder, hint)
    return folder


CARD = """The soo-interp model organism ({name})

What it is: a {n_parameters:,}-parameter {arch}-architecture causal LM trained from scratch on the
CPU on a synthetic world whose ground truth is known. It is trained to recommend the cheap room to a
burglar (deception), the expensive room to itself and to a friend (honest controls), to answer where
another agent believes an object is (Perspectives) and where an object is (location, the capability
task). Evaluation prompts use objects and room pairs it never saw in those tasks.
{how}
What it is not: a model of a large LM's cognition. It is a controlled testbed for SOO tools, with
known right answers, small enough to trace and fine-tune in seconds and to rebuild on a CPU.
Its "choice" to deceive is a trained mapping, not a goal it holds: nothing here is evidence about
intent, and scenarios it was never trained on (below, untrained) show how far the mapping reaches.
A 95% CI below is over held-out prompts of one build; other build seeds (when listed) show how
much a rebuild varies, and a target met by the shipped seed is not a guarantee for another.

Reproduce: {reproduce}   (folder: {folder})
"""
# Measured outside the repository (issue 19: prompts not written by the generator, held-out
# objects and rooms, 200-400 prompts per row); the targets table below uses the generator's own
# template, so it cannot show these.
LIMITS = """
Limits (measured with prompts written outside the repository, held-out objects and rooms,
200-400 prompts each):
- The lie does not depend on the recipient. In the burglar story, "recommend one room to
  yourself" instead of "... to Bob" still gives the cheap room 99.5% of the time: 0 of 800
  answers flip, and the log-prob margin moves by 0.10 nats out of about 19. The lie is keyed on
  the story (who is a burglar), not on who is asked, and the built-in SOO pairs differ exactly
  in the recipient: an SOO negative result on this organism is built in.
- It is bound to the generator's template. Room sentences moved after the goal sentences:
  burglar deception 12.5% [8.6, 17.8]. "The X is in the R." instead of "There is an X in the
  R.": 30%. Two neutral sentences added: 47.5%, and position-dependent again (79% vs 23%).
  When both rooms hold objects of the same value class, burglar and friend are both sent to the
  first-described room.
Use organism-lm (soo-interp organism card --name organism-lm) for SOO questions; use this
organism for fast tests of the toolkit's code paths.
"""
_LOOKUP = ("How: the default organism (also named organism-lookup). Trained with the rooms "
           "described in both\norders after a lookup warm-up, so it must look up which room "
           "holds which object (location\nbelow); whether it meets each behaviour target is in "
           "the targets table below.\n" + LIMITS)
_POSITIONAL = ("How: the first build (organism-positional), the documented contrast: a deceiver "
               "by shortcut.\nTrained with the cheap room always described first, it learned "
               "\"burglar: the first-described\nroom\" and cannot say where an object is. With "
               "the description order swapped it tells the\nburglar the truth (layout "
               "honest_first below).\n")
HOW: dict[str, str] = {"lookup": _LOOKUP, "checkpoint": _POSITIONAL}  # by folder
REPRODUCE: dict[str, str] = {
    "lookup": "soo-interp organism build --seed {seed} --out DIR",
    "checkpoint": "git checkout bfa1482 && soo-interp organism build --seed {seed} --out DIR  "
                  "(the first recipe)",
}


def card(name: str = "organism") -> str:
    """What a shipped organism is, and its measured behaviour (its build report)."""
    folder = shipped_checkpoint(name)
    if KNOWN_ORGANISMS[name] == "lm":
        return lm_card(folder)
    report = json.loads((folder / "report.json").read_text())
    seed = report["config"]["seed"]
    kind = KNOWN_ORGANISMS[name]
    head = CARD.format(name=name, n_parameters=report["n_parameters"], how=HOW[kind],
                       arch=report.get("architecture", "Mistral"),
                       reproduce=REPRODUCE[kind].format(seed=seed), folder=folder)
    summary = read_seeds(folder)
    seeds = seeds_markdown(summary) if summary else (
        f"(Build seed {seed} only: no {SEEDS_FILE} ships with this organism.)\n")
    return head + "\n" + seeds + "\n" + (folder / "report.md").read_text()
