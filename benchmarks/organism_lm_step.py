"""Step time of the organism-lm build: every prompt run whole vs each story's shared prefix run
once for its three recipients (`LMOrganismConfig.share_prefix`, `build_lm._grouped_nll`).

The same real training batches (`stories.training_examples`, after the lookup-heavy start, so
four minimal triples a batch), the same LoRA adapter over the same base; each variant does
forward and backward (the optimizer step, the same for both, is left out). Variants are
interleaved batch by batch, so load on the machine hits both alike; the table gives the median
time, the ratio, and the largest difference between the two variants' losses on the same batch
(the two must agree: sharing is exact up to float rounding).

Run: `.venv/bin/python benchmarks/organism_lm_step.py` (the offline smollm2-135m-instruct base,
about 5 min on one thread); `--model DIR` for another base, `--steps N` for more batches.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    from soo_interp.organism.build_lm import (
        LMOrganismConfig,
        answer_loss,
        attach_lora,
        encode,
        load_base,
        story_groups,
    )
    from soo_interp.organism.stories import training_examples

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=8, help="timed batches per variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--phrasing", default="combined")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = LMOrganismConfig(phrasing=args.phrasing)
    if args.model == "smollm2-135m-instruct":
        model, tok = load_base(args.model)
    else:
        from soo_interp import load_model
        model, tok = load_model(args.model)
    model = attach_lora(model, cfg)
    first = cfg.lookup_steps
    examples = training_examples(0, first + args.steps + 1, cfg.batch_size, cfg.lookup_steps,
                                 args.phrasing)
    data = encode(tok, examples)
    times: dict[str, list[float]] = {"whole prompts": [], "shared prefix": []}
    diffs = []
    tokens = []
    for step in range(first, first + args.steps + 1):
        span = slice(step * cfg.batch_size, (step + 1) * cfg.batch_size)
        groups = story_groups(examples[span])
        tokens.append(sum(len(ids) for ids, _ in data[span]))
        losses = {}
        for name, g in (("whole prompts", None), ("shared prefix", groups)):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            loss = answer_loss(model, data[span], tok.pad_token_id, None, g)
            loss.backward()
            if step > first:  # the first batch warms both up
                times[name].append(time.perf_counter() - t0)
            losses[name] = loss.item()
        diffs.append(abs(losses["whole prompts"] - losses["shared prefix"]))
    base = statistics.median(times["whole prompts"])
    print(f"model {args.model}, {args.threads} thread(s), {args.steps} batches of "
          f"{cfg.batch_size} ({statistics.mean(tokens):.0f} tokens a batch on average, "
          f"{len(story_groups(examples[first * cfg.batch_size:(first + 1) * cfg.batch_size]))}"
          " stories of three recipients each)\n")
    print("| variant | median forward+backward s | vs whole prompts |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | {statistics.median(ts) / base:.2f}x |")
    print(f"\nlargest |loss difference| on one batch: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
