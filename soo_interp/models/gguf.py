"""GGUF files as ordinary model folders: convert once, cache, verify on every load.

transformers reads a GGUF file (`from_pretrained(folder, gguf_file=name)`, with the `gguf`
package), dequantizing it to float32, but the model it returns refuses `save_pretrained` and the
conversion takes tens of seconds. So the first load copies the weights into a plain model built
from the same config and writes a `save_pretrained` folder under the user cache, keyed by the
file's sha256, with a sha256 manifest (checked on every later load) and a `source.json` card
saying where the weights came from and that they are dequantized. Later loads take the normal
folder path in seconds, and every tool that needs a folder (TransformerLens, nnsight, peft) gets
one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, short
from .manifest import MANIFEST, sha256_file, verify_manifest, write_manifest

GGUF_MAGIC = b"GGUF"
SOURCE_FILE = "source.json"
CACHE_ENV = "SOO_INTERP_CACHE"


def cache_root() -> Path:
    """Where converted models live: $SOO_INTERP_CACHE, else $XDG_CACHE_HOME/soo-interp, else
    ~/.cache/soo-interp."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "soo-interp"


def check_gguf(path: Path) -> dict[str, Any]:
    """Read a GGUF file's header: {architecture, file_type, name}; a missing, truncated or
    non-GGUF file is a `ModelLoadError` naming the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {path} does not exist; check the path")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{path} is not a GGUF file (it does not start with 'GGUF'); give "
                             "a .gguf model file, or a save_pretrained folder")
    try:
        from gguf import GGUFReader
    except ImportError as e:
        raise ModelLoadError("reading GGUF files needs the gguf package: pip install "
                             "'soo-interp[pretrained]'") from e
    try:
        reader = GGUFReader(str(path))
        fields = reader.fields
        arch = _field_text(fields["general.architecture"])
        name = _field_text(fields["general.name"]) if "general.name" in fields else path.stem
        types = sorted({t.tensor_type.name for t in reader.tensors})
        quant = _file_type(fields)
    except Exception as e:  # noqa: BLE001 - gguf raises many types on a damaged file
        raise ModelLoadError(f"GGUF file {path} is truncated or corrupt ({type(e).__name__}: "
                             f"{str(e)[:120]}); download it again") from None
    return {"architecture": arch, "name": name, "tensor_types": types,
            "quantization": quant or "+".join(types)}


def _field_text(field: Any) -> str:
    return bytes(field.parts[-1]).decode("utf-8", "replace")


def _file_type(fields: Any) -> str | None:
    """The file's declared quantization ('Q4_1' for general.file_type MOSTLY_Q4_1)."""
    from gguf import LlamaFileType

    if "general.file_type" not in fields:
        return None
    try:
        return LlamaFileType(int(fields["general.file_type"].parts[-1][0])).name.removeprefix("MOSTLY_")
    except ValueError:
        return None


def converted_folder(path: str | Path, trust_remote_code: bool = False) -> Path:
    """The cached `save_pretrained` copy of GGUF file `path`, converting it on first use.

    The copy is written in a temporary folder beside its final place and renamed into place
    whole, so an interrupted conversion leaves nothing a later load would take for a model. A
    copy whose manifest no longer matches is refused (`CheckpointError`, naming the folder to
    delete); it is never silently rebuilt over."""
    path = Path(path).expanduser().resolve()
    header = check_gguf(path)
    digest = sha256_file(path)
    final = cache_root() / "gguf" / digest[:24]
    hint = f"delete {final} and load again to rebuild it from {path.name}"
    if (final / MANIFEST).is_file():
        verify_manifest(final, hint)
        return final
    if final.exists():
        raise ModelLoadError(f"cache folder {final} exists but holds no complete model; {hint}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        _convert(path, tmp, header, digest, trust_remote_code)
        write_manifest(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process converted the same file first: keep its copy
            if not (final / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    verify_manifest(final, hint)
    return final


def _convert(path: Path, out: Path, header: dict[str, Any], digest: str,
             trust_remote_code: bool) -> None:
    """Dequantize `path` with transformers, copy the weights into a plain model of the same
    config, and save it with its tokenizer and `source.json`."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": path.name, "trust_remote_code": trust_remote_code}
    try:
        gguf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kw)
        tok = AutoTokenizer.from_pretrained(str(path.parent), **kw)
    except (ValueError, KeyError, RuntimeError, OSError, NotImplementedError) as e:
        raise ModelLoadError(
            f"transformers cannot read GGUF file {path.name} (architecture "
            f"{header['architecture']!r}, tensors {', '.join(header['tensor_types'])}): {short(e)}; "
            "use a GGUF of an architecture and quantization transformers supports, or a "
            "save_pretrained folder") from None
    config = gguf_model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                             trust_remote_code=trust_remote_code)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ModelLoadError(f"GGUF file {path.name}: its tensors do not fill a "
                             f"{type(plain).__name__} (missing {sorted(missing)[:3]}, unexpected "
                             f"{sorted(unexpected)[:3]}); use a save_pretrained folder instead")
    plain.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    source = {"source": str(path), "file": path.name, "sha256": digest,
              "architecture": header["architecture"], "name": header["name"],
              "quantization": header["quantization"],
              "weights": f"{header['quantization']} dequantized to float32",
              "converted_by": f"transformers {transformers.__version__}"}
    (out / SOURCE_FILE).write_text(json.dumps(source, indent=1) + "\n")


def read_source(folder: str | Path) -> dict[str, Any] | None:
    """A converted folder's `source.json` card (None for any other folder)."""
    p = Path(folder) / SOURCE_FILE
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        return None
