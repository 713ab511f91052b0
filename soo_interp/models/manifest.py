"""Checksum manifests of model folders: `manifest.json` lists the sha256 of every file. A folder
that has one is verified on every load, wherever it is loaded from (the built-in name or a path
to a copy), so a corrupted or edited checkpoint is refused instead of silently used."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import CheckpointError
from ..runs import MARKER, atomic_write_json

MANIFEST = "manifest.json"
RESTORE_HINT = "restore the folder from where it came from, or rebuild it"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> Path:
    """Record the sha256 of every file in `folder` except the manifest itself and the run-kind
    marker (bookkeeping of the folder, not part of the checkpoint: a copy may drop it)."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in (MANIFEST, MARKER)}
    atomic_write_json(folder / MANIFEST, {"algorithm": "sha256", "files": files})
    return folder / MANIFEST


def verify_manifest(folder: Path, hint: str = RESTORE_HINT) -> None:
    """Raise `CheckpointError` (ending in `hint`) unless every file the manifest lists is present
    and intact."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint {folder} has no readable {MANIFEST} ({e}); "
                              f"{hint}") from e
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name}; {hint}")
        if sha256_file(path) != digest:
            raise CheckpointError(f"checkpoint {folder}: {name} fails its sha256 check "
                                  f"(corrupted or edited); {hint}")
