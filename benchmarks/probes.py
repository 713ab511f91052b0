"""Benchmark: collecting a probe suite's activations at every layer and site.

Two ways to get the pooled vectors `{Site: [N, D]}` of one suite:
  one_pass     `collect_pooled` with all sites: one traced forward per prompt batch, every
               (layer, site) read in that forward (what `soo-interp probe` does);
  per_site     one `collect_pooled` call per (layer, site): a traced forward per batch for each
               site (each forward still stops early after its site).
Models: tiny random Llama-family models (d_model 128 by default) of several depths, on the
self_vs_other suite (112 prompts). Wall time is the best of `--reps` after a warm-up; the two
methods' activations are checked to be identical.

    python benchmarks/probes.py [--layers 2,4,8] [--d-model 128] [--reps 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import tempfile

from _timing import best_of


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="2,4,8", help="model depths to time")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--suite", default="self_vs_other")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)

    import torch

    from soo_interp.metrics import collect_pooled
    from soo_interp.models import load_model
    from soo_interp.models.sites import resolve_sites
    from soo_interp.models.tiny import build_tiny_model
    from soo_interp.probes.suites import load_suite

    if args.threads:
        torch.set_num_threads(args.threads)
    suite = load_suite(args.suite)
    rows = []
    for n_layers in (int(x) for x in args.layers.split(",")):
        with tempfile.TemporaryDirectory() as d:
            build_tiny_model("llama", d, n_layers=n_layers, d_model=args.d_model, seed=0)
            lm = load_model(d, device=args.device)
        sites = resolve_sites(lm.model)
        kw = dict(pooling="last", batch_size=args.batch_size)
        t_one, one = best_of(lambda: collect_pooled(lm, suite.texts, sites, **kw), args.reps)
        t_per, per = best_of(lambda: {s: collect_pooled(lm, suite.texts, [s], **kw)[s]
                                    for s in sites}, args.reps)
        same = all(torch.equal(one[s], per[s]) for s in sites)
        rows.append((n_layers, len(sites), t_one, t_per, same))
    print(f"suite {suite.name}: {len(suite.examples)} prompts, batch {args.batch_size}, tiny "
          f"llama d_model {args.d_model}, device {lm.device}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'layers':>6} {'sites':>5} {'one_pass s':>10} {'per_site s':>10} {'ratio':>6} "
          f"{'identical':>9}")
    for n_layers, n_sites, t_one, t_per, same in rows:
        print(f"{n_layers:>6} {n_sites:>5} {t_one:>10.3f} {t_per:>10.3f} {t_per / t_one:>6.1f} "
              f"{str(same):>9}")


if __name__ == "__main__":
    main()
