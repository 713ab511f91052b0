# usage: PYTHONPATH=. python -P reports/organism-lm/fork_build.py SRC_BUILD DST_BUILD STEP NEW_STEPS
# (seed0-steps250: lm-seed0 500-step build at step 110 -> 250 steps; v3 seed 1: v2-s1 at step 110 -> 500 steps)
"""Fork an organism-lm build at a checkpoint into a build of another length. Two builds of one
seed and recipe that differ only in `steps` draw the same example stream batch by batch
(`stories.training_examples` uses one RNG in order) and have the same lr until the earlier of
their cosine decays starts (at (1 - decay_fraction) * steps), so a checkpoint before that step IS
the other build's checkpoint; only its recorded config and data fingerprint change."""
import json, shutil, sys
from pathlib import Path
from soo_interp.organism.build_lm import LMOrganismConfig, _schedule
from soo_interp.organism.stories import training_examples
from soo_interp.training.checkpoint import pairs_fingerprint
from soo_interp.models.manifest import write_manifest

src, dst, step, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
old = LMOrganismConfig.from_saved(json.loads((src / "config.json").read_text()))
new = LMOrganismConfig(**{**old.to_dict(), "steps": steps})
f_old, f_new = _schedule(old), _schedule(new)
assert all(f_old(s) == f_new(s) for s in range(step)), "the lr schedules differ before this step"
n = step * new.batch_size
ex_old = training_examples(old.seed, old.steps, old.batch_size, old.lookup_steps, old.phrasing)
ex_new = training_examples(new.seed, steps, new.batch_size, new.lookup_steps, new.phrasing)
assert ex_old[:n] == ex_new[:n], "the example streams differ before this step"
ck = src / "checkpoints" / f"step-{step:06d}"
dst.mkdir(parents=True)
for name in (".soo-interp-run.json", "base.json"):
    if (src / name).exists():
        shutil.copy2(src / name, dst / name)
(dst / "config.json").write_text(json.dumps(new.to_dict(), indent=2))
out = dst / "checkpoints" / ck.name
shutil.copytree(ck, out)
state = json.loads((out / "state.json").read_text())
state["meta"]["config"] = new.resume_key()
state["meta"]["pairs"] = pairs_fingerprint([e.context + "\x01" + e.target for e in ex_new])
(out / "state.json").write_text(json.dumps(state, default=float))
write_manifest(out)
print("forked", ck, "->", out)
