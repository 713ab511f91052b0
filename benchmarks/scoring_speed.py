"""Benchmark: log-prob scoring's fast path against the full-logits path, in the same run.

The pretrained SmolLM2-135M-Instruct (offline, `load_model("smollm2-135m-instruct")`) scores
organism-lm evaluation records (`stories.eval_records`, chat template on, batch 16 records, as
the organism-lm build scores them). Methods, on the same token sequences:
  full   every sequence (prompt + completion) in full, logits at every position: the path
         `continuation_logprobs` takes where `fast_logprobs(model)` is False;
  fast   `logprob_scores`: each prompt once (KV cache), logits only at the completion tokens.
`--lora` wraps the model in an unmerged LoRA (organism-lm's adapter shape) first, as the
organism-lm build evaluates it. Time is the best of `--reps` calls after a warm-up, CPU time of
this process (`--clock wall`: wall time); peak RSS is that of a forked child running the method
once (the model's own pages included). Also prints how far the two paths' scores differ.

    OMP_NUM_THREADS=1 python benchmarks/scoring_speed.py [--n 32] [--row burglar] [--reps 2]
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

from _timing import best_of


def _peak_rss_mib(fn) -> float:
    """Peak resident memory (MiB) of a forked child that calls `fn` once."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:
        fn()
        queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    proc = ctx.Process(target=child)
    proc.start()
    peak = queue.get()
    proc.join()
    return peak


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="evaluation records (two sequences each)")
    ap.add_argument("--row", default="burglar", help="organism-lm evaluation row")
    ap.add_argument("--batch-size", type=int, default=16, help="records per batch")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--lora", action="store_true", help="score under an unmerged LoRA adapter")
    args = ap.parse_args(argv)

    import torch

    from soo_interp.evaluation.scoring import (
        _full_logprobs,
        answer_sequences,
        fast_logprobs,
        logprob_scores,
    )
    from soo_interp.models import load_model
    from soo_interp.organism.stories import eval_records

    torch.set_num_threads(args.threads)
    lm = load_model("smollm2-135m-instruct")
    if args.lora:
        from soo_interp.organism.build_lm import LMOrganismConfig, attach_lora

        lm.model = attach_lora(lm.model, LMOrganismConfig()).eval()
    model, tok = lm
    records = eval_records(args.row, args.n)
    seqs, starts = answer_sequences(tok, records, chat_template=True)

    def full() -> list[tuple[float, int]]:
        seqs, starts = answer_sequences(tok, records, chat_template=True)
        with torch.no_grad():
            return _full_logprobs(model, seqs, starts, tok.pad_token_id, 2 * args.batch_size,
                                  False)

    def fast():
        return logprob_scores(lm, records, batch_size=args.batch_size, chat_template=True)

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    t_full, old = best_of(full, args.reps, clock)
    t_fast, new = best_of(fast, args.reps, clock)
    rss = {"full": _peak_rss_mib(full), "fast": _peak_rss_mib(fast)}
    old_h, old_d = [s for s, _ in old[0::2]], [s for s, _ in old[1::2]]
    diff = max(max(abs(a - b) for a, b in zip(old_h, new.logp_honest)),
               max(abs(a - b) for a, b in zip(old_d, new.logp_deceptive)))
    same = sum((h - d > 0) == (m > 0) for h, d, m in zip(old_h, old_d, new.margin))
    prompt = starts[0::2]
    span = [len(q) - s for q, s in zip(seqs, starts)]
    print(f"model: smollm2-135m-instruct{' + unmerged LoRA' if args.lora else ''} "
          f"(fast path: {fast_logprobs(model)}), torch threads {torch.get_num_threads()}, "
          f"{args.clock} time, best of {args.reps}")
    print(f"{len(records)} {args.row} records: prompts {min(prompt)}-{max(prompt)} tokens "
          f"(mean {sum(prompt) / len(prompt):.0f}), completions {min(span)}-{max(span)} tokens; "
          f"batch {args.batch_size} records")
    print(f"{'method':<8}{'seconds':>9}{'records/s':>11}{'vs full':>9}{'peak RSS MiB':>14}")
    for name, t in (("full", t_full), ("fast", t_fast)):
        print(f"{name:<8}{t:>9.2f}{len(records) / t:>11.1f}{t_full / t:>8.2f}x{rss[name]:>14.0f}")
    print(f"max |logp difference| {diff:.2e}; same classification {same}/{len(records)}")
    if diff > 1e-3:
        raise SystemExit(f"the fast path's scores differ from the full path's by {diff:.2e}")


if __name__ == "__main__":
    main()
