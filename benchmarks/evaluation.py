"""Benchmark: cost of the two deception scorers, on the same prompts and model.

A tiny random Llama-family model (default 4 layers, d_model 128) and 64 burglar prompts
(32 sampled, both option orders). Methods:
  generate_single    greedy generation one prompt at a time (the published code's loop);
  generate_batched   `generate_responses` with left-padded batches;
  logprob            `logprob_scores` (one right-padded forward per batch, no generation).
Wall time is the best of `--reps` runs after a warm-up. Also reports whether batched and
one-at-a-time generation produced identical responses (they should: greedy, padding masked).

    python benchmarks/evaluation.py [--layers 4] [--d-model 128] [--n 32] [--reps 2]
"""
from __future__ import annotations

import argparse
import tempfile

from _timing import best_of


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n", type=int, default=32, help="sampled prompts (x2 orders)")
    ap.add_argument("--max-new-tokens", type=int, default=75)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)

    import torch

    from soo_interp.data.scenarios import generate_scenarios
    from soo_interp.evaluation import generate_responses, logprob_scores
    from soo_interp.models import load_model
    from soo_interp.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as d:
        build_tiny_model("llama", d, n_layers=args.layers, d_model=args.d_model, seed=0)
        lm = load_model(d, device=args.device)
    records = generate_scenarios("burglar", args.n, seed=0, mirrored="both")
    gen = dict(max_new_tokens=args.max_new_tokens)
    t_single, single = best_of(lambda: generate_responses(lm, records, batch_size=1, **gen),
                             args.reps)
    t_batched, batched = best_of(
        lambda: generate_responses(lm, records, batch_size=args.batch_size, **gen), args.reps)
    t_lp, _ = best_of(lambda: logprob_scores(lm, records, batch_size=args.batch_size), args.reps)
    same = (single["response"] == batched["response"]).mean()
    device = lm.device
    print(f"model: tiny llama, {args.layers} layers, d_model {args.d_model}, device {device}, "
          f"torch threads {torch.get_num_threads()}; {len(records)} prompts, "
          f"{args.max_new_tokens} new tokens, batch {args.batch_size}, best of {args.reps}")
    print(f"mean new tokens per response: {batched['n_new_tokens'].mean():.1f}; "
          f"batched == one-at-a-time responses: {100 * same:.1f}%")
    print(f"{'method':<18}{'wall s':>9}{'prompts/s':>11}{'vs single':>11}{'vs batched':>12}")
    for name, t in (("generate_single", t_single), ("generate_batched", t_batched),
                    ("logprob", t_lp)):
        print(f"{name:<18}{t:>9.2f}{len(records) / t:>11.1f}{t_single / t:>10.1f}x"
              f"{t_batched / t:>11.1f}x")


if __name__ == "__main__":
    main()
