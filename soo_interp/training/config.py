"""`TrainConfig`: what one SOO LoRA training run does, and its checks against a model."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..errors import ConfigError, SiteError
from ..metrics import POOLINGS
from ..models.sites import COMPONENTS, Site, arch_of, base_model, n_layers, parse_layers

LOSSES: tuple[str, ...] = ("mse", "cosine", "kl_logits")
AMP_MODES: tuple[str, ...] = ("auto", "none", "bf16", "fp16")
SCHEDULES: tuple[str, ...] = ("constant", "linear")
SHAM_TEXTS: tuple[str, ...] = ("pairs", "neutral")
# Keys that may change between a run and its resumption (they do not change what a step does).
RESUMABLE_KEYS: frozenset[str] = frozenset({"max_steps", "checkpoint_every", "tensorboard",
                                         "max_prompt_tokens"})


@dataclasses.dataclass
class TrainConfig(Config):
    """One SOO LoRA run. Defaults follow the paper (Mistral-7B): layer 19, the attention output
    (`o_proj`), r=8, alpha=32, dropout 0.2, q/v projections, lr 1e-4, 15 epochs, batch 4,
    gradient accumulation 4.

    `loss`: `mse` or `cosine` between self and other activations at `Site(layer, component)` under
    `pooling` (the forward stops after that layer), or `kl_logits`: KL(P_other || P_self) between
    the next-token distributions, at the last real token (`last`), of the masked mean of the logits
    (`mean`) or at every aligned position (`aligned`); padding never enters. `sham=True` trains the
    same adapter on the same data and steps with a plain language-modelling loss on the pair texts
    (the control separating data exposure from the SOO objective); with `sham_text="neutral"` the
    LM loss is on neutral text instead, cut to the same token counts as the pair texts it
    replaces (the unrelated-text sham: same steps, sequences and tokens). `stop_grad_other` makes
    the other prompt a fixed target, `stop_grad_self` the self prompt.
    `capability_weight > 0` adds KL(base || adapted) on neutral text.
    `max_steps` stops early (may change on resume); `checkpoint_every` counts optimizer steps.
    `tensorboard` (off by default) also writes the log as it grows to `OUT/tensorboard/`.
    """

    layer: int = 19
    component: str = "attn"
    loss: str = "mse"
    pooling: str = "last"
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.2
    target_modules: tuple[str, ...] | None = None   # None: the family's q/v projections
    layers_to_transform: tuple[int, ...] | None = None  # None: every layer
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    epochs: int = 15
    batch_size: int = 4
    grad_accum: int = 4
    seed: int = 0
    checkpoint_every: int = 50
    stop_grad_other: bool = False
    stop_grad_self: bool = False     # the self prompt a fixed target instead (the replication's
                                     # degenerate arm); at most one side is detached
    capability_weight: float = 0.0
    sham: bool = False
    sham_text: str = "pairs"         # sham data: "pairs" (scenario exposure) | "neutral" (unrelated)
    max_steps: int | None = None
    amp: str = "auto"                # autocast on CUDA only: auto = bf16 if supported, else fp16
    add_bos: bool | None = None
    chat_template: bool | str = "auto"  # format pairs as a chat turn (auto: when the model has one)
    tensorboard: bool = False        # also log each step to TensorBoard (OUT/tensorboard)
    max_prompt_tokens: int | None = None  # refuse longer prompts (always: the model's context)

    positive = ("lora_r", "epochs", "batch_size", "grad_accum", "checkpoint_every", "max_steps",
                "max_prompt_tokens")
    choices = {"loss": LOSSES, "component": COMPONENTS, "pooling": POOLINGS, "amp": AMP_MODES,
               "lr_schedule": SCHEDULES, "sham_text": SHAM_TEXTS}

    def check(self) -> None:
        checks = [
            (self.lora_alpha > 0, "lora_alpha must be > 0 (0 scales the adapter to nothing: "
                                  "the run would train nothing); the paper uses 32"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0.0 <= self.lora_dropout < 1.0, "lora_dropout must be in [0, 1)"),
            (self.lr > 0, "lr must be > 0"),
            (self.capability_weight >= 0, "capability_weight must be >= 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (not (self.stop_grad_self and self.stop_grad_other),
             "stop_grad_self and stop_grad_other detach both sides (no gradient); pick one"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {msg}")

    @property
    def needs_logits(self) -> bool:
        """Whether a step needs the full forward (else it stops after the target layer)."""
        return self.sham or self.loss == "kl_logits"

    def resume_key(self) -> dict[str, Any]:
        """The part of the config a checkpoint must match to be resumed."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE_KEYS}


PAPER_LAYER = 19  # the paper's site on Mistral-7B (32 layers), TrainConfig's default


def default_layer(n_layers: int) -> int:
    """The command line's layer when none is given: the paper's 19 where the model has it,
    else the middle layer."""
    return PAPER_LAYER if n_layers > PAPER_LAYER else n_layers // 2


def target_site(model: torch.nn.Module, config: TrainConfig) -> Site:
    """The validated `Site` of the loss; negative layers count from the end."""
    return Site(parse_layers(config.layer, n_layers(model))[0], config.component)


# A TransformerLens TransformerBridge wraps each HF module it bridges, keeping the original under
# this child name (q_proj -> q_proj._original_component).
_BRIDGED = "_original_component"


def unbridge_adapter(folder: Path) -> None:
    """Rewrite a saved adapter trained through a TransformerBridge with the plain model's module
    names (`x._original_component.y` -> `x.y`), so it loads onto the model without the bridge."""
    import json

    from safetensors.torch import load_file, save_file

    cfg_path, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    cfg = json.loads(cfg_path.read_text())
    plain = lambda name: name.replace("." + _BRIDGED, "")  # noqa: E731
    if not any(_BRIDGED in t for t in cfg.get("target_modules") or []):
        return
    cfg["target_modules"] = sorted({plain(t) for t in cfg["target_modules"]})
    cfg_path.write_text(json.dumps(cfg, indent=2))
    save_file({plain(k): v for k, v in load_file(str(weights)).items()}, str(weights),
              metadata={"format": "pt"})


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Distinct last-name parts of the model's linear layers (what `target_modules` may name),
    also once a TransformerBridge has wrapped them."""
    from transformers.pytorch_utils import Conv1D

    names = {n.removesuffix("." + _BRIDGED).rsplit(".", 1)[-1]
             for n, m in base_model(model).named_modules()
             if isinstance(m, (torch.nn.Linear, Conv1D)) and n}
    return sorted(names)


def resolve_lora_targets(model: torch.nn.Module, config: TrainConfig) -> tuple[list[str], list[int] | None]:
    """Target module names (default: the family's q/v projections) and layer indices, checked
    against the model so peft never fails half-way."""
    targets = list(config.target_modules or arch_of(model).lora_targets)
    available = linear_module_names(model)
    bad = [t for t in targets if t not in available]
    bridged = any(n.endswith("." + _BRIDGED) for n, _ in model.named_modules())
    if bad or not targets:
        why = (" (a TransformerBridge has wrapped this model and renamed some of them; train "
               "the model before bridging it, or name one of these)" if bridged else "")
        raise ConfigError(f"unsupported target module(s) {bad or targets}; this model's linear "
                          f"modules are: {', '.join(available)}{why}")
    if "lm_head" in targets:
        raise ConfigError("lm_head cannot be a LoRA target here; choose from the decoder "
                          f"layers' linear modules: {', '.join(a for a in available if a != 'lm_head')}")
    if bridged:
        targets = [f"{t}.{_BRIDGED}" for t in targets]  # peft must wrap the Linear inside
    layers = None
    if config.layers_to_transform is not None:
        if not config.layers_to_transform:
            raise SiteError("layers_to_transform is empty; give layer indices, or None for all")
        layers = parse_layers(config.layers_to_transform, n_layers(model))
    return targets, layers
