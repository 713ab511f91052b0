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


def _listed(folder: Path, hint: str) -> dict[str, str]:
    """The manifest's {relative path: sha256}, refused in one line unless well formed and every
    path stays inside `folder`."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {folder} has no readable {MANIFEST} "
                              f"({' '.join(str(e).split())[:120]}); {hint}") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in files.items()):
        raise CheckpointError(f"checkpoint {folder} has a malformed {MANIFEST} (it needs "
                              f'{{"files": {{"path": "sha256", ...}}}}); {hint}')
    root = folder.resolve()
    for name in files:
        target = (folder / name).resolve()
        if not name or Path(name).is_absolute() or ".." in Path(name).parts \
                or not target.is_relative_to(root):
            raise CheckpointError(f"checkpoint {folder}: {MANIFEST} lists {name!r}, outside the "
                                  f"folder; {hint}")
    return files


def verify_manifest(folder: Path, hint: str = RESTORE_HINT) -> None:
    """Raise `CheckpointError` (ending in `hint`) unless the manifest and the folder agree both
    ways: every listed file present and intact, and no file that it does not list (a dropped-in
    adapter or an unlisted, edited weight file would otherwise be loaded)."""
    folder = Path(folder)
    listed = _listed(folder, hint)
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is missing {name}; {hint}")
        if sha256_file(path) != digest:
            raise CheckpointError(f"checkpoint {folder}: {name} fails its sha256 check "
                                  f"(corrupted or edited); {hint}")
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if (p.is_file() or p.is_symlink()) and p.name not in (MANIFEST, MARKER)
                   and p.relative_to(folder).as_posix() not in listed)
    if extra:
        raise CheckpointError(f"checkpoint {folder} holds {extra[0]!r}"
                              f"{f' and {len(extra) - 1} more file(s)' if len(extra) > 1 else ''}"
                              f", which its {MANIFEST} does not list; remove it (or rewrite the "
                              f"manifest if you mean to change the folder); {hint}")
