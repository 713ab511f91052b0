"""Bad inputs through the real CLI: does every one end in one line, exit 2, and nothing left behind?

Each case runs `python -m soo_interp ...` in a subprocess, in a fresh working folder, next to a
set of shared fixtures (corrupt checkpoints, non-UTF-8 pairs, a user's folder of notes, an
earlier run of another kind, ...). For every case it records the exit status, whether stderr
holds a traceback, how many stderr lines the error took, the paths the run left behind
(anything new in the working folder or the fixtures) and the paths it damaged (removed or
changed). Target: exit 2, no traceback, no leftovers, no damage, for every case.

    python benchmarks/bad_inputs.py [--only SUBSTRING] [--timeout 120] [--keep]

To add a case, add a row to CASES: (name, argv with {F} for the fixtures folder). Fixtures are
made once by `make_fixtures`; add new ones there.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORG = ["--model", "organism"]
CASES: list[tuple[str, list[str]]] = [
    # --- models and checkpoints
    ("model path missing", ["measure", "--model", "./no-such-model", "--out", "o"]),
    ("model folder empty", ["measure", "--model", "{F}/empty_dir", "--out", "o"]),
    ("model safetensors truncated", ["measure", "--model", "{F}/truncated", "--out", "o"]),
    ("model is a pickle .bin", ["measure", "--model", "{F}/pickle_bin", "--out", "o"]),
    ("model copy with a flipped byte", ["measure", "--model", "{F}/tampered", "--out", "o"]),
    ("dtype unknown", ["measure", *ORG, "--dtype", "float8", "--out", "o"]),
    ("device unknown", ["measure", *ORG, "--device", "tpu9", "--out", "o"]),
    ("device absent (cuda)", ["measure", *ORG, "--device", "cuda", "--out", "o"]),
    ("device absent (cuda:7)", ["evaluate", *ORG, "--device", "cuda:7", "--out", "o"]),
    ("adapter folder missing", ["evaluate", *ORG, "--adapter", "{F}/nope", "--out", "o"]),
    ("adapter corrupt", ["evaluate", *ORG, "--adapter", "{F}/bad_adapter", "--out", "o"]),
    ("adapter of another model", ["compare", *ORG, "--adapter", "{F}/other_adapter",
                                  "--out", "o"]),
    # --- pairs files
    ("pairs not UTF-8", ["measure", *ORG, "--pairs", "{F}/latin1.jsonl", "--out", "o"]),
    ("pairs is a folder", ["measure", *ORG, "--pairs", "{F}/empty_dir", "--out", "o"]),
    ("pairs missing", ["measure", *ORG, "--pairs", "{F}/none.jsonl", "--out", "o"]),
    ("pairs empty", ["measure", *ORG, "--pairs", "{F}/empty.jsonl", "--out", "o"]),
    ("pairs malformed JSON", ["measure", *ORG, "--pairs", "{F}/bad.jsonl", "--out", "o"]),
    ("pairs CSV without columns", ["measure", *ORG, "--pairs", "{F}/bad.csv", "--out", "o"]),
    ("pairs megabyte prompt (measure)", ["measure", *ORG, "--pairs", "{F}/long.jsonl",
                                         "--out", "o"]),
    ("pairs megabyte prompt (train)", ["train", *ORG, "--pairs", "{F}/long.jsonl", "--layer",
                                       "1", "--out", "o"]),
    ("train pairs not UTF-8", ["train", *ORG, "--pairs", "{F}/latin1.jsonl", "--out", "o"]),
    # --- numbers out of range
    ("measure batch size 0", ["measure", *ORG, "--batch-size", "0", "--out", "o"]),
    ("measure batch size -3", ["measure", *ORG, "--batch-size", "-3", "--out", "o"]),
    ("measure layer 99", ["measure", *ORG, "--layers", "99", "--out", "o"]),
    ("measure component unknown", ["measure", *ORG, "--components", "attn,foo", "--out", "o"]),
    ("train batch size 0", ["train", *ORG, "--layer", "1", "--batch-size", "0", "--out", "o"]),
    ("train layer 99", ["train", *ORG, "--layer", "99", "--out", "o"]),
    ("train max steps -1", ["train", *ORG, "--layer", "1", "--max-steps", "-1", "--out", "o"]),
    ("train lr negative", ["train", *ORG, "--layer", "1", "--lr", "-1", "--out", "o"]),
    ("train seeds abc", ["train", *ORG, "--seeds", "abc", "--out", "o"]),
    ("train neutral missing", ["train", *ORG, "--layer", "1", "--neutral", "{F}/none.txt",
                               "--out", "o"]),
    ("evaluate batch size 0", ["evaluate", *ORG, "--batch-size", "0", "--out", "o"]),
    ("evaluate n 0", ["evaluate", *ORG, "--n", "0", "--out", "o"]),
    ("evaluate scenario unknown", ["evaluate", *ORG, "--scenarios", "heist", "--out", "o"]),
    ("evaluate max new tokens -1", ["evaluate", *ORG, "--max-new-tokens", "-1", "--out", "o"]),
    ("probe suite unknown", ["probe", *ORG, "--suite", "nope", "--out", "o"]),
    ("probe folds 1", ["probe", *ORG, "--folds", "1", "--out", "o"]),
    ("probe compare non-runs", ["probe", "--compare", "{F}/empty_dir", "{F}/notes",
                                "--out", "o"]),
    ("compare without adapter", ["compare", *ORG, "--out", "o"]),
    ("compare components unknown", ["compare", *ORG, "--adapter", "{F}/other_adapter",
                                    "--components", "foo", "--out", "o"]),
    ("sweep seeds abc", ["sweep", "--seeds", "abc", "--out", "o"]),
    ("sweep layer 99", ["sweep", "--layers", "99", "--out", "o"]),
    ("sweep n 0", ["sweep", "--n", "0", "--out", "o"]),
    ("search space with no cells", ["search", "--losses", ",", "--out", "o"]),
    ("search budget 0", ["search", "--budget", "0", "--out", "o"]),
    ("search workers 0", ["search", "--workers", "0", "--out", "o"]),
    ("search into a user's folder", ["search", "--out", "{F}/notes"]),
    ("verdict of a folder that is no search", ["verdict", "--search", "{F}/notes", "--out", "o"]),
    ("demo n 0", ["demo", "--n", "0", "--out", "o"]),
    ("organism build steps 0", ["organism", "build", "--steps", "0", "--out", "o"]),
    ("organism card unknown", ["organism", "card", "--name", "nope"]),
    ("config file missing", ["measure", *ORG, "--config", "{F}/none.yaml", "--out", "o"]),
    ("config key unknown", ["measure", *ORG, "--config", "{F}/bad.yaml", "--out", "o"]),
    ("rl train baseline unknown", ["rl", "train", "--baselines", "sneaky", "--out", "o"]),
    ("rl train episodes 0", ["rl", "train", "--episodes", "0", "--out", "o"]),
    ("rl train env key unknown", ["rl", "train", "--env", "gravity=3", "--out", "o"]),
    ("rl train seeds abc", ["rl", "train", "--seeds", "abc", "--out", "o"]),
    ("rl value of a user's folder", ["rl", "value", "--runs", "{F}/notes", "--out", "o"]),
    ("rl train overwrite a user's folder", ["rl", "train", "--out", "{F}/notes",
                                            "--overwrite"]),
    # --- output folders
    ("measure out unwritable", ["measure", *ORG, "--out", "/proc/soo-out"]),
    ("measure out under a file", ["measure", *ORG, "--out", "{F}/file.txt/o"]),
    ("train out unwritable", ["train", *ORG, "--layer", "1", "--out", "/proc/soo-out"]),
    ("evaluate out unwritable", ["evaluate", *ORG, "--out", "/proc/soo-out"]),
    ("demo figures unwritable", ["demo", "--n", "2", "--out", "o", "--figures",
                                 "/proc/soo-figs"]),
    ("measure out . --overwrite", ["measure", *ORG, "--out", ".", "--overwrite"]),
    ("measure overwrite a user's folder", ["measure", *ORG, "--out", "{F}/notes",
                                           "--overwrite"]),
    ("train overwrite a user's folder", ["train", *ORG, "--out", "{F}/notes", "--overwrite"]),
    ("organism build overwrite a user's folder", ["organism", "build", "--out", "{F}/notes",
                                                  "--overwrite"]),
    ("measure into an existing run", ["measure", *ORG, "--out", "{F}/measure_run"]),
    ("evaluate overwrite a measure run", ["evaluate", *ORG, "--out", "{F}/measure_run",
                                          "--overwrite"]),
    ("train resume a measure run", ["train", *ORG, "--out", "{F}/measure_run", "--resume"]),
    ("train resume a user's folder", ["train", *ORG, "--out", "{F}/notes", "--resume"]),
]


def _python() -> list[str]:
    return [sys.executable, "-m", "soo_interp"]


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run(_python() + argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def make_fixtures(root: Path) -> Path:
    """The shared bad inputs (and one good earlier run), made once."""
    import torch

    from soo_interp.models.tiny import build_tiny_model
    from soo_interp.organism import shipped_checkpoint

    f = root / "fixtures"
    f.mkdir(parents=True)
    (f / "empty_dir").mkdir()
    (f / "notes").mkdir()
    (f / "notes" / "notes.txt").write_text("a user's notes: not soo-interp's to delete\n")
    (f / "file.txt").write_text("a plain file\n")
    (f / "latin1.jsonl").write_bytes('{"self": "Ren\xe9e", "other": "Bob"}\n'.encode("latin-1"))
    (f / "empty.jsonl").write_text("")
    (f / "bad.jsonl").write_text('{"self": "You", "other": \n')
    (f / "bad.csv").write_text("a,b\n1,2\n")
    long = "you want the vase " * 60_000
    (f / "long.jsonl").write_text(json.dumps({"self": long, "other": long}) + "\n")
    (f / "bad.yaml").write_text("no_such_key: 3\n")
    org = shipped_checkpoint()
    for name in ("truncated", "tampered", "pickle_bin"):
        shutil.copytree(org, f / name)
    weights = (f / "truncated" / "model.safetensors").read_bytes()
    (f / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (f / "truncated" / "manifest.json").unlink()  # the safetensors reader must catch it itself
    data = bytearray((f / "tampered" / "model.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (f / "tampered" / "model.safetensors").write_bytes(bytes(data))
    from safetensors.torch import load_file

    state = load_file(str(f / "pickle_bin" / "model.safetensors"))
    (f / "pickle_bin" / "model.safetensors").unlink()
    (f / "pickle_bin" / "manifest.json").unlink()
    state["soo.note"] = argparse.Namespace(note="pickled object")  # not loadable weights-only
    torch.save(state, f / "pickle_bin" / "pytorch_model.bin")
    (f / "bad_adapter").mkdir()
    (f / "bad_adapter" / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (f / "bad_adapter" / "adapter_model.safetensors").write_bytes(b"not safetensors")
    _other_adapter(build_tiny_model("llama", root / "tiny", n_layers=2, d_model=64),
                   f / "other_adapter")
    done = _run(["measure", *ORG, "--layers", "0", "--out", str(f / "measure_run")], root, 300)
    assert done.returncode == 0, done.stderr
    return f


def _other_adapter(model_dir: Path, out: Path) -> None:
    """A genuine peft adapter, for a model other than the organism."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(out)


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for p in [root, *root.rglob("*")]:
            st = p.lstat()
            out[str(p)] = (st.st_size if p.is_file() else 0, st.st_mtime_ns if p.is_file() else 0)
    return out


def run_case(name: str, argv: list[str], fixtures: Path, work: Path, timeout: float) -> dict:
    cwd = work / name.replace(" ", "_").replace("/", "_")
    cwd.mkdir()
    argv = [a.replace("{F}", str(fixtures)) for a in argv]
    before = _snapshot(fixtures, cwd)
    t0 = time.perf_counter()
    try:
        done = _run(argv, cwd, timeout)
        rc, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = "timeout", (e.stderr or b"").decode(errors="replace")
    after = _snapshot(fixtures, cwd)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return {
        "case": name, "command": argv[0], "rc": rc, "seconds": round(time.perf_counter() - t0, 1),
        "traceback": "Traceback" in err or (rc not in (0, 2) and rc != "timeout"),
        "lines": len(lines),
        "leftovers": sorted(set(after) - set(before)),
        "damaged": sorted(p for p in before if after.get(p) != before[p]),
        "message": lines[-1][:110] if lines else "",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="run only cases whose name contains this")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per case")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.only or args.only in c[0]]
    root = Path(tempfile.mkdtemp(prefix="soo-bad-inputs-"))
    try:
        fixtures = make_fixtures(root)
        work = root / "work"
        work.mkdir()
        rows = []
        for name, case_argv in cases:
            rows.append(run_case(name, case_argv, fixtures, work, args.timeout))
            r = rows[-1]
            ok = r["rc"] == 2 and not r["traceback"] and not r["leftovers"] and not r["damaged"]
            print(f"{'ok ' if ok else 'BAD'} {r['case']:<42} rc={r['rc']!s:<7} "
                  f"lines={r['lines']} left={len(r['leftovers'])} damaged={len(r['damaged'])} "
                  f"{r['seconds']:>5}s  {r['message']}", flush=True)
        _print_totals(rows)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        bad = [r for r in rows if r["rc"] != 2 or r["traceback"] or r["leftovers"] or r["damaged"]]
        return 1 if bad else 0
    finally:
        if args.keep:
            print(f"scratch folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _print_totals(rows: list[dict]) -> None:
    commands = sorted({r["command"] for r in rows})
    print(f"\n{'command':<10} {'cases':>5} {'exit 2':>7} {'tracebacks':>10} {'leftovers':>9} "
          f"{'damaged':>7} {'1-line':>6}")
    for c in commands + ["TOTAL"]:
        sel = [r for r in rows if c == "TOTAL" or r["command"] == c]
        print(f"{c:<10} {len(sel):>5} {sum(r['rc'] == 2 for r in sel):>7} "
              f"{sum(bool(r['traceback']) for r in sel):>10} "
              f"{sum(bool(r['leftovers']) for r in sel):>9} "
              f"{sum(bool(r['damaged']) for r in sel):>7} {sum(r['lines'] == 1 for r in sel):>6}")
    for r in rows:
        for p in r["leftovers"]:
            print(f"  left behind by {r['case']!r}: {p}")
        for p in r["damaged"]:
            print(f"  damaged by {r['case']!r}: {p}")


if __name__ == "__main__":
    sys.exit(main())
