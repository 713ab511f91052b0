"""The prepared GPU check: a random-weight model of Mistral-7B's shape (32 layers, d_model 4096,
32 heads with 8 KV heads, MLP 14336; bf16) on one CUDA GPU. Prints one table:

- load: `save_pretrained` of the random model, then `load_model` from that folder (time);
- latent SOO over all 96 sites (32 layers x attn/mlp/resid) of 52 pairs with the hooks and
  nnsight backends: time, peak GPU memory, and the ratio to a bare forward over the same batches;
- one SOO LoRA run at layer 16 (52 pairs x 15 epochs, the paper's setting: r=8, alpha 32, q/v,
  batch 4, grad accumulation 4) against the public code's recipe (two full forwards per batch,
  self and other each padded to 128 tokens, KL on all logits; same LoRA, batches and steps);
- the same latent SOO and LoRA run with the model quantized to 4 bits (NF4; needs bitsandbytes).

Targets (H100/H200 class): LoRA run < 2 min and >= 2x faster than the reference; latent SOO over
96 sites < 10 s at <= 1.25x the bare forward. Without CUDA it prints "skipped: no CUDA" and exits
0. `--tiny` runs every step on the CPU with a toy model of the same family (for the tests).

Run: `python benchmarks/gpu_scale.py [--epochs 15] [--tiny]`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

MISTRAL_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, intermediate_size=14336, vocab_size=32000)
TINY = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=512)


def measured(fn: Callable[[], Any], cuda: bool) -> tuple[float, float, Any]:
    """(seconds, peak GPU GiB or nan, result) of one call, synchronised."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return time.perf_counter() - t0, peak, out


def build(folder: Path, shape: dict, dtype: torch.dtype) -> None:
    """A random-weight Mistral of `shape` with the tiny tokenizer, saved with save_pretrained."""
    from transformers import MistralConfig, MistralForCausalLM

    from soo_interp.models.tiny import train_tokenizer

    tok = train_tokenizer()
    cfg = MistralConfig(**shape, max_position_embeddings=4096, sliding_window=None,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = MistralForCausalLM(cfg).to(dtype)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model


def bare_forward(lm: Any, pairs: list, batch_size: int) -> None:
    from soo_interp.models.placement import input_device
    from soo_interp.models.tokenize import encode

    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            batch = encode(lm.tokenizer, [p.self_text for p in chunk] + [p.other_text for p in chunk])
            lm.model(**batch.to(input_device(lm.model)).as_kwargs(), use_cache=False)


def reference_run(lm: Any, pairs: list, layer: int, epochs: int, length: int = 128) -> None:
    """The public code's recipe: per micro-batch of 4 pairs, two full forwards padded to
    `length`, KL between the logit distributions over all positions; AdamW every 4 batches."""
    from peft import LoraConfig, get_peft_model

    from soo_interp.models.placement import input_device
    from soo_interp.models.tokenize import encode

    model = get_peft_model(lm.model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.2,
                                                target_modules=["q_proj", "v_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dev = input_device(lm.model)

    def padded(texts: list[str]) -> dict:
        b = encode(lm.tokenizer, texts)
        extra = max(0, length - b.input_ids.shape[1])
        return {"input_ids": F.pad(b.input_ids, (0, extra), value=lm.tokenizer.pad_token_id).to(dev),
                "attention_mask": F.pad(b.attention_mask, (0, extra), value=0).to(dev)}

    try:
        for _ in range(epochs):
            for k, i in enumerate(range(0, len(pairs), 4)):
                chunk = pairs[i:i + 4]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                    ls = model(**padded([p.self_text for p in chunk]), use_cache=False).logits
                    lo = model(**padded([p.other_text for p in chunk]), use_cache=False).logits
                    loss = F.kl_div(F.log_softmax(ls.float(), -1), F.softmax(lo.float(), -1),
                                    reduction="batchmean") / 4
                loss.backward()
                if k % 4 == 3:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
    finally:
        model.unload()


def rows_for(label: str, lm: Any, pairs: list, args: argparse.Namespace, cuda: bool) -> list[tuple]:
    from soo_interp import measure
    from soo_interp.training import TrainConfig, train_soo

    layer = lm.n_layers // 2
    out = []
    t_bare, m_bare, _ = measured(lambda: bare_forward(lm, pairs, args.batch_size), cuda)
    out.append((f"{label}: bare forward, 52 pairs", t_bare, m_bare, 1.0))
    for backend in ("hooks", "nnsight"):
        t, m, df = measured(lambda: measure(lm, pairs, backend=backend, batch_size=args.batch_size,
                                            progress=False), cuda)
        n_sites = len(df[["layer", "component"]].drop_duplicates())
        out.append((f"{label}: latent SOO, {n_sites} sites, {backend}", t, m, t / t_bare))
    cfg = TrainConfig(layer=layer, epochs=args.epochs)
    t_soo, m_soo, _ = measured(lambda: train_soo(lm, pairs, cfg, out=Path(args.tmp) / f"{label}-soo",
                                                 overwrite=True, progress=False), cuda)
    t_ref, m_ref, _ = measured(lambda: reference_run(lm, pairs, layer, args.epochs), cuda)
    out.append((f"{label}: SOO LoRA L{layer}, {len(pairs)} pairs x {args.epochs} epochs", t_soo, m_soo,
                t_soo / t_ref))
    out.append((f"{label}: reference recipe (2 forwards, pad 128, KL logits)", t_ref, m_ref, 1.0))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=26, help="pairs per measuring forward")
    p.add_argument("--tiny", action="store_true", help="toy shapes on the CPU (tests the path)")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("skipped: no CUDA (run on a GPU machine, or pass --tiny to test the code path on CPU)")
        return 0
    from soo_interp import load_model, soo_pairs
    from soo_interp.models.placement import quantization_config

    torch.set_num_threads(1 if args.tiny else torch.get_num_threads())
    dtype = torch.bfloat16 if cuda else torch.float32
    pairs = soo_pairs("all")[:52]
    with tempfile.TemporaryDirectory(prefix="soo-gpu-scale-") as tmp:
        args.tmp = tmp
        t_build, _, _ = measured(lambda: build(Path(tmp) / "model", TINY if args.tiny else MISTRAL_7B,
                                               dtype), cuda)
        t_load, m_load, lm = measured(lambda: load_model(str(Path(tmp) / "model"), dtype=dtype), cuda)
        rows = [("build random model + save_pretrained", t_build, float("nan"), float("nan")),
                ("load_model", t_load, m_load, float("nan"))]
        rows += rows_for("bf16" if cuda else "fp32", lm, pairs, args, cuda)
        del lm
        try:
            quantization_config("4bit", dtype)
            lm4 = load_model(str(Path(tmp) / "model"), dtype=dtype, quantization="4bit")
            rows += rows_for("4-bit", lm4, pairs, args, cuda)
        except Exception as e:  # noqa: BLE001 - report why the 4-bit rows are missing
            rows.append((f"4-bit: skipped ({' '.join(str(e).split())[:90]})", float("nan"),
                         float("nan"), float("nan")))
    name = torch.cuda.get_device_name() if cuda else "CPU (--tiny)"
    print(f"{name}; torch {torch.__version__}; model {'tiny' if args.tiny else 'Mistral-7B shape'}, "
          f"random weights; ratio = time / bare forward (latent SOO) or / reference recipe (LoRA)")
    print(f"{'step':<66}{'seconds':>9}{'peak GiB':>10}{'ratio':>8}")
    for what, t, m, r in rows:
        print(f"{what:<66}{t:>9.2f}{m:>10.2f}{r:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
