"""Physical Deception throughput: vectorised environments against a one-env loop, and the
projected time of a paper-length MADDPG baseline (40k episodes x 50 steps, one update round per
100 env steps, batch 1024).

Measured in one run, one torch thread, best of `--reps` after a warm-up, in *CPU time* of this
process (`time.process_time`): on a shared machine that is the time the work needs on one free
core, while wall time depends on the other load (`--wall` to time wall clock instead):
- `env`:     env.step with random actions only;
- `rollout`: env.step plus both actors choosing actions (what training does between updates);
- `update`:  one MADDPG update round (critic + actor of both agents, batch 1024, soft targets);
  the same cost per 100 env steps in both modes, so it bounds the speed-up of a whole run.
Projected run time = 2M env steps x rollout time per step + 20k update rounds x update time.
`--check` also trains `--episodes` vectorised episodes end to end to compare with the projection.

Run: `.venv/bin/python benchmarks/rl_speed.py` (about a minute on 1 CPU thread).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_of

from soo_interp.rl.env import AGENTS, PhysicalDeceptionEnv
from soo_interp.rl.maddpg import MaddpgConfig, ReplayBuffer, act, build_agents, update

PAPER_STEPS, PAPER_UPDATES = 40_000 * 50, 40_000 * 50 // 100
CLOCK = [time.process_time]


def steps_per_s(n_envs: int, steps: int, agents=None, reps: int = 3) -> float:
    """Env steps per second of `steps` env steps done as steps / n_envs lock-step calls."""
    env = PhysicalDeceptionEnv(n_envs=n_envs)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)

    def run():
        nonlocal obs
        for _ in range(steps // n_envs):
            if agents is None:
                acts = {a: rng.uniform(-1, 1, (n_envs, 2)) for a in AGENTS}
            else:
                acts = {a: act(agents[a].actor, obs[a]) for a in AGENTS}
            obs, _, _, trunc, _ = env.step(acts)
            if trunc["blue"][0]:
                obs, _ = env.reset()

    t, _ = best_of(run, reps, CLOCK[0])
    return steps // n_envs * n_envs / t


def update_time(reps: int) -> float:
    cfg = MaddpgConfig()
    agents = build_agents(cfg)
    buf = ReplayBuffer(10_000)
    rng = np.random.default_rng(0)
    buf.add(**{k: rng.standard_normal((10_000, d)) for k, d in ReplayBuffer.FIELDS.items()})
    t, _ = best_of(lambda: update(agents, buf.sample(rng, cfg.batch_size), cfg), reps, CLOCK[0])
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000, help="env steps per timing")
    ap.add_argument("--n-envs", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="also train end to end")
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--wall", action="store_true", help="time wall clock, not CPU time")
    args = ap.parse_args()
    if args.wall:
        CLOCK[0] = time.perf_counter
    torch.set_num_threads(1)
    agents = build_agents(MaddpgConfig())
    t_upd = update_time(max(args.reps, 10))
    rows = []
    for kind, ag in (("env", None), ("rollout", agents)):
        one = steps_per_s(1, args.steps // 5, ag, args.reps)
        vec = steps_per_s(args.n_envs, args.steps, ag, args.reps)
        for mode, sps in (("1 env loop", one), (f"{args.n_envs} envs vectorised", vec)):
            proj = PAPER_STEPS / sps + PAPER_UPDATES * t_upd if kind == "rollout" else None
            rows.append((kind, mode, sps, sps / one, proj))
    print(f"one update round (2 agents, batch 1024): {t_upd * 1e3:.1f} ms "
          f"-> {PAPER_UPDATES * t_upd / 60:.1f} min of a paper-length run\n")
    print(f"clock: {CLOCK[0].__name__}")
    print("| what | mode | env steps/s | ratio vs 1 env | paper-length baseline (min) |")
    print("|---|---|---|---|---|")
    for kind, mode, sps, ratio, proj in rows:
        p = f"{proj / 60:.1f}" if proj is not None else "-"
        print(f"| {kind} | {mode} | {sps:,.0f} | {ratio:.1f}x | {p} |")
    if args.check:
        from soo_interp.rl.training import RLTrainConfig, train

        cfg = RLTrainConfig(episodes=args.episodes, n_envs=args.n_envs)
        t0 = CLOCK[0]()
        train(cfg, Path(tempfile.mkdtemp()) / "run", progress=False)
        dt = CLOCK[0]() - t0
        print(f"\nend to end: {args.episodes} episodes in {dt:.1f} s -> paper length "
              f"{dt * 40_000 / args.episodes / 60:.1f} min (measured, linear extrapolation)")


if __name__ == "__main__":
    main()
