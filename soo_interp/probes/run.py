"""The probe pipeline behind `soo-interp probe`: activations -> grouped-CV separability ->
final probes -> signatures, and the base-vs-tuned comparison."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Config
from ..errors import ProbeError, check_choice
from ..metrics import VECTOR_POOLINGS
from ..models.sites import COMPONENTS, Site, resolve_sites
from ..models.wrap import as_loaded_model
from ..runs import check_out_dir, output_dir, write_run_json
from ..tracing import BACKENDS, remote_backend
from .activations import ActivationSet, collect_activations, parse_site
from .detectors import Detector, detector_kinds, make_detector, single_threaded
from .separability import check_foldable, separability, summarize_separability, transfer
from .signatures import (
    COLUMNS,
    overlap_without_indistinguishability,
    relocation,
    site_aurocs,
    surviving_deception_direction,
)
from .suites import Suite, resolve_suites

log = logging.getLogger(__name__)
SELF_OTHER, DECEPTION = "self_vs_other", "honest_vs_deceptive"


@dataclasses.dataclass
class ProbeConfig(Config):
    """What `probe` runs. Defaults: self_vs_other, every layer, all components, last-token pooling,
    logistic and mean-difference probes, 5 grouped folds."""

    positive = ("folds", "batch_size")
    choices = {"pooling": VECTOR_POOLINGS, "backend": BACKENDS}

    suites: tuple[str, ...] = (SELF_OTHER,)   # names, suite folders, or ("all",)
    layers: str | tuple[int, ...] | None = None
    components: tuple[str, ...] = COMPONENTS
    pooling: str = "last"
    probes: tuple[str, ...] = ("logistic", "mean_diff")
    folds: int = 5
    backend: str = "hooks"
    batch_size: int = 16
    add_bos: bool | None = None
    chat_template: bool | str = "auto"         # prompts as a chat turn (auto: when the model has one)
    cache_dir: str | None = None               # reuse traced activations across runs
    seed: int = 0
    remote: bool | str = False                 # collect activations through nnsight remote (NDIF)

    def check(self) -> None:
        self.backend = remote_backend(self.remote, self.backend)  # run.json says what ran


@dataclasses.dataclass
class ProbeResults:
    """Everything `fit_probes` computes. `separability`: fold-level long DataFrame; `summary`:
    mean and CI over folds; `detectors[(suite, site, kind)]`: probes fit on all examples;
    `transfer`: for suites mixing sources (contrast file + scenarios), each source's probe
    scored on the other's groups (see `separability.transfer`)."""

    separability: pd.DataFrame
    summary: pd.DataFrame
    signatures: pd.DataFrame
    detectors: dict[tuple[str, Site, str], Detector]
    activations: dict[str, ActivationSet]
    transfer: pd.DataFrame


def check_config(cfg: ProbeConfig) -> list[Suite]:
    """Load the configured suites and refuse what cannot run (before any model is loaded)."""
    suites = resolve_suites(cfg.suites)
    for kind in cfg.probes or (None,):
        check_choice("probe kind", kind, detector_kinds(), ProbeError)

    for s in suites:
        check_foldable(s.y, s.groups, cfg.folds, f"suite {s.name!r}")
    return suites


def fit_probes(model: Any, config: ProbeConfig | None = None, *, model_name: str | None = None,
               progress: bool = True, **overrides: Any) -> ProbeResults:
    """Probe `model` (a `LoadedModel` or any model `as_loaded_model` accepts) on the configured
    suites at every (layer, site).

    Keyword overrides set config fields, e.g. `fit_probes(lm, suites=("all",), folds=4)`.
    """
    cfg = ProbeConfig.with_overrides(config, **overrides)
    lm = as_loaded_model(model)
    if cfg.remote:  # activations are traced remotely; only pooled vectors come back
        lm = dataclasses.replace(lm, remote=cfg.remote)
    suites = check_config(cfg)
    sites = resolve_sites(lm.model, cfg.layers, cfg.components)
    name = model_name or getattr(lm, "name", None) or "model"
    frames, sigs, transfers, detectors, sets = [], [], [], {}, {}
    for suite in suites:
        acts = collect_activations(lm, suite, sites, cfg.pooling, cfg.backend, cfg.batch_size,
                                   cfg.add_bos, cfg.cache_dir, name, progress,
                                   cfg.chat_template)
        sets[suite.name] = acts
        y, groups = suite.y, suite.groups
        df = separability(acts.acts, y, groups, cfg.probes, cfg.folds, cfg.seed,
                          model=name, suite=suite.name)
        frames.append(df)
        if len(set(suite.origins)) > 1:
            transfers.append(transfer(acts.acts, y, groups, suite.origins, cfg.probes, cfg.seed,
                                      model=name, suite=suite.name))
        with single_threaded():
            fitted = {(site, kind): make_detector(kind, seed=cfg.seed).fit(X, y)
                      for site, X in acts.acts.items() for kind in cfg.probes}
        for (site, kind), det in fitted.items():
            det.meta = {"model": name, "suite": suite.name, "site": str(site),
                        "labels": list(suite.label_names), "pooling": cfg.pooling,
                        "prompts_hash": suite.prompts_hash()}
            detectors[(suite.name, site, kind)] = det
        if suite.name == SELF_OTHER and "logistic" in cfg.probes:
            sigs.append(overlap_without_indistinguishability(
                acts.acts, y, [e.pair_id for e in suite.examples],
                site_aurocs(df, suite.name), model=name))
    sep = pd.concat(frames, ignore_index=True)
    signatures = pd.concat(sigs, ignore_index=True) if sigs else pd.DataFrame(columns=COLUMNS)
    tr = pd.concat(transfers, ignore_index=True) if transfers else pd.DataFrame()
    return ProbeResults(sep, summarize_separability(sep), signatures, detectors, sets, tr)


def _save_figures(folder: Path, res: ProbeResults | None,
                  signatures: pd.DataFrame | None = None) -> None:
    # lazy: matplotlib costs ~1 s at import; only this folder writer draws
    from ..plots import separability_heatmap, separability_layer_plot, signature_plot

    figs = []
    if res is not None:
        sep = res.separability
        figs.append(("separability.png", separability_layer_plot(res.summary)))
        figs += [(f"heatmap_{s}.png", separability_heatmap(sep, s))
                 for s in sorted(sep["suite"].unique())]
    if signatures is not None and not signatures.empty:
        figs.append(("signatures.png", signature_plot(signatures)))
    for name, fig in figs:
        fig.savefig(folder / name, dpi=110)


def probe_to_folder(model: Any, config: ProbeConfig | None = None, *, out: str | Path,
                    overwrite: bool = False, extra: dict | None = None,
                    model_name: str | None = None, progress: bool = True,
                    **overrides: Any) -> Path:
    """Run `fit_probes` and write, all or nothing: probes.parquet, summary.csv,
    signatures.csv, transfer.parquet (suites mixing sources),
    probes/<suite>/<site>.<kind>.{safetensors,json}, activations/<suite>/, separability.png,
    heatmap_<suite>.png, run.json."""
    config = ProbeConfig.with_overrides(config, **overrides)
    check_out_dir(out, overwrite, kind="probe")
    name = model_name or getattr(model, "name", None) or "model"
    res = fit_probes(model, config, model_name=name, progress=progress)
    with output_dir(out, overwrite, kind="probe") as tmp:
        res.separability.to_parquet(tmp / "probes.parquet", index=False)
        res.summary.to_csv(tmp / "summary.csv", index=False)
        res.signatures.to_csv(tmp / "signatures.csv", index=False)
        if not res.transfer.empty:
            res.transfer.to_parquet(tmp / "transfer.parquet", index=False)
        for (suite, site, kind), det in res.detectors.items():
            (tmp / "probes" / suite).mkdir(parents=True, exist_ok=True)
            det.save(tmp / "probes" / suite / f"{site}.{kind}")
        for suite, acts in res.activations.items():
            acts.save(tmp / "activations" / suite)
        _save_figures(tmp, res)
        write_run_json(tmp, config.to_dict(), config.seed, model=name,
                       model_source=getattr(model, "source", None),
                       suites=sorted(res.activations), **(extra or {}))
    return Path(out)


def _load_run(folder: Path) -> tuple[dict, pd.DataFrame, dict[str, ActivationSet]]:
    folder = Path(folder)
    for f in ("run.json", "probes.parquet"):
        if not (folder / f).exists():
            raise ProbeError(f"{folder} is not a probe run ({f} missing); give folders written "
                             "by `soo-interp probe --out`")
    meta = json.loads((folder / "run.json").read_text())
    sets = {p.name: ActivationSet.load(p) for p in sorted((folder / "activations").glob("*"))
            if p.is_dir()}
    return meta, pd.read_parquet(folder / "probes.parquet"), sets


def compare_runs(base_run: str | Path, tuned_run: str | Path,
                 trained_site: Site | str | None = None, folds: int | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """All three signatures between a base-model and a tuned-model probe run (same suites,
    sites and pooling). Returns the long signatures DataFrame; its `model` column is 'base' or
    'tuned' (the runs' model names are in their run.json)."""
    if isinstance(trained_site, str):  # a bad site fails before any folder is read
        trained_site = parse_site(trained_site)
    bmeta, bsep, bsets = _load_run(Path(base_run))
    _, tsep, tsets = _load_run(Path(tuned_run))
    return compare_results((bsep, bsets), (tsep, tsets), trained_site,
                           folds or int(bmeta["config"]["folds"]), seed)


def compare_results(base: Any, tuned: Any, trained_site: Site | str | None = None,
                    folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """`compare_runs` on results in memory: `base` and `tuned` are `ProbeResults` (from
    `fit_probes`) or (separability, activation sets) tuples."""
    if isinstance(trained_site, str):
        trained_site = parse_site(trained_site)
    bsep, bsets = (base.separability, base.activations) if isinstance(base, ProbeResults) else base
    tsep, tsets = (tuned.separability, tuned.activations) if isinstance(tuned, ProbeResults) \
        else tuned
    shared = sorted(set(bsets) & set(tsets))
    for s in shared:
        b, t = bsets[s], tsets[s]
        if b.suite.prompts_hash() != t.suite.prompts_hash() or b.pooling != t.pooling:
            raise ProbeError(f"suite {s!r} differs between the runs (prompts or pooling); "
                             "probe both models with the same suite and --pooling")
        db, dt = (next(iter(x.acts.values())).shape[1] for x in (b, t))
        if db != dt:
            raise ProbeError(f"the base run's probes were fit on hidden size {db} but the tuned "
                             f"run has hidden size {dt}; compare a model with its own fine-tune")
    out = []
    if SELF_OTHER in shared:
        for role, sep, sets in (("base", bsep, bsets), ("tuned", tsep, tsets)):
            a = sets[SELF_OTHER]
            out.append(overlap_without_indistinguishability(
                a.acts, a.suite.y, [e.pair_id for e in a.suite.examples],
                site_aurocs(sep, SELF_OTHER), model=role))
        out.append(relocation(site_aurocs(bsep, SELF_OTHER), site_aurocs(tsep, SELF_OTHER),
                              trained_site, model="tuned"))
    if DECEPTION in shared:
        b, t = bsets[DECEPTION], tsets[DECEPTION]
        common = [s for s in b.sites if s in t.acts]
        out.append(surviving_deception_direction(
            b.subset(common).acts, t.subset(common).acts, b.suite.y, b.suite.groups, folds,
            seed, model="tuned"))
    if not out:
        raise ProbeError(f"the runs share neither {SELF_OTHER!r} nor {DECEPTION!r}; probe both "
                         "models with --suite all (or those suites)")
    missing = {SELF_OTHER, DECEPTION} - set(shared)
    if missing:
        log.warning("signatures need suite(s) %s in both runs; those signatures are skipped",
                    sorted(missing))
    return pd.concat(out, ignore_index=True)


def compare_to_folder(base_run: str | Path, tuned_run: str | Path, out: str | Path,
                      trained_site: str | None = None, folds: int | None = None, seed: int = 0,
                      overwrite: bool = False) -> Path:
    """`compare_runs` written as signatures.csv, signatures.png and run.json (all or nothing)."""
    check_out_dir(out, overwrite, kind="signatures")
    sig = compare_runs(base_run, tuned_run, trained_site, folds, seed)
    with output_dir(out, overwrite, kind="signatures") as tmp:
        sig.to_csv(tmp / "signatures.csv", index=False)
        _save_figures(tmp, None, sig)
        models = {k: json.loads((Path(r) / "run.json").read_text()).get("model")
                  for k, r in (("base_model", base_run), ("tuned_model", tuned_run))}
        write_run_json(tmp, {"base_run": str(base_run), "tuned_run": str(tuned_run),
                             "trained_site": trained_site, "folds": folds}, seed, **models)
    return Path(out)
