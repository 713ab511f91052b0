"""Bad inputs through the real CLI: does every one end in one line, exit 2, and nothing left behind?

Each case runs `python -m soo_interp ...` in a subprocess, in a fresh working folder, next to a
set of shared fixtures (corrupt checkpoints, non-UTF-8 pairs, a user's folder of notes, an
earlier run of another kind, tampered manifests, a FIFO, ...). For every case it records the
exit status, whether stderr holds a traceback, how many stderr lines the error took, the paths
the run left behind (anything new in the working folder or the fixtures), the paths it damaged
(removed or changed) and, for the runs killed with kill -9, the processes still alive after it
(workers, the resource tracker). Target: exit 2 (or the documented success), no traceback, no
leftovers, no damage, no stray process, for every case.

    python benchmarks/bad_inputs.py [--only SUBSTRING] [--timeout 120] [--keep]

To add a case, add a row to CASES: (name, argv with {F} for the fixtures folder[, options]);
options: `rc` (the documented exit status, default 2), `allow` (paths under the working folder
the run may write, default `o` when rc is 0), `setup` (a function of the working folder and the
fixtures, run first), `home` (the working folder is the run's HOME). Runs that need more than
one command (concurrent runs, kills) are in SPECIAL. Fixtures are made once by
`make_fixtures`; add new ones there.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from soo_interp.executors import descendants

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
    ("ladder arm unknown", ["ladder", "--arms", "untuned,soo-magic", "--out", "o"]),
    ("ladder recipe against --lr", ["ladder", "--recipe", "paper", "--lr", "0.01", "--out", "o"]),
    ("ladder seed outside the reserved range", ["ladder", "--seeds", "0", "--out", "o"]),
    ("ladder into a measure run", ["ladder", "--out", "{F}/measure_run"]),
    ("ladder excluding a folder that is no search", ["ladder", "--exclude-from", "{F}/notes",
                                                     "--out", "o"]),
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
    # --- issue 23, 1: silently wrong results
    ("remote local with an adapter", ["measure", *ORG, "--remote", "local", "--adapter",
                                      "{F}/other_adapter", "--out", "o"]),
    ("remote local with a dtype", ["probe", *ORG, "--remote", "local", "--dtype", "bfloat16",
                                   "--out", "o"]),
    ("remote local with backend hooks", ["measure", *ORG, "--remote", "local", "--backend",
                                         "hooks", "--out", "o"]),
    ("pairs self is NaN", ["measure", *ORG, "--pairs", "{F}/nan.jsonl", "--out", "o"]),
    ("pairs self is a number", ["train", *ORG, "--pairs", "{F}/number.jsonl", "--out", "o"]),
    # --- 4: integrity
    ("model copy with a dropped-in adapter", ["measure", "--model", "{F}/dropped", "--out", "o"]),
    ("model manifest line removed", ["measure", "--model", "{F}/unlisted", "--out", "o"]),
    ("model manifest lists ../outside", ["measure", "--model", "{F}/outside", "--out", "o"]),
    ("model manifest malformed", ["evaluate", "--model", "{F}/malformed", "--out", "o"]),
    ("train resume a flipped checkpoint byte", ["train", *ORG, "--resume", "--out",
                                                "{F}/ckpt_flipped"]),
    ("train resume a checkpoint edited to step 999", ["train", *ORG, "--resume", "--out",
                                                      "{F}/ckpt_step999"]),
    # --- 5: unbounded input
    ("pairs /dev/zero", ["measure", *ORG, "--pairs", "/dev/zero", "--out", "o"]),
    ("pairs a FIFO", ["measure", *ORG, "--pairs", "{F}/fifo.jsonl", "--out", "o"]),
    ("pairs over --max-input-mb", ["--max-input-mb", "1", "measure", *ORG, "--pairs",
                                   "{F}/big.jsonl", "--out", "o"]),
    ("measure layers 0-100000", ["measure", *ORG, "--layers", "0-100000", "--out", "o"]),
    ("sweep layers 0-100000", ["sweep", "--layers", "0-100000", "--out", "o"]),
    # --- 6: paths
    ("measure out a literal ~ (expanded)", ["measure", *ORG, "--layers", "0", "--out", "~/o"],
     {"rc": 0, "home": True, "allow": [".cache", ".config"]}),  # HOME = the working folder
    ("measure out a dangling symlink", ["measure", *ORG, "--out", "{F}/dangling"]),
    ("measure overwrite through a symlink", ["measure", *ORG, "--layers", "0", "--out", "o",
                                             "--overwrite"],
     {"rc": 0, "allow": ["target"], "setup": lambda cwd, f: _linked_run(cwd, f)}),
    # --- 7: the one-line contract
    ("train weight decay -1", ["train", *ORG, "--weight-decay", "-1", "--out", "o"]),
    ("train seed 99999999999999999999", ["train", *ORG, "--seed", "99999999999999999999",
                                         "--out", "o"]),
    ("train lora alpha 0", ["train", *ORG, "--lora-alpha", "0", "--out", "o"]),
    ("train resume and overwrite", ["train", *ORG, "--resume", "--overwrite", "--out", "o"]),
    ("train resume with nothing to resume", ["train", *ORG, "--resume", "--out", "o"]),
    ("train config sham: maybe", ["train", *ORG, "--config", "{F}/sham.yaml", "--out", "o"]),
    ("measure config batch_size: null", ["measure", *ORG, "--config", "{F}/null.yaml",
                                         "--out", "o"]),
    ("measure config duplicate key", ["measure", *ORG, "--config", "{F}/dup.yaml", "--out", "o"]),
    ("rl train maddpg lr=abc", ["rl", "train", "--maddpg", "lr=abc", "--out", "o"]),
    ("rl train workers 0", ["rl", "train", "--workers", "0", "--out", "o"]),
    ("pairs CSV with a UTF-8 BOM", ["measure", *ORG, "--layers", "0", "--pairs",
                                    "{F}/bom.csv", "--out", "o"], {"rc": 0}),
    ("train default layer on the organism", ["train", *ORG, "--max-steps", "1", "--out", "o"],
     {"rc": 0}),
]


def _python() -> list[str]:
    return [sys.executable, "-m", "soo_interp"]


def _env(home: Path | None = None) -> dict[str, str]:
    """The environment of a run; `home` replaces HOME (libraries then cache there too)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    return env if home is None else {**env, "HOME": str(home)}


def _run(argv: list[str], cwd: Path, timeout: float,
         home: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_python() + argv, cwd=cwd, env=_env(home), capture_output=True,
                          text=True, timeout=timeout)


def _linked_run(cwd: Path, fixtures: Path) -> None:
    """`o` a symlink to `target`, an earlier measure run: --overwrite must write through it."""
    shutil.copytree(fixtures / "measure_run", cwd / "target")
    (cwd / "o").symlink_to(cwd / "target")


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
    _issue23_fixtures(f, org, root)
    return f


def _issue23_fixtures(f: Path, org: Path, root: Path) -> None:
    """Non-string prompts, a BOM, a FIFO, a large file, typed YAML, tampered manifests and
    checkpoints, a dangling link."""
    from soo_interp.models.manifest import sha256_file

    (f / "nan.jsonl").write_text('{"self": NaN, "other": "Bob wants the vase"}\n')
    (f / "number.jsonl").write_text('{"self": 123, "other": "Bob wants the vase"}\n')
    (f / "bom.csv").write_bytes("\ufeffself,other\nYou want the vase,Bob wants the vase\n"
                                .encode("utf-8"))
    os.mkfifo(f / "fifo.jsonl")
    (f / "big.jsonl").write_text('{"self": "You want it", "other": "Bob wants it"}\n' * 40_000)
    (f / "null.yaml").write_text("batch_size: null\n")
    (f / "dup.yaml").write_text("layers: '0'\nlayers: '1'\n")
    (f / "sham.yaml").write_text("layer: 1\nsham: maybe\n")
    (f / "dangling").symlink_to(f / "nowhere")
    for name in ("dropped", "unlisted", "outside", "malformed"):
        shutil.copytree(org, f / name)
    (f / "dropped" / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    manifest = json.loads((org / "manifest.json").read_text())
    (f / "unlisted" / "manifest.json").write_text(json.dumps(
        {**manifest, "files": {k: v for k, v in manifest["files"].items()
                               if k != "model.safetensors"}}))
    data = bytearray((f / "unlisted" / "model.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (f / "unlisted" / "model.safetensors").write_bytes(bytes(data))
    (f / "outside.txt").write_text("not the model's\n")
    (f / "outside" / "manifest.json").write_text(json.dumps(
        {**manifest, "files": {**manifest["files"],
                               "../outside.txt": sha256_file(f / "outside.txt")}}))
    (f / "malformed" / "manifest.json").write_text("[1, 2]")
    for name in ("ckpt_flipped", "ckpt_step999"):
        done = _run(["train", *ORG, "--layer", "1", "--max-steps", "2", "--checkpoint-every", "1",
                     "--quiet", "--out", str(f / name)], root, 300)
        assert done.returncode == 0, done.stderr
        seed = f / name / "seed0"
        meta = json.loads((seed / "run.json").read_text())  # as if killed before the end
        (seed / "run.json").write_text(json.dumps({**meta, "status": "running"}))
        ckpt = sorted((seed / "checkpoints").iterdir())[-1]
        if name == "ckpt_flipped":
            data = bytearray((ckpt / "adapter.safetensors").read_bytes())
            data[-3] ^= 0x01
            (ckpt / "adapter.safetensors").write_bytes(bytes(data))
        else:
            state = json.loads((ckpt / "state.json").read_text())
            (ckpt / "state.json").write_text(json.dumps({**state, "step": 999}))


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


def _workdir(work: Path, name: str) -> Path:
    cwd = work / "".join(c if c.isalnum() else "_" for c in name)
    cwd.mkdir()
    return cwd


def _row(name: str, argv: list[str], rc: Any, err: str, t0: float, before: dict, after: dict,
         cwd: Path, allow: list[str], expect: Any = 2, stray: int = 0) -> dict:
    allowed = [str(cwd / a) for a in allow]
    mine = lambda p: any(p == a or p.startswith(a + "/") for a in allowed)  # noqa: E731
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return {
        "case": name, "command": next(a for a in argv if not a.startswith("-") and
                                      not a[0].isdigit()),
        "rc": rc, "expect": expect, "seconds": round(time.perf_counter() - t0, 1),
        "traceback": "Traceback" in err or (rc not in (0, 2, expect) and rc != "timeout"),
        "lines": len(lines),
        "leftovers": sorted(p for p in set(after) - set(before) if not mine(p)),
        "damaged": sorted(p for p in before if after.get(p) != before[p] and not mine(p)),
        "stray": stray, "message": lines[-1][:110] if lines else "",
    }


def run_case(name: str, argv: list[str], fixtures: Path, work: Path, timeout: float,
             opts: dict | None = None) -> dict:
    opts = opts or {}
    expect = opts.get("rc", 2)
    cwd = _workdir(work, name)
    if "setup" in opts:
        opts["setup"](cwd, fixtures)
    argv = [a.replace("{F}", str(fixtures)) for a in argv]
    before = _snapshot(fixtures, cwd)
    t0 = time.perf_counter()
    try:
        done = _run(argv, cwd, timeout, cwd if opts.get("home") else None)
        rc, err = done.returncode, done.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = "timeout", (e.stderr or b"").decode(errors="replace")
    allow = opts.get("allow", []) + (["o"] if expect == 0 else [])
    return _row(name, argv, rc, err, t0, before, _snapshot(fixtures, cwd), cwd, allow, expect)


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.add(p)
        except OSError:
            pass
    return out


def kill_case(name: str, argv: list[str], fixtures: Path, work: Path, timeout: float) -> dict:
    """Start `argv`, wait until it has worker processes, kill -9 the parent alone (as the OOM
    killer does), and count what is still alive 20 s later (then end it)."""
    cwd = _workdir(work, name)
    before = _snapshot(fixtures, cwd)
    t0 = time.perf_counter()
    proc = subprocess.Popen(_python() + argv, cwd=cwd, env=_env(), stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    while len(descendants(proc.pid)) < 3 and time.perf_counter() - t0 < timeout:
        time.sleep(0.2)
    time.sleep(2)
    children = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    err = proc.communicate()[1]
    deadline = time.time() + 20
    while _alive(children) and time.time() < deadline:
        time.sleep(0.2)
    stray = _alive(children)
    for p in stray:
        os.kill(p, signal.SIGKILL)
    row = _row(name, argv, -9, err, t0, before, _snapshot(fixtures, cwd), cwd, ["o", ".o.lock"], -9,
               len(stray))
    row["message"] = f"{len(children)} child processes; {len(stray)} alive 20 s after kill -9"
    return row


def concurrent_case(name: str, argv: list[str], fixtures: Path, work: Path,
                    timeout: float) -> dict:
    """Two identical runs into one folder at once: one finishes, the other is refused."""
    cwd = _workdir(work, name)
    before = _snapshot(fixtures, cwd)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(_python() + argv, cwd=cwd, env=_env(), stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    done = sorted((p.wait(timeout=timeout), p.stderr.read()) for p in procs)
    rcs = [rc for rc, _ in done]
    rc = 2 if rcs == [0, 2] else f"{rcs[0]},{rcs[1]}"
    return _row(name, argv, rc, done[-1][1], t0, before, _snapshot(fixtures, cwd), cwd, ["o"])


SWEEP = ["sweep", *ORG, "--layers", "0-1", "--seeds", "0,1", "--epochs", "3", "--n", "2",
         "--scenarios", "burglar", "--workers", "2", "--quiet", "--out", "o"]
SPECIAL = [
    ("two measures into one folder at once", concurrent_case,
     ["measure", *ORG, "--layers", "0", "--out", "o"]),
    ("two sweeps into one folder at once", concurrent_case,
     ["sweep", *ORG, "--layers", "0", "--seeds", "0", "--epochs", "1", "--n", "1",
      "--scenarios", "burglar", "--no-sham", "--workers", "1", "--quiet", "--out", "o"]),
    ("kill -9 of a sweep (2 workers)", kill_case, SWEEP),
    ("kill -9 of rl train (2 workers)", kill_case,
     ["rl", "train", "--seeds", "0", "--episodes", "2000", "--workers", "2", "--out", "o"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="run only cases whose name contains this")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per case")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.only or args.only in c[0]]
    special = [c for c in SPECIAL if not args.only or args.only in c[0]]
    root = Path(tempfile.mkdtemp(prefix="soo-bad-inputs-"))
    try:
        fixtures = make_fixtures(root)
        work = root / "work"
        work.mkdir()
        rows = []
        runs = [(c[0], lambda c=c: run_case(c[0], c[1], fixtures, work, args.timeout, *c[2:]))
                for c in cases]
        runs += [(name, lambda s=(name, fn, argv): s[1](s[0], s[2], fixtures, work, args.timeout))
                 for name, fn, argv in special]
        for _, run in runs:
            rows.append(run())
            r = rows[-1]
            print(f"{'ok ' if _ok(r) else 'BAD'} {r['case']:<46} rc={r['rc']!s:<7} "
                  f"lines={r['lines']} left={len(r['leftovers'])} damaged={len(r['damaged'])} "
                  f"stray={r['stray']} {r['seconds']:>5}s  {r['message']}", flush=True)
        _print_totals(rows)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        return 0 if all(_ok(r) for r in rows) else 1
    finally:
        if args.keep:
            print(f"scratch folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _ok(r: dict) -> bool:
    return (r["rc"] == r["expect"] and not r["traceback"] and not r["leftovers"]
            and not r["damaged"] and not r["stray"])


def _print_totals(rows: list[dict]) -> None:
    commands = sorted({r["command"] for r in rows})
    print(f"\n{'command':<10} {'cases':>5} {'as documented':>13} {'tracebacks':>10} "
          f"{'leftovers':>9} {'damaged':>7} {'stray':>5} {'1-line':>6}")
    for c in commands + ["TOTAL"]:
        sel = [r for r in rows if c == "TOTAL" or r["command"] == c]
        print(f"{c:<10} {len(sel):>5} {sum(r['rc'] == r['expect'] for r in sel):>13} "
              f"{sum(bool(r['traceback']) for r in sel):>10} "
              f"{sum(bool(r['leftovers']) for r in sel):>9} "
              f"{sum(bool(r['damaged']) for r in sel):>7} {sum(r['stray'] for r in sel):>5} "
              f"{sum(r['lines'] == 1 for r in sel):>6}")
    for r in rows:
        for p in r["leftovers"]:
            print(f"  left behind by {r['case']!r}: {p}")
        for p in r["damaged"]:
            print(f"  damaged by {r['case']!r}: {p}")


if __name__ == "__main__":
    sys.exit(main())
