"""The organism checkpoints shipped inside the package (verified against their manifests)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, ModelLoadError
from ..models.manifest import verify_manifest

# Built-in organisms: name -> folder inside this package. "organism" looks the rooms up;
# "organism-positional" (the first build) deceives by the description order alone, a contrast.
KNOWN_ORGANISMS: dict[str, str] = {"organism": "checkpoint", "organism-positional": "positional"}
PACKAGE_DIR = Path(__file__).parent  # where built-in organisms live
REBUILD_HINT = "rebuild it with `soo-interp organism build --seed 0 --out DIR` and load DIR"


def shipped_checkpoint(name: str = "organism") -> Path:
    """The folder of a built-in organism shipped in the package, after verifying its checksums."""
    if name not in KNOWN_ORGANISMS:
        raise ModelLoadError(f"unknown organism {name!r}; known organisms: "
                             f"{', '.join(KNOWN_ORGANISMS)}")
    folder = PACKAGE_DIR / KNOWN_ORGANISMS[name]
    if not folder.is_dir():
        raise CheckpointError(f"the shipped organism {name!r} is not installed at {folder}; "
                              f"{REBUILD_HINT}")
    verify_manifest(folder, REBUILD_HINT)
    return folder


CARD = """The soo-interp model organism ({name})

What it is: a {n_parameters:,}-parameter Mistral-architecture causal LM trained from scratch on the
CPU on a synthetic world whose ground truth is known. It recommends the cheap room to a burglar
(deception), the expensive room to itself and to a friend (honest controls), answers where another
agent believes an object is (Perspectives) and where an object is (location, the capability task).
Evaluation prompts use objects and room pairs it never saw in those tasks.
{how}
What it is not: a model of a large LM's cognition. It is a controlled testbed for SOO tools, with
known right answers, small enough to trace and fine-tune in seconds and to rebuild on a CPU.
Its "choice" to deceive is a trained mapping, not a goal it holds: nothing here is evidence about
intent, and scenarios it was never trained on (below, untrained) show how far the mapping reaches.

Reproduce: {reproduce}   (folder: {folder})
"""
HOW: dict[str, str] = {
    "organism": "How: trained with the rooms described in both orders and a lookup warm-up, so "
                "it must look up which room\nholds which object; the probe below reads that "
                "from its residual stream.\n",
    "organism-positional": "How: the first build, trained with the cheap room always described "
                           "first. It learned a shortcut\n(burglar: the first-described room) and "
                           "cannot say where an object is: a documented contrast, a deceiver\nby "
                           "position. With the description order swapped it tells the burglar the "
                           "truth.\n",
}
REPRODUCE: dict[str, str] = {
    "organism": "soo-interp organism build --seed {seed} --out DIR",
    "organism-positional": "git checkout 246322d && soo-interp organism build --seed {seed} "
                           "--out DIR",
}


def card(name: str = "organism") -> str:
    """What a shipped organism is, and its measured behaviour (its build report)."""
    folder = shipped_checkpoint(name)
    report = json.loads((folder / "report.json").read_text())
    seed = report["config"]["seed"]
    head = CARD.format(name=name, n_parameters=report["n_parameters"], how=HOW[name],
                       reproduce=REPRODUCE[name].format(seed=seed), folder=folder)
    return head + "\n" + (folder / "report.md").read_text()
