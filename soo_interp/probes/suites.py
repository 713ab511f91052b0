"""Probe suites: labelled prompt sets stored as package data in `soo_interp/probes/builtin_suites/`.

A suite is a folder with `suite.yaml` and JSONL prompt files::
    name: self_vs_other
    description: ...
    labels: [other, self]      # label 0, label 1
    group_by: template         # or pair_id: the unit cross-validation never splits
    pairs: true                # each pair_id holds one prompt of each label
    files: [prompts.jsonl]
    scenarios: {...}           # optional: add soo_interp.data.scenarios records, teacher-forced
                               # with the honest and the deceptive completion

Each JSONL line: {"id", "text", "label" (one of `labels`), "pair_id", "template"}. Malformed
files fail with the file and line; `load_suite` accepts a built-in suite name or a folder path.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import load_yaml
from ..data.scenarios import generate_scenarios
from ..errors import ProbeError
from ..runs import read_user_text

# Package data (shipped in the wheel), read through importlib.resources.
SUITES_DIR = Path(str(importlib.resources.files("soo_interp.probes") / "builtin_suites"))
GROUP_BY = ("template", "pair_id")
_FIELDS = ("id", "text", "label", "pair_id", "template")


@dataclasses.dataclass(frozen=True)
class ProbeExample:
    """One labelled prompt. `label` is 0 or 1 (the index into the suite's label names);
    `origin` is the file it came from, or 'scenarios'."""

    id: str
    text: str
    label: int
    pair_id: str
    template: str
    origin: str = ""


@dataclasses.dataclass
class Suite:
    """A labelled prompt set with its grouping for cross-validation."""

    name: str
    description: str
    label_names: tuple[str, str]
    examples: list[ProbeExample]
    group_by: str = "template"
    pairs: bool = False
    source: str = ""

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def y(self) -> np.ndarray:
        return np.array([e.label for e in self.examples], dtype=np.int64)

    @property
    def groups(self) -> np.ndarray:
        return np.array([getattr(e, self.group_by) for e in self.examples])

    @property
    def origins(self) -> np.ndarray:
        return np.array([e.origin for e in self.examples])

    def prompts_hash(self) -> str:
        """sha256 of every (id, text, label, pair_id, template): the activation cache key."""
        h = hashlib.sha256()
        for e in self.examples:
            h.update(json.dumps(dataclasses.astuple(e)).encode())
        return h.hexdigest()

    def meta(self) -> dict[str, Any]:
        """What an activation set stores about its suite (enough to refit probes later)."""
        return {"name": self.name, "description": self.description,
                "label_names": list(self.label_names), "group_by": self.group_by,
                "pairs": self.pairs, "source": self.source,
                "examples": [dataclasses.asdict(e) for e in self.examples]}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "Suite":
        return cls(name=meta["name"], description=meta["description"],
                   label_names=tuple(meta["label_names"]),
                   examples=[ProbeExample(**e) for e in meta["examples"]],
                   group_by=meta["group_by"], pairs=meta["pairs"], source=meta["source"])


def available_suites() -> list[str]:
    """Names of the built-in suites (package data in `soo_interp/probes/builtin_suites/`)."""
    if not SUITES_DIR.is_dir():
        return []
    return sorted(p.parent.name for p in SUITES_DIR.glob("*/suite.yaml"))


def _read_spec(path: Path) -> dict[str, Any]:
    import yaml

    try:
        spec = load_yaml(read_user_text(path, "suite spec", ProbeError))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ProbeError(f"{where}: suite spec is not valid YAML "
                         f"({getattr(e, 'problem', None) or e}); fix the file") from e
    if not isinstance(spec, dict):
        raise ProbeError(f"{path}:1: a suite spec must be a mapping (name, labels, files, ...)")
    missing = [k for k in ("name", "labels") if k not in spec]
    if missing:
        raise ProbeError(f"{path}: missing key(s) {missing}; a suite needs name, labels and files "
                         "(or scenarios)")
    labels = spec["labels"]
    if not (isinstance(labels, list) and len(labels) == 2 and len(set(map(str, labels))) == 2):
        raise ProbeError(f"{path}: labels must be a list of two distinct names (label 0, "
                         f"label 1), got {labels!r}")
    if spec.get("group_by", "template") not in GROUP_BY:
        raise ProbeError(f"{path}: group_by {spec['group_by']!r} is not one of "
                         f"{', '.join(GROUP_BY)}")
    if not spec.get("files") and not spec.get("scenarios"):
        raise ProbeError(f"{path}: the suite lists no files and no scenarios; add `files: "
                         "[prompts.jsonl]`")
    return spec


def _read_jsonl(path: Path, label_names: Sequence[str]) -> list[ProbeExample]:
    text = read_user_text(path, "suite file (see `files:` in suite.yaml)", ProbeError)
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProbeError(f"{where}: not valid JSON ({e.msg}); one object per line") from e
        if not isinstance(rec, dict):
            raise ProbeError(f"{where}: expected a JSON object with fields {', '.join(_FIELDS)}")
        missing = [k for k in _FIELDS if not str(rec.get(k) or "").strip()]
        if missing:
            raise ProbeError(f"{where}: missing or empty field(s) {missing}; each line needs "
                             f"{', '.join(_FIELDS)}")
        if rec["label"] not in label_names:
            raise ProbeError(f"{where}: label {rec['label']!r} is not one of the suite's labels "
                             f"{list(label_names)}")
        out.append(ProbeExample(str(rec["id"]), str(rec["text"]), label_names.index(rec["label"]),
                                str(rec["pair_id"]), str(rec["template"]), path.name))
    return out


def scenario_examples(cfg: dict[str, Any], label_names: Sequence[str]) -> list[ProbeExample]:
    """Each scenario record teacher-forced with its honest and its deceptive completion;
    template = 'scenario/variant' so grouped CV holds out whole scenarios and variants."""
    if set(label_names) != {"honest", "deceptive"}:
        raise ProbeError("a suite with `scenarios:` must have labels [honest, deceptive]")
    out = []
    m = cfg.get("mirrored", "both")
    mirrored = m if m == "both" else bool(m)
    for name in cfg.get("names", ["burglar"]):
        recs = generate_scenarios(name, int(cfg.get("n", 4)), seed=int(cfg.get("seed", 0)),
                                  mirrored=mirrored,
                                  split=cfg.get("split", "eval"),
                                  answer_format=cfg.get("answer_format", "i_would"))
        for r in recs:
            for lab, completion in (("honest", r.honest_completion),
                                    ("deceptive", r.deceptive_completion)):
                out.append(ProbeExample(f"{r.prompt_id}-{lab}", r.prompt + completion,
                                        label_names.index(lab), r.prompt_id,
                                        f"{r.scenario}/{r.variant}", "scenarios"))
    return out


def check_pairs(examples: Sequence[ProbeExample], where: str) -> None:
    """Every pair_id must hold exactly one example of each label."""
    seen: dict[str, list[int]] = {}
    for e in examples:
        seen.setdefault(e.pair_id, []).append(e.label)
    bad = [p for p, labs in seen.items() if sorted(labs) != [0, 1]]
    if bad:
        raise ProbeError(f"{where}: pair_id {bad[0]!r} (and {len(bad) - 1} more) does not hold "
                         "exactly one prompt of each label; fix the pairs or set `pairs: false`")


def load_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (see `available_suites()`) or a suite folder / YAML path."""
    p = Path(name_or_path)
    if not p.exists() and (SUITES_DIR / str(name_or_path)).is_dir():
        p = SUITES_DIR / str(name_or_path)
    if p.is_dir():
        p = p / "suite.yaml"
    if not p.exists():
        raise ProbeError(f"no probe suite {str(name_or_path)!r}; give a folder with suite.yaml or "
                         f"one of: {', '.join(available_suites()) or '(none found)'}")
    spec = _read_spec(p)
    label_names = tuple(str(x) for x in spec["labels"])
    examples: list[ProbeExample] = []
    for f in spec.get("files") or []:
        examples += _read_jsonl(p.parent / f, label_names)
    if spec.get("scenarios"):
        examples += scenario_examples(spec["scenarios"], label_names)
    if not examples:
        raise ProbeError(f"{p}: the suite holds no examples; add lines to its files")
    ids = [e.id for e in examples]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise ProbeError(f"{p}: example id {dup!r} appears twice; ids must be unique")
    suite = Suite(name=str(spec["name"]), description=str(spec.get("description", "")).strip(),
                  label_names=label_names, examples=examples,
                  group_by=spec.get("group_by", "template"), pairs=bool(spec.get("pairs")),
                  source=str(p))
    if suite.pairs:
        check_pairs(examples, str(p))
    return suite


def resolve_suites(spec: str | Sequence[str]) -> list[Suite]:
    """'all' (every built-in suite), a comma list of names/paths, or a list of them."""
    names = [n for n in (spec.split(",") if isinstance(spec, str) else list(spec)) if str(n).strip()]
    if not names:
        raise ProbeError(f"no probe suite given; name one of {', '.join(available_suites())}, "
                         "a suite folder, or 'all'")
    if names == ["all"]:
        names = available_suites()
    return [load_suite(n.strip()) for n in names]
