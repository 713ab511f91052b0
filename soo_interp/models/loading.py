"""Loading a causal LM and its tokenizer by hub id, local path or built-in name.

Local folders and hub ids take the same `from_pretrained` path, so a model saved here with
`save_pretrained` exercises exactly the code a user's hub model does.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from pathlib import Path
from pickle import UnpicklingError
from typing import Any, Iterator

import torch

from ..errors import ModelLoadError
from .manifest import MANIFEST, verify_manifest
from .registry import builtin_models, builtin_path
from .sites import ArchSpec, arch_of, n_layers

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass
class LoadedModel:
    """A model with its tokenizer. Unpacks as `model, tokenizer = load_model(...)`."""

    model: torch.nn.Module
    tokenizer: Any
    name: str
    adapter: str | None = None

    def __iter__(self) -> Iterator[Any]:
        yield self.model
        yield self.tokenizer

    @property
    def arch(self) -> ArchSpec:
        return arch_of(self.model)

    @property
    def n_layers(self) -> int:
        return n_layers(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; choose from {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def resolve_model_path(name_or_path: str) -> str:
    """Built-in names map to folders shipped in the package; anything else passes through. A
    local folder with a checksum manifest (a built organism, or a copy of one) is verified."""
    builtin = builtin_path(name_or_path)
    if builtin is not None:
        return str(builtin)
    looks_local = name_or_path.startswith((".", "/", "~")) or Path(name_or_path).exists()
    if looks_local and not Path(name_or_path).expanduser().is_dir():
        raise ModelLoadError(
            f"model path {name_or_path} does not exist; give a folder written by "
            "save_pretrained, a hub id, or one of the built-in models: "
            + ", ".join(builtin_models())
        )
    if not looks_local:
        return name_or_path
    folder = Path(name_or_path).expanduser()
    if (folder / MANIFEST).is_file():
        verify_manifest(folder)
    return str(folder)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to load onto (default: CUDA when available), refusing one that is unknown or
    absent here before any weights are read."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from e
    count = {"cuda": torch.cuda.device_count() if torch.cuda.is_available() else 0,
             "mps": int(torch.backends.mps.is_available())}.get(dev.type)
    if count is not None and (count == 0 or (dev.index or 0) >= count):
        raise ModelLoadError(f"device {device!r} is not available on this machine ({count} "
                             f"{dev.type} device(s)); use --device cpu or an existing device")
    return dev


def short(e: BaseException, limit: int = 240) -> str:
    """A library's error message cut to its first line and `limit` characters (some run to
    thousands of characters, listing every tensor)."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """Load a tokenizer; when it has no pad token, use EOS (or UNK) and say so."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001 - HF raises many types; re-raise with the fix
        raise ModelLoadError(f"cannot load a tokenizer from {path}: {e}; check the id or folder "
                             "(it needs tokenizer files next to config.json)") from e
    if tok.pad_token_id is None:
        fallback = tok.eos_token or tok.unk_token
        if fallback is None:
            raise ModelLoadError(f"tokenizer of {path} has no pad, eos or unk token; add a pad "
                                 "token to it (tokenizer.add_special_tokens)")
        tok.pad_token = fallback
        log.warning("tokenizer of %s has no pad token; using %r for padding (padding never "
                    "enters a metric or loss)", path, fallback)
    return tok


def load_model(name_or_path: str, *, dtype: str | torch.dtype | None = "float32",
               device: str | None = None, load_in_4bit: bool = False,
               trust_remote_code: bool = False, adapter: str | None = None,
               merge_adapter: bool = True) -> LoadedModel:
    """Load a causal LM and its tokenizer in eval mode.

    `name_or_path`: a hub id, a local `save_pretrained` folder, or `"organism"` (built in).
    `load_in_4bit` (NF4, as in the paper) needs CUDA and bitsandbytes. `adapter`: a peft adapter
    folder; it must fit the base model, and is merged into the weights unless
    `merge_adapter=False` (keep it as a `PeftModel`, e.g. to continue training).
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor loading bars drown our own progress output
    path = resolve_model_path(name_or_path)
    device = resolve_device(device)
    kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype), "trust_remote_code": trust_remote_code}
    if load_in_4bit:
        if not torch.cuda.is_available():
            raise ModelLoadError("load_in_4bit needs a CUDA GPU; drop --load-in-4bit on CPU")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"])
        kwargs["device_map"] = {"": 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, UnpicklingError) as e:
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {short(e)}; check that the "
                             "folder or hub id holds a complete causal LM checkpoint") from e
    arch_of(model)  # unsupported families fail here, before any work
    if not load_in_4bit:
        model.to(device)
    tok = load_tokenizer(path, trust_remote_code)
    if adapter is not None:
        model = attach_adapter(model, adapter, merge=merge_adapter)
    model.eval()
    return LoadedModel(model=model, tokenizer=tok, name=name_or_path, adapter=adapter)


@contextlib.contextmanager
def peft_deprecation_silenced() -> Iterator[None]:
    """Around our peft calls only: peft reads transformers' deprecated
    `is_gradient_checkpointing`, whose FutureWarning would precede our one-line messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        yield


def attach_adapter(model: torch.nn.Module, adapter: str | Path, merge: bool = True) -> torch.nn.Module:
    """Load a peft adapter onto `model`, refusing one that does not fit (never silently run the
    base model): every tensor in the adapter file must land on a parameter of the same shape."""
    from peft import PeftModel
    from safetensors import safe_open

    adapter = Path(adapter)
    weights = adapter / "adapter_model.safetensors"
    if not (adapter / "adapter_config.json").is_file() or not weights.is_file():
        raise ModelLoadError(f"{adapter} is not a peft adapter folder (needs adapter_config.json "
                             "and adapter_model.safetensors); pass the folder save_pretrained wrote")
    try:
        with peft_deprecation_silenced():
            peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=not merge)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"adapter {adapter} does not fit this model ({short(e)}); use the "
                             "base model the adapter was trained on") from e
    params = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    with safe_open(str(weights), framework="pt") as f:
        keys = list(f.keys())
        for k in keys:
            stem = k.replace(".weight", "")
            match = [p for n, p in params.items() if n.startswith(stem) and n.endswith(".weight")]
            if not match or tuple(match[0].shape) != tuple(f.get_slice(k).get_shape()):
                raise ModelLoadError(f"adapter {adapter} does not fit this model: tensor {k} has "
                                     "no matching LoRA parameter; use the base model the adapter "
                                     "was trained on")
    if not keys:
        raise ModelLoadError(f"adapter {adapter} holds no weights; retrain or re-save it")
    return peft_model.merge_and_unload() if merge else peft_model


def detach_adapter(peft_model: Any) -> torch.nn.Module:
    """Remove an unmerged peft adapter and return the base model as it was. peft's `unload`
    swaps each LoRA layer back through one path; a TransformerBridge reaches the same modules
    through aliases too, so any LoRA layer still registered is swapped for its base layer."""
    from peft.tuners.lora import LoraLayer

    model = peft_model.unload()
    for module in list(model.modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, LoraLayer):
                module._modules[name] = child.get_base_layer()
    return model
