"""Activation sets: pooled activations of a suite's prompts at every requested (layer, site).

Collected with `soo_interp.metrics.collect_pooled` (one traced forward per batch of prompts for
all sites; float32 on CPU) and stored as one safetensors shard per layer plus `manifest.json`
(model, fingerprint of its weights, suite and the hash of its prompts, pooling, sites). With a
`cache_dir`, a suite is traced once per model: a later call with the same model weights, prompts
and pooling reads the shards back instead of tracing again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import ProbeError
from ..metrics import collect_pooled
from ..models.fingerprint import model_fingerprint
from ..models.sites import Site
from ..runs import atomic_path, atomic_write_json
from .suites import Suite

MANIFEST = "manifest.json"
FORMAT = "soo-interp-activations/1"


def parse_site(text: str) -> Site:
    """'L3.attn' -> Site(3, 'attn') (the inverse of `str(site)`)."""
    import re

    m = re.fullmatch(r"L(\d+)\.(\w+)", text.strip())
    if not m:
        raise ProbeError(f"cannot read site {text!r}; write it as L<layer>.<attn|mlp|resid>, "
                         "e.g. L19.attn")
    return Site(int(m.group(1)), m.group(2))


@dataclasses.dataclass
class ActivationSet:
    """Pooled activations `{Site: [N, D] float32}` of one suite on one model."""

    suite: Suite
    acts: dict[Site, torch.Tensor]
    model: str
    pooling: str
    fingerprint: str = ""
    adapter: str | None = None
    add_bos: bool | None = None
    chat_template: bool | str = "auto"

    @property
    def sites(self) -> list[Site]:
        return sorted(self.acts)

    def key(self) -> str:
        """What must match for cached shards to be reused."""
        raw = json.dumps([self.fingerprint, self.pooling, self.add_bos, self.chat_template,
                          self.suite.prompts_hash()])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "model": self.model, "adapter": self.adapter,
                "fingerprint": self.fingerprint, "suite": self.suite.name,
                "prompts_hash": self.suite.prompts_hash(), "pooling": self.pooling,
                "add_bos": self.add_bos, "chat_template": self.chat_template,
                "n": len(self.suite.examples),
                "sites": [str(s) for s in self.sites],
                "shards": sorted({f"layer_{s.layer:03d}.safetensors" for s in self.sites}),
                "suite_meta": self.suite.meta()}

    def save(self, folder: str | Path) -> Path:
        """Write one shard per layer and the manifest (last, so a half-written set has none)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for layer in sorted({s.layer for s in self.sites}):
            tensors = {s.component: self.acts[s].contiguous() for s in self.sites
                       if s.layer == layer}
            with atomic_path(folder / f"layer_{layer:03d}.safetensors") as tmp:
                save_file(tensors, str(tmp))
        atomic_write_json(folder / MANIFEST, self.manifest())
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "ActivationSet":
        from safetensors.torch import load_file

        folder = Path(folder)
        mf = folder / MANIFEST
        if not mf.exists():
            raise ProbeError(f"{folder} holds no activation set ({MANIFEST} missing); collect "
                             "it again with `soo-interp probe`")
        m = json.loads(mf.read_text())
        if m.get("format") != FORMAT:
            raise ProbeError(f"{mf}: unknown activation set format {m.get('format')!r}; "
                             f"expected {FORMAT}")
        acts: dict[Site, torch.Tensor] = {}
        for shard in m["shards"]:
            layer = int(shard.split("_")[1].split(".")[0])
            for comp, t in load_file(str(folder / shard)).items():
                acts[Site(layer, comp)] = t
        return cls(suite=Suite.from_meta(m["suite_meta"]), acts=acts, model=m["model"],
                   pooling=m["pooling"], fingerprint=m["fingerprint"], adapter=m["adapter"],
                   add_bos=m["add_bos"], chat_template=m.get("chat_template", "auto"))

    def subset(self, sites: Sequence[Site]) -> "ActivationSet":
        missing = [str(s) for s in sites if s not in self.acts]
        if missing:
            raise ProbeError(f"activation set lacks sites {missing}; collect them first")
        return dataclasses.replace(self, acts={s: self.acts[s] for s in sites})


def collect_activations(lm: Any, suite: Suite, sites: Sequence[Site], pooling: str = "last",
                        backend: str = "hooks", batch_size: int = 16,
                        add_bos: bool | None = None, cache_dir: str | Path | None = None,
                        model_name: str | None = None, progress: bool = False,
                        chat_template: bool | str = "auto") -> ActivationSet:
    """Pooled activations of `suite` at `sites`, read from `cache_dir` when already traced."""
    sites = sorted(set(sites))
    name = model_name or getattr(lm, "name", None) or "model"
    adapter = getattr(lm, "adapter", None)
    empty = ActivationSet(suite, {}, name, pooling, model_fingerprint(lm),
                          str(adapter) if adapter else None, add_bos, chat_template)
    folder = Path(cache_dir) / f"{suite.name}-{empty.key()}" if cache_dir else None
    if folder is not None and (folder / MANIFEST).exists():
        cached = ActivationSet.load(folder)
        if set(sites) <= set(cached.acts):
            return dataclasses.replace(cached.subset(sites), model=name)
    acts = collect_pooled(lm, suite.texts, sites, pooling=pooling, backend=backend,
                          batch_size=batch_size, add_bos=add_bos, progress=progress,
                          chat_template=chat_template)
    out = dataclasses.replace(empty, acts=acts)
    if folder is not None:
        out.save(folder)
    return out
