"""`soo-interp compare`: before/after geometry of a base model and its adapter, per layer and
component (latent SOO change, self-other cosine, base-vs-tuned CKA)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..geometry import CompareConfig
    from .common import add_config_args, add_model_args, add_output_args, add_quiet

    p = sub.add_parser("compare", help="before/after geometry of a base model and an adapter",
                       description=__doc__)
    add_model_args(p)
    add_output_args(p)
    add_quiet(p)
    p.add_argument("--pairs", default=None, help="pairs file (default: built-in test pairs)")
    add_config_args(p, CompareConfig, components={"help": "comma list of attn,mlp,resid (default all three)"})
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.pairs import load_pairs, soo_pairs
    from ..errors import ConfigError
    from ..geometry import CompareConfig, compare_models
    from ..models import load_model
    from ..plots import geometry_plot
    from ..runs import check_out_dir, output_dir, set_seed, write_run_json
    from .common import config_from_args, load_kwargs, say

    if not args.adapter:
        raise ConfigError("compare needs --adapter DIR (the tuned model is the base + adapter)")
    check_out_dir(args.out, args.overwrite, kind="compare")
    cfg = config_from_args(CompareConfig, args)
    set_seed(cfg.seed)
    pairs = load_pairs(args.pairs) if args.pairs else soo_pairs("test")
    kw = load_kwargs(args)
    base = load_model(args.model, **kw)
    tuned = load_model(args.model, adapter=args.adapter, **kw)
    with output_dir(args.out, args.overwrite, kind="compare") as tmp:
        df = compare_models(base, tuned, pairs, cfg, progress=not args.quiet)
        df.to_parquet(tmp / "geometry.parquet", index=False)
        fig = geometry_plot(df)
        fig.savefig(tmp / "geometry.png", dpi=120)
        write_run_json(tmp, cfg.to_dict(), cfg.seed, model=args.model, adapter=args.adapter,
                       model_source=base.source,
                       pairs=args.pairs or "builtin:test")
    say(args, f"wrote {args.out}/geometry.parquet, geometry.png, run.json")
