"""Where a model's weights live: device maps, quantization, and the device inputs go to.

A model dispatched by accelerate (`device_map`) keeps each block on its own device (a GPU, the
CPU, or disk offload); it must never be moved with `.to()`. Inputs go to the input embedding's
execution device; each tracing site is reduced where its activation is, and only the small
result moves.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError, check_choice
from ..runs import set_seed
from .sites import base_model

QUANTIZATIONS = ("4bit", "8bit")
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


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


def check_device(device: Any) -> str:
    """A device-map value: "disk", or a device that exists on this machine (else one line)."""
    if device == "disk":
        return device
    return str(resolve_device(f"cuda:{device}" if isinstance(device, int) else device))


def parse_device_map(spec: str | dict | None) -> str | dict | None:
    """A device map from the CLI or Python: a strategy name (auto, balanced, ...), a JSON
    mapping of module names to devices (inline or a .json file), or a dict; every device named
    must exist."""
    if spec is None or isinstance(spec, dict):
        mapping = spec
    elif spec in DEVICE_MAP_STRATEGIES:
        return spec
    else:
        text = Path(spec).read_text() if spec.endswith(".json") and Path(spec).is_file() else spec
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError:
            example = '{"model.layers.0": 0, "lm_head": "cpu"}'
            raise ModelLoadError(f"cannot read device map {spec!r}; give one of "
                                 f"{', '.join(DEVICE_MAP_STRATEGIES)}, or a JSON mapping of module "
                                 f"names to devices, e.g. '{example}'") from None
        if not isinstance(mapping, dict):
            raise ModelLoadError(f"device map {spec!r} must be a JSON mapping of module names to devices")
    if mapping is not None:
        for device in mapping.values():
            check_device(device)
    return mapping


def parse_max_memory(spec: str | dict | None) -> dict | None:
    """`max_memory` for accelerate: a dict, or 'cpu=60GiB,0=20GiB' from the CLI."""
    if spec is None or isinstance(spec, dict):
        return spec
    out: dict[Any, str] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep:
            raise ModelLoadError(f"cannot read max memory {spec!r}; use e.g. cpu=60GiB,0=20GiB")
        out[int(key) if key.strip().isdigit() else key.strip()] = value.strip()
    return out


def quantization_config(quantization: str | None, dtype: torch.dtype) -> Any:
    """The bitsandbytes config of `quantization` (4bit NF4 as in the paper, or 8bit); needs CUDA
    and bitsandbytes, and says so in one line otherwise."""
    if quantization is None:
        return None
    check_choice("quantization", quantization, QUANTIZATIONS, ModelLoadError)
    if not torch.cuda.is_available():
        raise ModelLoadError(f"{quantization} quantization needs a CUDA GPU (bitsandbytes); drop "
                             "--quantization on this machine, or use --dtype bfloat16 to halve memory")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(f"{quantization} quantization needs bitsandbytes: "
                             "pip install 'soo-interp[quant]'")
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=dtype)


def is_dispatched(model: torch.nn.Module) -> bool:
    """Whether accelerate placed the model (device map or quantization): never `.to()` it."""
    hf = base_model(model)
    return bool(getattr(hf, "hf_device_map", None)) or bool(getattr(hf, "is_quantized", False))


def input_device(model: torch.nn.Module) -> torch.device:
    """The device inputs go to: the input embedding's execution device under accelerate
    dispatch, else the device of the model's (first materialised) parameters."""
    hf = base_model(model)
    emb = hf.get_input_embeddings() if hasattr(hf, "get_input_embeddings") else None
    dev = getattr(getattr(emb, "_hf_hook", None), "execution_device", None)
    if dev is not None:
        return torch.device(f"cuda:{dev}" if isinstance(dev, int) else dev)
    for p in model.parameters():
        if p.device.type != "meta":
            return p.device
    return torch.device("cpu")


def init_lora(peft_model: Any, seed: int) -> None:
    """LoRA layers peft puts on modules accelerate offloaded are left on the meta device. Give
    them real tensors on their module's execution device, then re-initialise every LoRA layer
    from `seed` in module order. The re-initialisation runs on every model, split or not, so
    an offloaded model's adapter starts exactly as the model in one piece does (peft's own
    initialisation draws a different random stream when some layers are on the meta device)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in peft_model.modules() if isinstance(m, LoraLayer)]
    for m in layers:
        base = m.get_base_layer()
        dev = getattr(getattr(base, "_hf_hook", None), "execution_device", None)
        dev = torch.device(f"cuda:{dev}" if isinstance(dev, int) else dev or "cpu")
        for name in m.active_adapters:
            for part in (m.lora_A, m.lora_B):
                if name in part and part[name].weight.device.type == "meta":
                    part[name].to_empty(device=dev)
    set_seed(seed)
    for m in layers:
        for name in m.active_adapters:
            m.reset_lora_parameters(name, True)
