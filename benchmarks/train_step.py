"""Step time and peak memory of the SOO trainer's step against the reference recipe.

Model: a tiny random Llama (default 16 layers, d_model 256, byte-level BPE vocab of 512) with the
target layer in the middle; LoRA r=8 on q_proj/v_proj (the paper's setting); 4 pairs per step.

Variants (each: forward, backward, AdamW step on the same LoRA parameters):
- `ours mse`:  self+other in ONE batched forward that stops after the target layer's o_proj
  (`soo_interp.training.losses.pair_losses`), MSE at the last token.
- `ours mse (full forward)`: the same loss without stopping early (what stopping buys).
- `ours kl_logits`: one batched full forward, KL between last-token next-token distributions.
- `reference (pad 128)`: the public code's recipe: two separate full forwards (self, other), each
  padded to 128 tokens, KL between the logit distributions over all positions.
- `reference (pad longest)`: the same recipe padded only to the longest prompt (a fairer baseline).

Time: median over `--steps` steps after `--warmup`, variants interleaved round-robin so machine
load hits all alike. Memory (CPU, Linux): each variant runs alone in a fresh subprocess; after
setup and one warm-up step, the kernel's peak-RSS counter is reset (`/proc/self/clear_refs` = 5)
and we report VmHWM (peak resident set) minus VmRSS at the reset, over 3 steps: the extra resident
memory a step needs. The subprocess runs with glibc's `MALLOC_MMAP_THRESHOLD_=65536` and
`MALLOC_TRIM_THRESHOLD_=0`, so freed tensors go back to the OS and RSS follows live memory.

Run: `.venv/bin/python benchmarks/train_step.py` (about a minute on 1 CPU thread).
`--model NAME` runs it on a model `load_model` takes (e.g. `smollm2-135m-instruct`, whose
prompts are chat-formatted by default) with its middle layer as the target.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

VARIANTS = ("ours mse", "ours mse (full forward)", "ours kl_logits", "reference (pad 128)",
            "reference (pad longest)")


def setup(args: argparse.Namespace):
    """The model with a fresh LoRA adapter, an optimizer, and the step functions."""
    from peft import LoraConfig, get_peft_model

    from soo_interp import load_model, soo_pairs
    from soo_interp.models.sites import Site
    from soo_interp.models.tiny import build_tiny_model
    from soo_interp.models.tokenize import Batch, encode
    from soo_interp.training import TrainConfig
    from soo_interp.training.losses import pair_losses

    torch.manual_seed(0)
    if args.model_dir is None:
        args.model_dir = tempfile.mkdtemp(prefix="soo-bench-")
        build_tiny_model("llama", args.model_dir, n_layers=args.layers, d_model=args.d_model,
                         n_heads=8)
    lm = load_model(args.model_dir)
    args.layers = lm.n_layers
    model = get_peft_model(lm.model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.0,
                                                target_modules=["q_proj", "v_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    pairs = soo_pairs("train")[:args.pairs]
    selfs, others = [p.self_text for p in pairs], [p.other_text for p in pairs]
    site = Site(args.layers // 2, "attn")
    n = len(pairs)

    def ours(loss: str, stop_early: bool):
        cfg = TrainConfig(layer=site.layer, loss=loss)

        def step() -> None:
            batch = encode(lm.tokenizer, selfs + others)
            out = pair_losses(model, batch, n, cfg, site, stop_early=stop_early)
            out["objective"].mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    def padded(texts: list[str], length: int | None) -> Batch:
        b = encode(lm.tokenizer, texts)
        if length is None:
            return b
        extra = length - b.input_ids.shape[1]
        return Batch(F.pad(b.input_ids, (0, extra), value=lm.tokenizer.pad_token_id),
                     F.pad(b.attention_mask, (0, extra), value=0))

    def reference(length: int | None):
        def step() -> None:
            s, o = padded(selfs, length), padded(others, length)
            ls = model(**s.as_kwargs(), use_cache=False).logits
            lo = model(**o.as_kwargs(), use_cache=False).logits
            T = min(ls.shape[1], lo.shape[1])
            loss = F.kl_div(F.log_softmax(ls[:, :T], -1), F.softmax(lo[:, :T], -1),
                            reduction="batchmean")
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return step

    return {"ours mse": ours("mse", True), "ours mse (full forward)": ours("mse", False),
            "ours kl_logits": ours("kl_logits", False), "reference (pad 128)": reference(128),
            "reference (pad longest)": reference(None)}


def time_all(args: argparse.Namespace) -> dict[str, list[float]]:
    steps = setup(args)
    for fn in steps.values():
        for _ in range(args.warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.steps):
        for name, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def _vm(field: str) -> int:
    return int(re.search(rf"Vm{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())[1])


def memory_of(args: argparse.Namespace, variant: str) -> float:
    """Extra peak RSS (MiB) of `variant`'s steps, in this (fresh) process."""
    fn = setup(args)[variant]
    fn()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _vm("RSS")
    for _ in range(3):
        fn()
    return (_vm("HWM") - base) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default=None, dest="model_dir",
                   help="a model load_model takes (default: a tiny random Llama)")
    p.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:
        print(json.dumps({"mib": memory_of(args, args.memory_of)}))
        return
    times = time_all(args)
    mem = {}
    for v in VARIANTS:
        cmd = [sys.executable, __file__, "--memory-of", v, "--layers", str(args.layers),
               "--d-model", str(args.d_model), "--pairs", str(args.pairs),
               "--threads", str(args.threads), "--model", args.model_dir]
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
        mem[v] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                           env=env).stdout.strip().splitlines()[-1])["mib"]
    ref = statistics.median(times["reference (pad 128)"])
    ref_l = statistics.median(times["reference (pad longest)"])
    print(f"{args.model_dir}: {args.layers} layers, target layer "
          f"{args.layers // 2} (attn), {args.pairs} pairs/step, LoRA r=8 q/v, CPU, "
          f"{args.threads} torch thread(s), torch {torch.__version__}; median of {args.steps} steps")
    print(f"{'variant':<26}{'ms/step':>9}{'IQR ms':>15}{'speedup vs ref128':>19}"
          f"{'vs ref longest':>16}{'peak RSS +MiB':>15}")
    for v in VARIANTS:
        t = sorted(times[v])
        med = statistics.median(t)
        q1, q3 = t[len(t) // 4], t[(3 * len(t)) // 4]
        print(f"{v:<26}{med * 1e3:>9.1f}{f'{q1 * 1e3:.1f}-{q3 * 1e3:.1f}':>15}"
              f"{ref / med:>18.2f}x{ref_l / med:>15.2f}x{mem[v]:>15.1f}")


if __name__ == "__main__":
    main()
