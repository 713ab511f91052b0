"""Training checkpoints: written atomically (temporary folder, then rename), tensors as
safetensors and everything else as JSON (never pickle), validated on load.

A checkpoint folder `checkpoints/step-000050/` holds `adapter.safetensors` (trainable LoRA
weights by parameter name), `optimizer.safetensors` + the optimizer's param groups, scheduler and
grad-scaler state in `state.json`, the RNG states (`rng.safetensors` for torch, JSON for Python
and NumPy), the log so far, and the fingerprints (config, model, pairs) a resume must match;
`manifest.json` holds every file's sha256, checked before a resume trusts any of them.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import CheckpointError
from ..models.manifest import MANIFEST, verify_manifest, write_manifest
from ..runs import remove_stale

CHECKPOINTS = "checkpoints"
FILES = ("adapter.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json",
         MANIFEST)
FORMAT = 2  # 2: the model fingerprint is `models.fingerprint.model_fingerprint`
_HINT = "delete it to resume from an earlier one, or start over with --overwrite"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def pairs_fingerprint(texts: Sequence[str]) -> str:
    return _sha("\x00".join(texts).encode())


def rng_snapshot() -> dict[str, Any]:
    """Every RNG a step may draw from (dropout uses torch's), copied now."""
    snap = {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        snap["cuda"] = torch.cuda.get_rng_state_all()
    return snap


def restore_rng(snap: dict[str, Any]) -> None:
    torch.set_rng_state(snap["torch"])
    random.setstate(snap["python"])
    np.random.set_state(snap["numpy"])
    if "cuda" in snap and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(snap["cuda"])


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are ignored)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def save_checkpoint(run_dir: Path, step: int, params: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                    rng: dict[str, Any], meta: dict[str, Any], log_rows: list[dict],
                    keep: int = 2) -> Path:
    """Write checkpoint `step` atomically, then drop all but the newest `keep`."""
    from safetensors.torch import save_file

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)  # the temporary folders of a killed run
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in params.items()},
                  str(tmp / "adapter.safetensors"))
        opt = optimizer.state_dict()
        tensors, scalars = {}, {}
        for idx, st in opt["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars[f"{idx}.{k}"] = v
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        rng_t = {"torch": rng["torch"]}
        rng_t.update({f"cuda.{i}": s for i, s in enumerate(rng.get("cuda", []))})
        save_file(rng_t, str(tmp / "rng.safetensors"))
        py = rng["python"]
        npy = rng["numpy"]
        state = {
            "format": FORMAT, "step": step, "meta": meta, "param_names": list(params),
            "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars},
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {"python": [py[0], list(py[1]), py[2]],
                    "numpy": [npy[0], npy[1].tolist(), int(npy[2]), int(npy[3]), float(npy[4])]},
            "log": log_rows,
        }
        (tmp / "state.json").write_text(json.dumps(state, default=float))
        write_manifest(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _mismatch(kind: str, saved: dict, now: dict, path: Path) -> None:
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        shown = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}" for k in diff[:4])
        raise CheckpointError(f"checkpoint {path} was made with another {kind} ({shown}); resume "
                              "with the same model, pairs and config, or start a new --out")


def load_checkpoint(path: Path, meta: dict[str, Any], params: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any) -> tuple[int, list[dict], dict[str, Any]]:
    """Check checkpoint `path` against `meta`, load it into `params`/`optimizer`/`scheduler`/
    `scaler`, and return (step, log rows, RNG snapshot). Refuses corrupt or foreign ones."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete (missing {', '.join(missing)}); "
                              f"{_HINT}")
    verify_manifest(path, _HINT)  # a flipped byte or an edited state.json is refused here
    try:
        state = json.loads((path / "state.json").read_text())
        weights = load_file(str(path / "adapter.safetensors"))
        opt_t = load_file(str(path / "optimizer.safetensors"))
        rng_t = load_file(str(path / "rng.safetensors"))
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt ({e}); delete it to resume from an "
                              "earlier one, or start over with --overwrite") from e
    if state.get("format") != FORMAT or "meta" not in state:
        raise CheckpointError(f"checkpoint {path} has an unknown format; start over with --overwrite")
    saved = state["meta"]
    _mismatch("model", {"fingerprint": saved.get("model")}, {"fingerprint": meta["model"]}, path)
    _mismatch("config", saved.get("config", {}), meta["config"], path)
    _mismatch("set of pairs", {"pairs": saved.get("pairs")}, {"pairs": meta["pairs"]}, path)
    if set(weights) != set(params) or any(weights[k].shape != params[k].shape for k in params):
        raise CheckpointError(f"checkpoint {path} holds other adapter weights than this run "
                              "trains; start over with --overwrite")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(weights[k].to(p.device, p.dtype))
    opt_state: dict[int, dict[str, Any]] = {}
    for key, v in opt_t.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = v
    for key, v in state["optimizer"]["scalars"].items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = v
    try:
        optimizer.load_state_dict({"state": opt_state,
                                   "param_groups": state["optimizer"]["param_groups"]})
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} has optimizer state that does not fit this "
                              f"run ({e}); start over with --overwrite") from e
    py, npy = state["rng"]["python"], state["rng"]["numpy"]
    rng = {"torch": rng_t["torch"], "python": (py[0], tuple(py[1]), py[2]),
           "numpy": (npy[0], np.array(npy[1], dtype=np.uint32), npy[2], npy[3], npy[4])}
    cuda = [rng_t[k] for k in sorted((k for k in rng_t if k.startswith("cuda.")),
                                     key=lambda k: int(k.split(".")[1]))]
    if cuda:
        rng["cuda"] = cuda
    return int(state["step"]), list(state["log"]), rng
