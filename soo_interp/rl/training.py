"""Train one MADDPG baseline (deceptive or honest blue) with checkpoints and exact resume;
train several in parallel processes (one torch thread each).

A run folder holds `policy.safetensors/json` (the result), `agents.safetensors/json` (every
network, for continued training), `log.csv` (one row per round of
`n_envs` episodes), `run.json`, while training `checkpoint.safetensors/json`, and
`snapshots/ep{N}/policy.*`: the policy at the end of the round that reaches each episode count in
`snapshots` (N = that round's episode count), for accuracy vs episodes from the same runs (the
exploration noise follows the whole run's schedule, not a shorter run's). Checkpoints
are taken at episode boundaries; a run killed at any point resumes from its last checkpoint and
ends with exactly the weights an uninterrupted run gets.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..config import Config
from ..errors import CheckpointError, ConfigError, OutputExistsError, SooError, check_choice, short
from ..executors import Executor, spawn_pool
from ..runs import (
    atomic_write_text,
    check_out_dir,
    check_resume_or_overwrite,
    claim_dir,
    claim_resumable,
    lock_run,
    write_run_json,
)
from .checkpoint import (
    CHECKPOINT,
    flatten,
    load_pair,
    save_agents,
    save_pair,
    save_policy,
    unflatten,
)
from .env import AGENTS, BASELINES, EnvConfig, PhysicalDeceptionEnv
from .maddpg import MaddpgConfig, OUNoise, ReplayBuffer, act, build_agents, update

KIND = "rl-train"  # run-folder marker kind (see runs.check_out_dir)
PROTOCOL_KIND = "rl-protocol"  # the folder holding one subfolder per run
SNAPSHOTS = "snapshots"


@dataclasses.dataclass
class RLTrainConfig(Config):
    """One baseline run. `env` and `maddpg` are the nested environment and MADDPG configs (a
    dict of some of their keys fills the rest with defaults; `--env.variant keep_close` on the
    command line); the environment's `n_envs` and `baseline` are always this run's (set them
    here, not in `env`)."""

    baseline: str = "deceptive"
    seed: int = 0
    episodes: int = 40_000
    n_envs: int = 100
    checkpoint_every: int = 20   # rounds of n_envs episodes
    snapshots: tuple[int, ...] = ()  # episodes to save the policy at
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    maddpg: MaddpgConfig = dataclasses.field(default_factory=MaddpgConfig)

    positive = ("episodes", "n_envs", "checkpoint_every")
    choices = {"baseline": BASELINES}

    @property
    def rounds(self) -> int:
        return -(-self.episodes // self.n_envs)

    def check(self) -> None:
        bad = [n for n in self.snapshots if not 0 < n < self.episodes]
        if bad:
            raise ConfigError(f"snapshots {bad} must be whole numbers of episodes in (0, "
                              f"{self.episodes}); e.g. --snapshots 2500,10000")
        if (self.env.n_envs, self.env.baseline) != (self.n_envs, self.baseline):
            self.env = dataclasses.replace(self.env, n_envs=self.n_envs, baseline=self.baseline)


class Run:
    """The mutable state of a run: networks, optimizers, buffer, RNGs, counters, log."""

    def __init__(self, cfg: RLTrainConfig):
        torch.manual_seed(cfg.seed)
        self.mcfg = cfg.maddpg
        self.env = PhysicalDeceptionEnv(cfg.env)
        rngs = np.random.default_rng(cfg.seed).spawn(3)
        self.env.rng, self.noise_rng, self.sample_rng = rngs
        self.agents = build_agents(self.mcfg)
        steps = cfg.episodes * self.env.config.episode_length
        self.buffer = ReplayBuffer(min(self.mcfg.buffer_size, steps))
        self.round, self.env_steps, self.log = 0, 0, []
        self.extra: dict | None = None  # extra actor-loss terms (see maddpg.update)

    def state(self) -> tuple[dict, dict]:
        tensors: dict[str, torch.Tensor] = {}
        skel = {
            "agents": flatten({a: {"nets": m.state_dict(), "actor_opt": m.actor_opt.state_dict(),
                                   "critic_opt": m.critic_opt.state_dict()}
                               for a, m in self.agents.items()}, "agents", tensors),
            "buffer": flatten({k: torch.from_numpy(v[:self.buffer.size])
                               for k, v in self.buffer.data.items()}, "buffer", tensors),
            "buffer_head": self.buffer.head,
            "rngs": [r.bit_generator.state for r in (self.env.rng, self.noise_rng,
                                                     self.sample_rng)],
            "round": self.round, "env_steps": self.env_steps, "log": self.log,
        }
        return tensors, skel

    def load(self, tensors: dict, skel: dict) -> None:
        agents = unflatten(skel["agents"], tensors)
        for a, m in self.agents.items():
            m.load_state_dict(agents[a]["nets"])
            m.actor_opt.load_state_dict(agents[a]["actor_opt"])
            m.critic_opt.load_state_dict(agents[a]["critic_opt"])
        for k, v in unflatten(skel["buffer"], tensors).items():
            self.buffer.data[k][:len(v)] = v.numpy()
            self.buffer.size = len(v)
        self.buffer.head = skel["buffer_head"]
        for r, st in zip((self.env.rng, self.noise_rng, self.sample_rng), skel["rngs"]):
            r.bit_generator.state = st
        self.round, self.env_steps, self.log = skel["round"], skel["env_steps"], skel["log"]


def play_round(run: Run, scale: float) -> dict:
    """One episode in each environment with exploration noise; updates as they fall due."""
    env, m = run.env, run.mcfg
    obs, _ = env.reset()
    noise = {a: OUNoise((env.config.n_envs, 2), run.noise_rng) for a in AGENTS}
    ret = {a: np.zeros(env.config.n_envs) for a in AGENTS}
    blue_goal = np.zeros(env.config.n_envs, bool)
    for _ in range(env.config.episode_length):
        acts = {a: np.clip(act(run.agents[a].actor, obs[a]) + noise[a].sample(scale), -1, 1)
                for a in AGENTS}
        nxt, rew, term, _, _ = env.step(acts)
        run.buffer.add(obs_blue=obs["blue"], obs_red=obs["red"], act_blue=acts["blue"],
                       act_red=acts["red"], rew_blue=rew["blue"], rew_red=rew["red"],
                       next_blue=nxt["blue"], next_red=nxt["red"], done=term["blue"])
        due = (run.env_steps + env.config.n_envs) // m.steps_per_update \
            - run.env_steps // m.steps_per_update
        run.env_steps += env.config.n_envs
        if run.buffer.size >= m.batch_size:
            for _ in range(due):
                update(run.agents, run.buffer.sample(run.sample_rng, m.batch_size), m, run.extra)
        for a in AGENTS:
            ret[a] += rew[a]
        blue_goal |= env.distances()["blue_goal"] <= env.config.goal_radius
        obs = nxt
    return {"return_blue": ret["blue"].mean(), "return_red": ret["red"].mean(),
            "trap_rate": env.trapped.mean(), "blue_goal_rate": blue_goal.mean()}


def check_run_dir(out: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """Before any work: `out` must be new, or an earlier `rl train` run folder that we may
    resume (`resume`) or replace (`overwrite`); anything else is refused with one line."""
    out = Path(out)
    check_resume_or_overwrite(resume, overwrite)
    if (out / f"{CHECKPOINT}.json").exists() and not (resume or overwrite):
        raise OutputExistsError(f"run folder {out} holds a checkpoint; continue it with --resume, "
                                "or pass --overwrite to discard it")
    check_out_dir(out, overwrite, kind=KIND, resume=resume)


def check_protocol_dir(out: str | Path) -> None:
    """Before any work: the protocol folder must be new, empty or one `rl train` wrote (runs
    are added to it; each run folder is checked by `check_run_dir`); a user's folder, the
    current folder and other kinds of runs are refused with one line."""
    check_out_dir(out, overwrite=True, kind=PROTOCOL_KIND)  # never replaced: runs are added


def claim_protocol_dir(out: str | Path) -> None:
    """Create and mark the protocol folder, after every check has passed (one `rl train` at a
    time adds runs to it)."""
    claim_resumable(out, PROTOCOL_KIND)


def train(cfg: RLTrainConfig, out: str | Path, resume: bool = False, overwrite: bool = False,
          progress: bool = True, on_round: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Train one baseline into `out`; returns the per-round log. `resume` continues from the
    folder's checkpoint (whose config must equal `cfg`)."""
    torch.set_num_threads(1)
    out = Path(out)
    check_run_dir(out, resume, overwrite)
    lock_run(out)  # one process at a time trains into `out`
    run = Run(cfg)
    if resume and (out / "policy.json").exists() and not (out / f"{CHECKPOINT}.json").exists():
        return pd.read_csv(out / "log.csv")  # already complete
    if resume and (out / f"{CHECKPOINT}.json").exists():
        tensors, meta = load_pair(out, CHECKPOINT)
        if RLTrainConfig.from_dict(meta["config"]).to_dict() != cfg.to_dict():
            raise CheckpointError(f"{out} was started with config {meta['config']}, not "
                                  f"{cfg.to_dict()}; resume with the same settings")
        run.load(tensors, meta["state"])
    else:
        claim_dir(out, KIND, overwrite=True)  # check_run_dir refused what may not be replaced
    m, total = run.mcfg, cfg.rounds
    explore = max(1.0, m.explore_fraction * cfg.episodes)
    bar = tqdm(total=total, initial=run.round, disable=not progress, desc=f"{cfg.baseline} "
               f"seed {cfg.seed}")
    while run.round < total:
        frac = max(0.0, 1 - run.round * cfg.n_envs / explore)
        scale = m.noise_end + (m.noise_start - m.noise_end) * frac
        row = play_round(run, scale)
        run.log.append({"round": run.round, "episodes": (run.round + 1) * cfg.n_envs,
                        "noise": scale, **{k: float(v) for k, v in row.items()}})
        run.round += 1
        bar.update()
        for n in cfg.snapshots:
            if (run.round - 1) * cfg.n_envs < n <= run.round * cfg.n_envs:
                done = run.round * cfg.n_envs
                _save_policy(out / SNAPSHOTS / f"ep{done}", run, cfg, done)
        if run.round % cfg.checkpoint_every == 0 and run.round < total:
            tensors, skel = run.state()
            save_pair(out, CHECKPOINT, tensors, {"config": cfg.to_dict(), "state": skel})
        if on_round is not None:
            on_round(run.round)
    bar.close()
    log = pd.DataFrame(run.log).assign(baseline=cfg.baseline, seed=cfg.seed)
    atomic_write_text(out / "log.csv", log.to_csv(index=False))
    _save_policy(out, run, cfg, cfg.episodes)
    save_agents(out, run.agents, {"config": cfg.to_dict(), "episodes": cfg.episodes})
    write_run_json(out, cfg.to_dict(), cfg.seed)
    for suffix in ("json", "safetensors"):
        (out / f"{CHECKPOINT}.{suffix}").unlink(missing_ok=True)
    return log


def _save_policy(folder: Path, run: Run, cfg: RLTrainConfig, episodes: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_policy(folder, {a: ag.actor for a, ag in run.agents.items()},
                {"baseline": cfg.baseline, "seed": cfg.seed, "episodes": episodes,
                 "env": run.env.config.to_dict(), "config": cfg.to_dict()})


def _train_worker(args: tuple) -> str:
    cfg_dict, out, resume, overwrite, progress = args
    train(RLTrainConfig.from_dict(cfg_dict), out, resume=resume, overwrite=overwrite,
          progress=progress)
    return out


def _train_task(job: tuple) -> dict:
    """One run as an executor task: a status dict, its error reported rather than raised, so
    one failed run never stops the others (`train_many` raises once all are done)."""
    name = Path(job[1]).name
    try:
        _train_worker(job)
    except Exception as e:  # noqa: BLE001 - reported in the status, raised by train_many
        return {"name": name, "status": "failed", "log": None,
                "error": f"{type(e).__name__}: {short(e)}"}
    return {"name": name, "status": "done", "log": None}


def train_many(configs: list[RLTrainConfig], outs: list[str | Path], workers: int = 2,
               resume: bool = False, overwrite: bool = False,
               progress: bool = False, executor: Executor | None = None) -> list[str]:
    """Train several runs, `workers` at a time in spawned processes (one torch thread each), or
    on a Ray cluster or submitit (Slurm) `executor` like the sweep's cells (its logs under the
    runs' parent folder, `submitit/`); `progress` shows a bar per run when they run one at a time
    in this process (a bar over runs on another executor)."""
    remote = executor is not None and executor.name != "local"
    jobs = [(c.to_dict(), str(o), resume, overwrite, progress and workers <= 1 and not remote)
            for c, o in zip(configs, outs)]
    if remote:
        statuses = executor.run(_train_task, jobs, [Path(o).name for o in outs],
                                log_dir=Path(outs[0]).parent, progress=progress)
        failed = [s for s in statuses if s["status"] == "failed"]
        if failed:
            raise SooError(f"{len(failed)} of {len(jobs)} runs failed ("
                           + "; ".join(f"{s['name']}: {s.get('error')}" for s in failed)
                           + "); the others are kept: fix the cause and rerun with --resume")
        return [str(o) for o in outs]
    if workers <= 1:
        return [_train_worker(j) for j in jobs]

    with spawn_pool(workers) as pool:
        return list(pool.map(_train_worker, jobs))


def run_name(baseline: str, seed: int) -> str:
    """Folder name of one baseline run inside a protocol folder."""
    check_choice("baseline", baseline, BASELINES)
    return f"{baseline}-s{seed}"
