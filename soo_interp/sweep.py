"""Which layer should I train on? A layer ablation of SOO fine-tuning against the sham control.

For every training layer (and seed), `sweep` trains one SOO adapter from the base model, and per
seed one sham adapter (same data, steps and seed; plain LM loss, which does not depend on the
layer), then measures on each tuned model and on the base: the rates of each scenario (log-prob
scoring, mirrored and not), perplexity and
next-token KL to the base on held-out neutral text, and latent SOO at the trained site on the
held-out pairs. One long DataFrame: condition (base|soo|sham), train_layer, seed, scenario,
metric, value, n.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import pandas as pd

from .config import Config
from .data.pairs import PromptPair, soo_pairs
from .data.scenarios import SCENARIOS


@dataclasses.dataclass
class SweepConfig(Config):
    """A layer ablation. Training fields not listed here keep `TrainConfig`'s defaults."""

    positive = ("epochs", "n")

    layers: str | None = None            # "0-3" / None for every layer
    component: str = "attn"
    loss: str = "mse"
    pooling: str = "last"
    seeds: tuple[int, ...] = (0,)
    sham: bool = True
    epochs: int = 15
    lr: float = 1e-4
    scenarios: tuple[str, ...] = SCENARIOS
    n: int = 50                          # prompts per scenario variant (x2 mirrored)


def _behaviour(lm: Any, base: Any, cfg: SweepConfig) -> pd.DataFrame:
    """Deceptive/honest rate per scenario and capability (perplexity, KL to base) of a model."""
    from .evaluation import capability, evaluate

    ev = evaluate(lm, cfg.scenarios, scoring="logprob", n=cfg.n, seed=0, mirrored="both")
    rows = [{"scenario": s, "metric": f"{label}_rate",
             "value": float((g.classification == label).mean()), "n": len(g)}
            for s, g in ev.groupby("scenario") for label in ("deceptive", "honest")]
    who = "base" if lm is base else "tuned"
    cap = capability(base, None if lm is base else lm)
    rows += [{"scenario": None, "metric": r.metric, "value": r.value, "n": r.n_texts}
             for r in cap.itertuples() if r.model == who]
    return pd.DataFrame(rows)


def _site_soo(lm: Any, site: Any, cfg: SweepConfig, heldout: Sequence[PromptPair]) -> pd.DataFrame:
    """Mean latent SOO over the held-out pairs at the trained site (as training logs it)."""
    from .training import latent_soo

    value = latent_soo(lm.model, lm.tokenizer, heldout, site, cfg.pooling)
    return pd.DataFrame([{"scenario": None, "metric": "latent_soo", "value": value,
                          "n": len(heldout)}])


def sweep(model: str, cfg: SweepConfig, pairs: Sequence[PromptPair] | None = None,
          progress: bool = True) -> pd.DataFrame:
    """Train SOO (and sham) adapters at each layer of `model` (a name or path load_model takes)
    and measure every outcome; returns the long DataFrame described in the module docstring."""
    from tqdm.auto import tqdm

    from .models import load_model
    from .models.loading import LoadedModel
    from .models.sites import Site, parse_layers
    from .training import TrainConfig, train_soo

    base = load_model(model)
    pairs = list(pairs) if pairs is not None else soo_pairs("train")
    heldout = soo_pairs("test")
    layers = parse_layers(cfg.layers, base.n_layers)

    def outcomes(lm: Any, behaviour: pd.DataFrame, condition: str, seed: int | None,
                 at: Sequence[int]) -> list[pd.DataFrame]:
        return [pd.concat([behaviour, _site_soo(lm, Site(layer, cfg.component), cfg, heldout)])
                .assign(condition=condition, train_layer=layer, seed=seed) for layer in at]

    def trained(condition: str, layer: int, seed: int) -> LoadedModel:
        lm = load_model(model)
        tcfg = TrainConfig(layer=layer, component=cfg.component, loss=cfg.loss, pooling=cfg.pooling,
                           epochs=cfg.epochs, lr=cfg.lr, seed=seed, sham=condition == "sham")
        res = train_soo(lm, pairs, tcfg, progress=False)
        return LoadedModel(res.model.merge_and_unload().eval(), lm.tokenizer,
                           f"{condition}-L{layer}-s{seed}")

    frames = outcomes(base, _behaviour(base, base, cfg), "base", None, layers)
    # SOO: one run per (layer, seed). Sham: its LM loss and LoRA placement do not depend on the
    # layer, so one run per seed, its latent SOO read at every swept layer.
    runs = [("soo", layer, seed) for layer in layers for seed in cfg.seeds]
    runs += [("sham", layers[0], seed) for seed in cfg.seeds] if cfg.sham else []
    for condition, layer, seed in tqdm(runs, disable=not progress, desc="sweep", unit="run"):
        tuned = trained(condition, layer, seed)
        frames += outcomes(tuned, _behaviour(tuned, base, cfg), condition, seed,
                           [layer] if condition == "soo" else layers)
    df = pd.concat(frames, ignore_index=True)
    return df[["condition", "train_layer", "seed", "scenario", "metric", "value", "n"]]
