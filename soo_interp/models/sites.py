"""Sites: *where* in a network an activation is read, independent of module paths.

`Site(layer, component)` with component `attn` (the attention block's output projection, the
paper's `o_proj` site), `mlp` (the MLP block's output) or `resid` (the decoder block's output, the
residual stream after the layer). One table per architecture maps sites to module paths (hooks,
nnsight) and to TransformerLens 4 hook names.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import torch

from ..config import parse_int_list
from ..errors import ConfigError, SiteError, UnsupportedArchitectureError, check_choice

COMPONENTS: tuple[str, ...] = ("attn", "mlp", "resid")


@dataclasses.dataclass(frozen=True)
class Site:
    """A (layer, component) read point. Orders in forward order: layer, then attn < mlp < resid."""

    layer: int
    component: str

    def __post_init__(self) -> None:
        check_choice("site", self.component, COMPONENTS, SiteError)

    def __lt__(self, other: "Site") -> bool:  # forward order, not alphabetical
        return (self.layer, COMPONENTS.index(self.component)) < (
            other.layer, COMPONENTS.index(other.component))

    def __str__(self) -> str:
        return f"L{self.layer}.{self.component}"


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """Module paths of one architecture family, relative to the causal-LM module."""

    family: str
    layers: str          # the ModuleList of decoder blocks
    attn: str            # attention output projection, relative to a block
    mlp: str             # MLP block, relative to a block
    lora_targets: tuple[str, ...]  # peft's default q/v projections for this family

    def module_path(self, site: Site) -> str:
        rel = {"attn": self.attn, "mlp": self.mlp, "resid": ""}[site.component]
        base = f"{self.layers}.{site.layer}"
        return f"{base}.{rel}" if rel else base


_LLAMA_LIKE = dict(layers="model.layers", attn="self_attn.o_proj", mlp="mlp",
                   lora_targets=("q_proj", "v_proj"))
ARCHITECTURES: dict[str, ArchSpec] = {
    **{name: ArchSpec(family=name, **_LLAMA_LIKE) for name in (
        "llama", "mistral", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3")},
    "gpt2": ArchSpec("gpt2", layers="transformer.h", attn="attn.c_proj", mlp="mlp",
                     lora_targets=("c_attn",)),
    "gpt_neox": ArchSpec("gpt_neox", layers="gpt_neox.layers", attn="attention.dense", mlp="mlp",
                         lora_targets=("query_key_value",)),
}


def tl_hook_name(site: Site) -> str:
    """TransformerLens 4 (TransformerBridge) canonical hook name of a site."""
    return {"attn": f"blocks.{site.layer}.attn.hook_out",
            "mlp": f"blocks.{site.layer}.mlp.hook_out",
            "resid": f"blocks.{site.layer}.hook_out"}[site.component]


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain causal LM under a peft wrapper (site paths are relative to it)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def arch_of(model: torch.nn.Module) -> ArchSpec:
    """The site table for a model, or a loud error listing the supported families."""
    mt = getattr(getattr(base_model(model), "config", None), "model_type", None)
    if mt not in ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"unsupported architecture {mt!r}; supported families: "
            f"{', '.join(sorted(ARCHITECTURES))} (add an ArchSpec to "
            "soo_interp.models.sites.ARCHITECTURES to support another)"
        )
    return ARCHITECTURES[mt]


def n_layers(model: torch.nn.Module) -> int:
    return len(base_model(model).get_submodule(arch_of(model).layers))


def site_module(model: torch.nn.Module, site: Site) -> torch.nn.Module:
    check_sites(model, [site])
    return base_model(model).get_submodule(arch_of(model).module_path(site))


def check_sites(model: torch.nn.Module, sites: Iterable[Site]) -> None:
    n = n_layers(model)
    for s in sites:
        if not 0 <= s.layer < n:
            raise SiteError(f"layer {s.layer} does not exist; this model has layers 0..{n - 1}")


def parse_layers(spec: str | int | Sequence[int] | None, n: int) -> list[int]:
    """'0-3,5' / [0, 1] / None (all) -> validated sorted layer indices; negatives count from
    the end (-1 is the last layer)."""
    if spec is None or spec == "all":
        return list(range(n))
    try:
        out = {x + n if x < 0 else x for x in parse_int_list(spec)}
    except ConfigError as e:
        raise SiteError(f"layer spec: {e} (or 'all')") from None
    bad = sorted(x for x in out if not 0 <= x < n)
    if bad:
        what = (f"layer {bad[0]} does" if len(bad) == 1 else
                f"layers {', '.join(map(str, bad))} do" if len(bad) <= 10 else
                f"layers {bad[0]}..{bad[-1]} ({len(bad)} of them) do")
        raise SiteError(f"{what} not exist; this model has layers 0..{n - 1}")
    return sorted(out)


def parse_components(spec: str | Sequence[str] | None) -> list[str]:
    if spec is None:
        return list(COMPONENTS)
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    for item in items or [spec]:
        check_choice("site", item, COMPONENTS, SiteError)
    return [c for c in COMPONENTS if c in items]


def resolve_sites(model: torch.nn.Module, layers: str | Sequence[int] | None = None,
                  components: str | Sequence[str] | None = None) -> list[Site]:
    """Every requested (layer, component), validated against the model, in forward order."""
    comps = parse_components(components)
    return sorted(Site(l, c) for l in parse_layers(layers, n_layers(model)) for c in comps)
