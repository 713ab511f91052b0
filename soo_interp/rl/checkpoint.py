"""RL artifacts as safetensors + JSON (never pickle), written atomically and validated on load.

- a *policy* (`policy.safetensors` + `policy.json`): both agents' actors and what a reader must
  check before using them (task, observation layout, hidden size, baseline, seed);
- the *agents* (`agents.safetensors` + `agents.json`): both agents' actors, critics and targets
  at the end of a run (what continued training, e.g. fine-tuning with the task reward, needs);
- a *checkpoint* (`checkpoint.safetensors` + `checkpoint.json`): everything a resumed run needs
  (networks, optimizers, replay buffer, RNG states, counters, log), at an episode boundary.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..runs import atomic_path, atomic_write_json
from .env import AGENTS, OBS_LAYOUT, TASK
from .maddpg import ACT_DIM, MLP, Agent, MaddpgConfig, build_agents

POLICY, CHECKPOINT, AGENTS_FILE = "policy", "checkpoint", "agents"
FORMAT = 1


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested dict/list into `tensors` (keyed by its path) and return a
    JSON skeleton that references them; `unflatten` is the inverse."""
    if torch.is_tensor(obj):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def unflatten(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skel, dict) and "__tensor__" in skel:
        return tensors[skel["__tensor__"]]
    if isinstance(skel, dict) and "__dict__" in skel:
        return {k: unflatten(v, tensors) for k, v in skel["__dict__"]}
    if isinstance(skel, list):
        return [unflatten(v, tensors) for v in skel]
    return skel


def save_pair(folder: Path, name: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """`name.safetensors` (tensors, and the metadata in its header, so the two can never come
    from different saves) then `name.json`, a readable copy whose presence marks completion."""
    folder = Path(folder)
    meta = {"format": FORMAT, "task": TASK, **meta}
    with atomic_path(folder / f"{name}.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta, default=str)})
    atomic_write_json(folder / f"{name}.json", meta)


def load_pair(folder: Path, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata; the metadata comes from the safetensors header (the JSON copy only
    for files written without one)."""
    folder = Path(folder)
    meta_path, data_path = folder / f"{name}.json", folder / f"{name}.safetensors"
    if not meta_path.exists() or not data_path.exists():
        raise CheckpointError(f"{folder} has no {name}.json/{name}.safetensors; pass the output "
                              "folder of `soo-interp rl train`")
    try:
        with safe_open(str(data_path), "pt") as f:
            header = (f.metadata() or {}).get("meta")
        meta = json.loads(header) if header else json.loads(meta_path.read_text())
        tensors = load_file(str(data_path))
    except Exception as e:
        raise CheckpointError(f"cannot read {name} in {folder} ({e}); it is corrupt, retrain") from e
    if meta.get("task") != TASK:
        raise CheckpointError(f"{folder} holds a checkpoint of task {meta.get('task')!r}, not "
                              f"{TASK!r}; pass a Physical Deception run folder")
    return tensors, meta


def save_policy(folder: Path, actors: dict[str, MLP], meta: dict) -> None:
    tensors = {f"{a}.{k}": v.detach().cpu().contiguous()
               for a in AGENTS for k, v in actors[a].state_dict().items()}
    hidden = actors["blue"].fc1.out_features
    save_pair(folder, POLICY, tensors, {"obs_layout": OBS_LAYOUT, "hidden": hidden, **meta})


def load_policy(folder: Path) -> tuple[dict[str, MLP], dict]:
    """Both actors of a trained run (eval mode), checked against this task's layout and size."""
    tensors, meta = load_pair(folder, POLICY)
    layout = {k: tuple(v) for k, v in meta.get("obs_layout", {}).items()}
    if layout != OBS_LAYOUT:
        raise CheckpointError(f"{folder}: policy observation layout {layout} does not match this "
                              f"environment's {OBS_LAYOUT}; retrain with this version")
    actors = {}
    for a in AGENTS:
        actor = MLP(len(OBS_LAYOUT[a]), ACT_DIM, int(meta["hidden"]), tanh_out=True)
        sd = {k[len(a) + 1:]: v for k, v in tensors.items() if k.startswith(f"{a}.")}
        try:
            actor.load_state_dict(sd)
        except RuntimeError as e:
            raise CheckpointError(f"{folder}: {a} actor weights do not fit a hidden size of "
                                  f"{meta['hidden']} ({str(e).splitlines()[0]}); retrain") from e
        actors[a] = actor.eval()
    return actors, meta


def save_agents(folder: Path, agents: dict[str, Agent], meta: dict) -> None:
    """Every network of both agents (no optimizer state or replay buffer); `meta` must hold the
    run's `config` (its `maddpg` settings rebuild the networks)."""
    tensors: dict[str, torch.Tensor] = {}
    skel = flatten({a: m.state_dict() for a, m in agents.items()}, "agents", tensors)
    save_pair(folder, AGENTS_FILE, tensors, {**meta, "agents": skel})


def load_agents(folder: Path) -> tuple[dict[str, Agent], dict]:
    """The networks `save_agents` wrote, in fresh Agents (new optimizers) built from the run's
    MADDPG settings."""
    tensors, meta = load_pair(folder, AGENTS_FILE)
    agents = build_agents(MaddpgConfig.from_dict(meta["config"].get("maddpg", {})))
    for a, sd in unflatten(meta["agents"], tensors).items():
        agents[a].load_state_dict(sd)
    return agents, meta
