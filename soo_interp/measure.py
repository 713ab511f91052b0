"""Latent SOO of prompt pairs at every (layer, site): the toolkit's measurement entry point."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pandas as pd
import torch

from .config import Config, require_positive
from .data.pairs import PromptPair, soo_pairs, validate_pairs
from .metrics import METRICS, check_alignable, pair_metrics, pool, pooled_metrics
from .models.sites import COMPONENTS, resolve_sites
from .models.tokenize import check_lengths, encode, pair_texts, token_ids
from .stats import summarize
from .tracing import trace_sites


@dataclasses.dataclass
class MeasureConfig(Config):
    """What `measure` runs. Defaults: every layer, all three components, last-token pooling."""

    positive = ("batch_size", "max_prompt_tokens")

    layers: str | None = None           # "0-3,5" or None for all
    components: tuple[str, ...] = COMPONENTS
    pooling: str = "last"
    backend: str = "hooks"
    batch_size: int = 16                # pairs per forward (2x prompts)
    add_bos: bool | None = None         # None: prepend BOS when the tokenizer has one
    seed: int = 0
    max_prompt_tokens: int | None = None  # refuse longer prompts (always: the model's context)


def measure(lm: Any, pairs: Sequence[PromptPair] | None = None, *, layers: str | Sequence[int]
            | None = None, components: str | Sequence[str] = COMPONENTS, pooling: str = "last",
            backend: str = "hooks", batch_size: int = 16, add_bos: bool | None = None,
            progress: bool = True, model_name: str | None = None,
            max_prompt_tokens: int | None = None) -> pd.DataFrame:
    """Latent SOO (and cosine) of each pair at each (layer, site), as a long DataFrame.

    `lm` is a `LoadedModel` (from `load_model`). Self and other prompts of a batch of pairs run
    in one forward; metrics are reduced inside the trace, so memory does not grow with depth.
    Without `pairs`, the built-in held-out SOO pairs are used. Columns: model, backend, pooling,
    pair_id, template, layer, component, metric, value.
    """
    import numpy as np
    from tqdm.auto import tqdm

    require_positive(batch_size=batch_size)
    pairs = validate_pairs(soo_pairs("test") if pairs is None else pairs)
    site_list = resolve_sites(lm.model, layers, components)
    check_lengths(lm, pair_texts(pairs), add_bos, max_prompt_tokens)
    tok = lm.tokenizer
    if pooling == "aligned":
        lens = [(len(token_ids(tok, p.self_text, add_bos)), len(token_ids(tok, p.other_text, add_bos)))
                for p in pairs]
        check_alignable([p.pair_id for p in pairs], *zip(*lens))
    chunks: list[torch.Tensor] = []  # per batch: [sites, metrics, pairs]
    for start in tqdm(range(0, len(pairs), batch_size), disable=not progress, desc="measuring",
                      unit="batch"):
        chunk = pairs[start:start + batch_size]
        B = len(chunk)
        batch = encode(tok, [p.self_text for p in chunk] + [p.other_text for p in chunk], add_bos)

        if pooling == "aligned":  # positions compared pairwise: reduce each site in the trace
            def reduce(_site, acts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                vals = pair_metrics(acts[:B], acts[B:], mask[:B], mask[B:], pooling)
                return torch.stack([vals[m] for m in METRICS]).detach()
        else:  # keep one pooled vector per prompt and site; metrics for all sites at once after
            def reduce(_site, acts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                return pool(acts, mask, pooling).detach()

        with torch.no_grad():
            res = trace_sites(lm, batch, site_list, reduce, backend)
            out = torch.stack([res[s] for s in site_list])  # [S, M, B] or [S, 2B, D]
            if pooling != "aligned":
                vals = pooled_metrics(out[:, :B], out[:, B:])
                out = torch.stack([vals[m] for m in METRICS], dim=1)
        chunks.append(out.cpu())
    values = torch.cat(chunks, dim=2)  # [S, M, N]
    S, M, N = values.shape
    return pd.DataFrame({
        "model": model_name or getattr(lm, "name", None) or "model",
        "backend": backend, "pooling": pooling,
        "pair_id": np.tile([p.pair_id for p in pairs], S * M),
        "template": np.tile([p.template for p in pairs], S * M),
        "layer": np.repeat([s.layer for s in site_list], M * N),
        "component": np.repeat([s.component for s in site_list], M * N),
        "metric": np.tile(np.repeat(METRICS, N), S),
        "value": values.reshape(-1).double().numpy(),
    })


def measure_to_folder(lm: Any, pairs: Sequence[PromptPair], config: MeasureConfig, out: Any,
                      overwrite: bool = False, extra: dict | None = None,
                      progress: bool = True) -> Any:
    """Run `measure` and write soo.parquet, summary.csv, heatmap.png, layers.png and run.json
    into `out`, all or nothing."""

    from .plots import soo_heatmap, soo_layer_plot
    from .runs import output_dir, write_run_json

    with output_dir(out, overwrite, kind="measure") as tmp:
        df = measure(lm, pairs, layers=config.layers, components=config.components,
                     pooling=config.pooling, backend=config.backend,
                     batch_size=config.batch_size, add_bos=config.add_bos, progress=progress,
                     max_prompt_tokens=config.max_prompt_tokens)
        df.to_parquet(tmp / "soo.parquet", index=False)
        summarize(df).to_csv(tmp / "summary.csv", index=False)
        for name, fig in (("heatmap.png", soo_heatmap(df)), ("layers.png", soo_layer_plot(df))):
            fig.savefig(tmp / name, dpi=120)
        write_run_json(tmp, config.to_dict(), config.seed, n_pairs=len(pairs), **(extra or {}))
    return out
