"""Latent SOO of prompt pairs at every (layer, site): the toolkit's measurement entry point."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pandas as pd
import torch

from .config import Config
from .data.pairs import PromptPair, soo_pairs, validate_pairs
from .errors import AlignmentError, PairsError
from .metrics import (
    CONTROL_METRICS,
    METRICS,
    NORMALISED,
    POOLINGS,
    check_pairs_align,
    normalised_overlap,
    pair_metrics,
    pool,
    pooled_metrics,
)
from .models.sites import COMPONENTS, resolve_sites
from .models.tokenize import check_lengths, encode, pair_texts
from .models.wrap import as_loaded_model
from .runs import output_dir, write_run_json
from .stats import summarize
from .tracing import BACKENDS, remote_backend, trace_sites


@dataclasses.dataclass
class MeasureConfig(Config):
    """What `measure` runs. Defaults: every layer, all three components, last-token pooling."""

    positive = ("batch_size", "max_prompt_tokens")
    choices = {"pooling": POOLINGS, "backend": BACKENDS}

    layers: str | tuple[int, ...] | None = None  # "0-3,5", [0, 1] or None for all
    components: tuple[str, ...] = COMPONENTS
    pooling: str = "last"
    backend: str = "hooks"
    batch_size: int = 16                # pairs per forward (2x prompts)
    add_bos: bool | None = None         # None: prepend BOS when the tokenizer has one
    chat_template: bool | str = "auto"  # format prompts as a chat turn (auto: when the model has one)
    seed: int = 0
    max_prompt_tokens: int | None = None  # refuse longer prompts (always: the model's context)
    raw: bool = False                   # figures show raw MSE instead of the normalised overlap
    remote: bool | str = False          # nnsight remote execution (NDIF), or "local" stand-in

    def check(self) -> None:
        self.backend = remote_backend(self.remote, self.backend)  # run.json says what ran


def _use_controls(pairs: Sequence[PromptPair], controls: bool | None, pooling: str,
                  tok: Any, add_bos: bool | None, chat_template: bool | str = "auto") -> bool:
    """Whether to measure the control prompts: `None` = when the pairs carry them (and, under
    `aligned`, they align); `True` demands them."""
    import warnings

    if controls is False:
        return False
    if not all(p.has_controls for p in pairs):
        if controls:
            raise PairsError("normalised overlap needs control prompts: give every pair the fields "
                             "'swap' and 'unrelated' (the built-in pairs have them)")
        return False
    if pooling == "aligned":
        try:
            check_pairs_align(tok, pairs, add_bos, chat_template, ("other_text", "swap_text"))
            check_pairs_align(tok, pairs, add_bos, chat_template, ("self_text", "unrelated_text"))
        except AlignmentError as e:
            if controls:
                raise AlignmentError(f"control prompts: {e}") from e
            warnings.warn("control prompts do not align token for token; normalised overlap "
                          "skipped under pooling='aligned' (use 'last' or 'mean')", stacklevel=3)
            return False
    return True


def _batch_values(lm: Any, chunk: Sequence[PromptPair], site_list: list, pooling: str,
                  backend: str, add_bos: bool | None, controls: bool,
                  chat_template: bool | str = "auto") -> torch.Tensor:
    """[sites, metrics, pairs] for one batch: self, other (and swap, unrelated) in one forward."""
    B = len(chunk)
    texts = [p.self_text for p in chunk] + [p.other_text for p in chunk]
    if controls:
        texts += [p.swap_text for p in chunk] + [p.unrelated_text for p in chunk]
    # (a, b) prompt blocks compared: soo = (self, other); floor = (other, swap); ceiling = (self,
    # unrelated)
    comparisons = [(0, 1)] + ([(1, 2), (0, 3)] if controls else [])
    blk = lambda x, i: x[i * B:(i + 1) * B]  # noqa: E731

    def metrics(compare) -> torch.Tensor:
        vals = [compare(a, b) for a, b in comparisons]
        return torch.stack([vals[0][m] for m in METRICS] + [v["latent_soo"] for v in vals[1:]])

    if pooling == "aligned":  # positions compared pairwise: reduce each site in the trace
        def reduce(_site, acts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return metrics(lambda a, b: pair_metrics(blk(acts, a), blk(acts, b), blk(mask, a),
                                                     blk(mask, b), pooling)).detach()
    else:  # keep one pooled vector per prompt and site; metrics for all sites at once after
        def reduce(_site, acts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return pool(acts, mask, pooling).detach()

    with torch.no_grad():
        batch = encode(lm.tokenizer, texts, add_bos, chat_template=chat_template)
        res = trace_sites(lm, batch, site_list, reduce, backend)
        # each site was reduced on its own device; only the small results move
        dev = res[site_list[0]].device
        out = torch.stack([res[s].to(dev) for s in site_list])  # [S, M, B] or [S, kB, D]
        if pooling != "aligned":
            out = metrics(lambda a, b: pooled_metrics(out[:, a * B:(a + 1) * B],
                                                      out[:, b * B:(b + 1) * B])).transpose(0, 1)
    return out.cpu()


def measure(model: Any, pairs: Sequence[PromptPair] | None = None,
            config: MeasureConfig | None = None, *, progress: bool = True,
            model_name: str | None = None, controls: bool | None = None,
            **overrides: Any) -> pd.DataFrame:
    """Latent SOO (and cosine) of each pair at each (layer, site), as a long DataFrame.

    `model` is a `LoadedModel` (from `load_model`) or any model `as_loaded_model` accepts;
    `config` a `MeasureConfig` (None: the defaults), `overrides` any of its fields, e.g.
    `measure(lm, layers="0-3", pooling="mean")` (see `docs/guide/conventions.md`). Self and
    other prompts of a batch of pairs run in one forward; metrics are reduced inside the trace,
    so memory does not grow with depth.
    Without `pairs`, the built-in held-out SOO pairs are used. When the pairs carry control
    prompts (`controls=None`; `True` demands them, `False` skips them) it also reports
    `floor_mse`, `ceiling_mse` and the scale-free `normalised_soo` (see `soo_interp.metrics`).
    Columns: model, backend, pooling, pair_id, template, layer, component, metric, value.
    `remote=True` runs the traces on NDIF through nnsight (the same reductions, shipped with the
    request; `backend` becomes nnsight); `remote="local"` runs nnsight's offline stand-in.
    `chat_template` ("auto": when the tokenizer has one; True/False) formats each prompt as a user
    turn plus the generation prompt; `last` pooling then reads the assistant's first position
    (where the answer is decided) and `mean` the user's text and what follows it, never the
    template's shared prefix (see `soo_interp.models.tokenize`).
    """
    import numpy as np
    from tqdm.auto import tqdm

    cfg = MeasureConfig.with_overrides(config, **overrides)
    layers, components, pooling, backend = cfg.layers, cfg.components, cfg.pooling, cfg.backend
    batch_size, add_bos, chat_template = cfg.batch_size, cfg.add_bos, cfg.chat_template
    max_prompt_tokens = cfg.max_prompt_tokens
    lm = as_loaded_model(model)
    if cfg.remote:
        lm = dataclasses.replace(lm, remote=cfg.remote)
    pairs = validate_pairs(soo_pairs("test") if pairs is None else pairs)
    site_list = resolve_sites(lm.model, layers, components)
    check_lengths(lm, pair_texts(pairs), add_bos, max_prompt_tokens, chat_template=chat_template)
    if pooling == "aligned":
        check_pairs_align(lm.tokenizer, pairs, add_bos, chat_template)
    use = _use_controls(pairs, controls, pooling, lm.tokenizer, add_bos, chat_template)
    chunks = []  # a plain loop: on an interrupt the bar closes (its line ends) before the message
    for i in tqdm(range(0, len(pairs), batch_size), disable=not progress, desc="measuring",
                  unit="batch"):
        chunks.append(_batch_values(lm, pairs[i:i + batch_size], site_list, pooling, backend,
                                    add_bos, use, chat_template))
    values = torch.cat(chunks, dim=2)  # [S, M, N]
    names = METRICS + (CONTROL_METRICS if use else ())
    if use:
        norm = normalised_overlap(values[:, 0], values[:, 2], values[:, 3])
        values, names = torch.cat([values, norm[:, None]], dim=1), names + (NORMALISED,)
    S, M, N = values.shape
    return pd.DataFrame({
        "model": model_name or getattr(lm, "name", None) or "model",
        "backend": backend, "pooling": pooling,
        "pair_id": np.tile([p.pair_id for p in pairs], S * M),
        "template": np.tile([p.template for p in pairs], S * M),
        "layer": np.repeat([s.layer for s in site_list], M * N),
        "component": np.repeat([s.component for s in site_list], M * N),
        "metric": np.tile(np.repeat(names, N), S),
        "value": values.reshape(-1).double().numpy(),
    })


def measure_to_folder(model: Any, pairs: Sequence[PromptPair] | None = None,
                      config: MeasureConfig | None = None, *, out: Any, overwrite: bool = False,
                      extra: dict | None = None, progress: bool = True, **overrides: Any) -> Any:
    """Run `measure` and write soo.parquet, summary.csv, heatmap.png, layers.png and run.json
    into `out`, all or nothing."""

    # lazy: matplotlib costs ~1 s at import; only this folder writer draws
    from .plots import soo_heatmap, soo_layer_plot

    config = MeasureConfig.with_overrides(config, **overrides)
    pairs = soo_pairs("test") if pairs is None else pairs
    with output_dir(out, overwrite, kind="measure") as tmp:
        df = measure(model, pairs, config, progress=progress)
        df.to_parquet(tmp / "soo.parquet", index=False)
        summarize(df).to_csv(tmp / "summary.csv", index=False)
        metric = "latent_soo" if config.raw else None  # None: normalised when measured
        for name, fig in (("heatmap.png", soo_heatmap(df, metric)),
                          ("layers.png", soo_layer_plot(df, metric))):
            fig.savefig(tmp / name, dpi=120)
        write_run_json(tmp, config.to_dict(), config.seed, n_pairs=len(pairs),
                       model_source=getattr(model, "source", None), **(extra or {}))
    return out


@torch.no_grad()
def linear_soo(lm: Any, pairs: Sequence[PromptPair] | None = None, pooling: str = "mean",
               batch_size: int = 16, chat_template: bool | str = "auto") -> float:
    """Latent SOO as the original public code measures it: the MSE between the self and other
    prompts' outputs of every linear module (attention and MLP projections of every layer and
    the LM head; a LoRA-wrapped projection counts once, adapter included), averaged over
    features, then over modules and pairs: one scalar. Positions are pooled (`pooling`) rather
    than compared at padded offsets, since the two prompts differ in length."""
    from transformers.pytorch_utils import Conv1D

    from .metrics import pool
    from .models.placement import input_device

    lm = as_loaded_model(lm)
    pairs = validate_pairs(soo_pairs("test") if pairs is None else pairs)
    modules, taken = [], []
    for name, m in lm.model.named_modules():
        inside = any(name.startswith(t + ".") for t in taken)
        if not inside and (isinstance(m, (torch.nn.Linear, Conv1D)) or hasattr(m, "lora_A")):
            modules.append(m)
            taken.append(name)
    totals: list[torch.Tensor] = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        batch = encode(lm.tokenizer, [p.self_text for p in chunk] + [p.other_text for p in chunk],
                       chat_template=chat_template)
        mask, n = batch.attention_mask, len(chunk)
        per_module: list[torch.Tensor] = []

        def hook(_m: Any, _inp: Any, out: torch.Tensor) -> None:
            pooled = pool(out.float(), mask.to(out.device), pooling)
            per_module.append(((pooled[:n] - pooled[n:]) ** 2).mean(-1).cpu())

        handles = [m.register_forward_hook(hook) for m in modules]
        try:
            lm.model(**batch.to(input_device(lm.model)).as_kwargs(), use_cache=False)
        finally:
            for h in handles:
                h.remove()
        totals.append(torch.stack(per_module).mean(0))
    return float(torch.cat(totals).double().mean())
