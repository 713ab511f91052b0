"""Fork organism-lm seed 0 at a checkpoint into a 250-step build: the first 150 steps of a
250-step and a 500-step build are identical (same example stream: training_examples draws batch
by batch from one RNG; same lr: constant after warm-up until the cosine decay starts at
step 150 resp. 300), so a checkpoint before step 150 of the 500-step build IS the 250-step
build's checkpoint; only its recorded config and data fingerprint change."""
import json, shutil, sys
from pathlib import Path
from soo_interp.organism.build_lm import LMOrganismConfig
from soo_interp.organism.stories import training_examples
from soo_interp.training.checkpoint import pairs_fingerprint
from soo_interp.models.manifest import write_manifest

src, dst, step, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
old = json.loads((src / "config.json").read_text())
cfg = LMOrganismConfig(**{**old, "steps": steps})
assert step < round((1 - cfg.decay_fraction) * steps), "the schedules differ before this step"
ex_old = training_examples(cfg.seed, old["steps"], cfg.batch_size, cfg.lookup_steps)
ex_new = training_examples(cfg.seed, steps, cfg.batch_size, cfg.lookup_steps)
assert ex_old[:len(ex_new)] == ex_new, "example streams differ"
ck = src / "checkpoints" / f"step-{step:06d}"
dst.mkdir(parents=True)
shutil.copy2(src / ".soo-interp-run.json", dst / ".soo-interp-run.json")
(dst / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
out = dst / "checkpoints" / ck.name
shutil.copytree(ck, out)
state = json.loads((out / "state.json").read_text())
state["meta"]["config"] = cfg.resume_key()
state["meta"]["pairs"] = pairs_fingerprint([e.context + "\x01" + e.target for e in ex_new])
(out / "state.json").write_text(json.dumps(state, default=float))
if True:  # main checks every checkpoint against its manifest
    write_manifest(out)
print("forked", ck, "->", out)
