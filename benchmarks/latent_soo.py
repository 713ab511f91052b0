"""Benchmark: cost of measuring latent SOO at every layer x {attn, mlp, resid}.

Compares, on one tiny Llama-family model (random weights, >= 12 layers) and 52 built-in pairs:
  bare        the batched forward of the same tokens, nothing traced (the baseline);
  hooks / nnsight / transformer_lens   `soo_interp.measure` with each backend;
  cache_all   caching every site's full activations, then computing the metric;
  published   a re-implementation of the published method: one forward per prompt, hooks
              registered on every nn.Linear at each call and never removed.
Wall time: the best of `--reps` runs after a warm-up, the methods taking turns in one process
(each on its own copy of the model). Peak memory: each method in its own subprocess, the rise of
the process's peak RSS (VmHWM, reset via /proc/self/clear_refs) over its RSS just before one
warmed-up run, on CPU. Prints a table of ratios to the bare forward.

    python benchmarks/latent_soo.py [--layers 12] [--d-model 256] [--reps 3]
    python benchmarks/latent_soo.py --model smollm2-135m-instruct --pairs 26 --reps 2

`--model` runs it on any model `load_model` takes (a built-in name, a folder) instead of the tiny
random one; `--pairs` takes fewer of the 52 pairs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# glibc returns every allocation of 64 KiB or more to the OS when freed, so RSS follows the live
# tensors instead of the allocator's cache.
MALLOC_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
METHODS = ("bare", "hooks", "nnsight", "transformer_lens", "cache_all", "published")


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _make(method: str, model_dir: str, batch_size: int, n_pairs: int = 52):
    """The zero-argument callable that runs `method` once over all 52 pairs, on its own copy of
    the model (TransformerLens switches its model to eager attention, which must not leak)."""
    import torch

    from soo_interp import load_model, measure, soo_pairs
    from soo_interp.metrics import pair_metrics
    from soo_interp.models.sites import resolve_sites, site_module
    from soo_interp.models.tokenize import encode, token_ids
    from soo_interp.tracing import first_tensor

    torch.set_num_threads(1)
    lm = load_model(model_dir)
    pairs = (soo_pairs("train") + soo_pairs("test"))[:n_pairs]
    sites = resolve_sites(lm.model)
    batches = [encode(lm.tokenizer, [p.self_text for p in pairs[i:i + batch_size]]
                      + [p.other_text for p in pairs[i:i + batch_size]])
               for i in range(0, len(pairs), batch_size)]

    def bare():
        with torch.no_grad():
            for b in batches:
                lm.model(**b.as_kwargs(), use_cache=False)

    def traced(backend):
        # the same tokens as `bare` (self and other prompts only): the control prompts of the
        # normalised overlap would double them
        return lambda: measure(lm, pairs, backend=backend, batch_size=batch_size, progress=False,
                               controls=False)

    def cache_all():
        with torch.no_grad():
            for b in batches:
                store = {}
                hs = [site_module(lm.model, s).register_forward_hook(
                    lambda m, i, o, s=s: store.__setitem__(s, first_tensor(o).clone()))
                    for s in sites]
                lm.model(**b.as_kwargs(), use_cache=False)
                for h in hs:
                    h.remove()
                B = b.input_ids.shape[0] // 2
                for s in sites:
                    pair_metrics(store[s][:B], store[s][B:], b.attention_mask[:B],
                                 b.attention_mask[B:], "last")

    def published():
        # One forward per prompt; hooks on every nn.Linear registered at each call, never removed.
        linears = [(n, m) for n, m in lm.model.named_modules() if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for p in pairs:
                acts = []
                for text in (p.self_text, p.other_text):
                    store: dict = {}
                    for n, m in linears:
                        m.register_forward_hook(lambda mod, i, o, n=n, store=store:
                                                store.__setitem__(n, o.detach()))
                    lm.model(input_ids=torch.tensor([token_ids(lm.tokenizer, text)]))
                    acts.append(store)
                for n, _ in linears:
                    a, b = acts[0][n], acts[1][n]
                    L = min(a.shape[1], b.shape[1])
                    torch.mean((a[:, :L] - b[:, :L]) ** 2)

    fn = {"bare": bare, "hooks": traced("hooks"), "nnsight": traced("nnsight"),
          "transformer_lens": traced("transformer_lens"), "cache_all": cache_all,
          "published": published}[method]

    def run_once():
        fn()
        if method == "published":  # each measurement pass starts from a hook-free model
            for _, m in lm.model.named_modules():
                m._forward_hooks.clear()

    return run_once


def _peak_memory(method: str, model_dir: str, batch_size: int, n_pairs: int) -> dict:
    """Peak RSS rise of one warmed-up run, in this (fresh) process."""
    import torch

    torch.set_num_threads(1)
    run = _make(method, model_dir, batch_size, n_pairs)
    run()  # warm-up (and TransformerLens/nnsight wrapper construction)
    Path("/proc/self/clear_refs").write_text("5")
    rss0 = _rss_kb("VmRSS")
    run()
    return {"method": method, "peak_mb": (_rss_kb("VmHWM") - rss0) / 1024}


def _timings(model_dir: str, batch_size: int, reps: int, n_pairs: int) -> dict[str, float]:
    """Best wall time per method, the methods taking turns rep by rep so that load on a shared
    machine hits them alike."""
    import torch

    torch.set_num_threads(1)
    runs = {m: _make(m, model_dir, batch_size, n_pairs) for m in METHODS}
    for run in runs.values():
        run()  # warm-up
    best = {m: float("inf") for m in METHODS}
    for _ in range(reps):
        for m, run in runs.items():
            t = time.perf_counter()
            run()
            best[m] = min(best[m], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=26, help="pairs per forward")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=52, help="how many of the 52 built-in pairs")
    ap.add_argument("--model", default=None,
                    help="a model load_model takes (default: a tiny random Llama)")
    ap.add_argument("--method", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        print(json.dumps(_peak_memory(args.method, args.model_dir, args.batch_size, args.pairs)))
        return
    from soo_interp.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as d:
        model_dir = args.model or str(build_tiny_model(
            "llama", Path(d) / "m", n_layers=args.layers, d_model=args.d_model, n_heads=8, seed=0))
        rows = []
        for m in METHODS:
            out = subprocess.run([sys.executable, __file__, "--method", m, "--model-dir", model_dir,
                                  "--batch-size", str(args.batch_size), "--pairs", str(args.pairs)],
                                 check=True, capture_output=True, text=True, env=MALLOC_ENV).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        seconds = _timings(model_dir, args.batch_size, args.reps, args.pairs)
        for r in rows:
            r["seconds"] = seconds[r["method"]]
    base = rows[0]
    what = args.model or f"tiny llama: {args.layers} layers, d_model {args.d_model}"
    print(f"{what}, {args.pairs} pairs, all sites, batch {args.batch_size} pairs, CPU 1 thread, "
          f"best of {args.reps}")
    print(f"{'method':<18}{'seconds':>10}{'x bare':>9}{'peak MB':>10}{'x bare':>9}")
    for r in rows:
        print(f"{r['method']:<18}{r['seconds']:>10.3f}{r['seconds'] / base['seconds']:>9.2f}"
              f"{r['peak_mb']:>10.2f}{r['peak_mb'] / base['peak_mb']:>9.2f}")
    pub = next(r for r in rows if r["method"] == "published")
    for r in rows[1:4]:
        print(f"published / {r['method']}: {pub['seconds'] / r['seconds']:.1f}x slower")
    cache = next(r for r in rows if r["method"] == "cache_all")
    for r in rows[1:4]:
        print(f"cache_all peak / {r['method']} peak: {cache['peak_mb'] / r['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
