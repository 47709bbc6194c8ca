"""Behaviour policies for the locomotion datasets: online SAC on the v5 env, resumable, then the expert and
medium policy files (``envs/policies/<robot>-{expert,medium}.pt``, format in envs/locomotion.py).

SAC is the shared SAC-N learner (methods/learners/sacn.py) with 2 critics of 2x256 (= SAC with twin Q and
automatic entropy tuning), one update per environment step after ``start_steps`` uniform-random steps,
batch 256, a 1M-transition replay buffer; timeouts bootstrap, terminations do not. Every ``eval_every``
steps the deterministic policy is evaluated (fixed starts) and its actor kept as a snapshot. At the end,
following D4RL: expert = the best-evaluated snapshot of a trained actor (after ``start_steps``), medium = the
snapshot whose return is closest to ``medium_fraction`` (1/3) of the expert's.

Resume: a checkpoint (learner, optimizers, replay buffer, RNG states, snapshots, step and episode
counters) is written at the first episode end after every ``checkpoint_every`` steps; episode i of the
training env starts from ``reset(seed=...+i)``, so a killed run re-run with the same command continues
exactly where the checkpoint left off (tested: resumed equals uninterrupted).
"""
from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import BenchError
from core.io import atomic_write_bytes
from envs.tasks import TaskSpec

TRAIN_EVAL_SEED = 20_000  # the trainer's evaluation starts, apart from the benchmark's (10_000)


@dataclass(frozen=True)
class TrainConfig:
    total_steps: int = 1_000_000      # environment steps (one SAC update per step after start_steps)
    start_steps: int = 10_000         # uniform-random actions first (standard SAC)
    batch_size: int = 256
    hidden_dims: tuple[int, ...] = (256, 256)
    lr: float = 3e-4                  # actor, critic and temperature
    gamma: float = 0.99
    tau: float = 0.005
    buffer_size: int = 1_000_000
    eval_every: int = 10_000          # evaluate and keep a snapshot every this many steps
    eval_episodes: int = 10
    checkpoint_every: int = 20_000    # checkpoint at the first episode end after this many steps
    medium_fraction: float = 1 / 3    # medium = the snapshot whose return is closest to this x the expert's


class Replay:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity, self.size, self.ptr = capacity, 0, 0
        self.arrays = {"obs": np.zeros((capacity, obs_dim), np.float32), "act": np.zeros((capacity, act_dim), np.float32),
                       "reward": np.zeros(capacity, np.float32), "next_obs": np.zeros((capacity, obs_dim), np.float32),
                       "done": np.zeros(capacity, np.float32)}

    def add(self, **row) -> None:
        for k, v in row.items():
            self.arrays[k][self.ptr] = v
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        index = rng.integers(0, self.size, batch_size)
        return {k: torch.as_tensor(v[index]) for k, v in self.arrays.items()}

    def state_dict(self) -> dict:
        return {"size": self.size, "ptr": self.ptr, **{k: v[:self.size].copy() for k, v in self.arrays.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.ptr = state["size"], state["ptr"]
        for k in self.arrays:
            self.arrays[k][:self.size] = state[k]


class PolicyTrainer:
    """One robot's SAC run in ``work_dir``; ``run()`` trains (or resumes) and writes the policy files."""

    def __init__(self, task: TaskSpec, config: TrainConfig, work_dir: str | Path, seed: int = 0):
        from methods.learners.sacn import SACN, SACNConfig
        self.task, self.config, self.seed = task, config, seed
        self.work_dir = Path(work_dir)
        self.checkpoint_path = self.work_dir / "checkpoint.pt"
        torch.manual_seed(seed)
        self.learner = SACN(task.obs_dim, task.act_dim,
                            SACNConfig(hidden_dims=tuple(config.hidden_dims), num_critics=2, actor_lr=config.lr,
                                       critic_lr=config.lr, alpha_lr=config.lr, gamma=config.gamma, tau=config.tau),
                            torch.device("cpu"))
        self.replay = Replay(task.obs_dim, task.act_dim, config.buffer_size)
        self.rng = np.random.default_rng([seed, 7])
        self.step = self.episode = 0
        self.snapshots: list[dict] = []  # {"step", "return", "actor"}
        self.elapsed_s = 0.0

    # -------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "seed": self.seed, "task": self.task.name,
                "learner": self.learner.state_dict(), "replay": self.replay.state_dict(),
                "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "step": self.step,
                "episode": self.episode, "snapshots": self.snapshots, "elapsed_s": self.elapsed_s}

    def load_state_dict(self, state: dict) -> None:
        mine = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "total_steps"}
        theirs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in state["config"].items() if k != "total_steps"}
        if mine != theirs or state["seed"] != self.seed:
            raise BenchError(f"{self.checkpoint_path} was trained with another config or seed ({theirs}, seed "
                             f"{state['seed']}); use another --work-dir or delete it to start over")
        self.learner.load_state_dict(state["learner"])
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.step, self.episode, self.snapshots = state["step"], state["episode"], state["snapshots"]
        self.elapsed_s = state["elapsed_s"]

    def save(self) -> None:
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        atomic_write_bytes(self.checkpoint_path, buffer.getvalue())

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        self.load_state_dict(torch.load(self.checkpoint_path, map_location="cpu", weights_only=False))
        return True

    # ----------------------------------------------------------------------------------- training
    def _act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.learner.act(torch.as_tensor(obs, dtype=torch.float32)).numpy()

    def evaluate(self) -> float:
        from envs.evaluation import evaluate
        return float(evaluate(self._act, self.task, self.config.eval_episodes, seed=TRAIN_EVAL_SEED).mean())

    def run(self, progress=None, stop_after_step: int | None = None, log=print) -> dict:
        """Train to ``total_steps`` (resuming a checkpoint if there is one). ``stop_after_step`` (tests) returns
        early once that many steps are done, like a kill: only the last checkpoint survives."""
        from envs.locomotion import make_locomotion_env
        c = self.config
        if self.resume():
            log(f"{self.task.group}: resuming {self.checkpoint_path} at step {self.step:,}")
        env = make_locomotion_env(self.task)
        last_checkpoint, started = self.step, time.perf_counter() - self.elapsed_s
        bar = progress(total=c.total_steps, initial=self.step, desc=f"SAC {self.task.group}") if progress else None
        while self.step < c.total_steps:
            obs, _ = env.reset(seed=self.seed * 1_000_003 + self.episode)
            done = False
            while not done and self.step < c.total_steps:
                if self.step < c.start_steps:
                    action = self.rng.uniform(-1.0, 1.0, self.task.act_dim).astype(np.float32)
                else:
                    with torch.no_grad():
                        action = self.learner.actor.sample(torch.as_tensor(obs, dtype=torch.float32)[None])[0][0].numpy()
                next_obs, reward, terminated, truncated, _ = env.step(action)
                self.replay.add(obs=obs, act=action, reward=reward, next_obs=next_obs, done=float(terminated))
                obs, done = next_obs, terminated or truncated
                self.step += 1
                if self.step >= c.start_steps:
                    self.learner.update(self.replay.sample(self.rng, c.batch_size))
                if self.step % c.eval_every == 0:
                    score = self.evaluate()
                    self.snapshots.append({"step": self.step, "return": score,
                                           "actor": {k: v.clone() for k, v in self.learner.actor.state_dict().items()}})
                    if bar:
                        bar.set_postfix(eval_return=f"{score:.0f}")
                if bar:
                    bar.update(1)
                if stop_after_step is not None and self.step >= stop_after_step:
                    return {"stopped_at": self.step}
            self.episode += 1
            self.elapsed_s = time.perf_counter() - started
            if self.step - last_checkpoint >= c.checkpoint_every or self.step >= c.total_steps:
                self.save()
                last_checkpoint = self.step
        if bar:
            bar.close()
        env.close()
        return self.select()

    def select(self) -> dict:
        """Expert = best-evaluated snapshot; medium = return closest to medium_fraction x the expert's.

        Snapshots taken before SAC has trained (step <= start_steps) are left out: an untrained actor's
        near-zero actions can out-score early learning (ant stands still and collects its healthy reward)."""
        trained = [s for s in self.snapshots if s["step"] > self.config.start_steps]
        if not trained:
            raise BenchError(f"{self.task.group}: no evaluation snapshot of a trained actor yet (steps "
                             f"{self.step:,}, start_steps {self.config.start_steps:,}, eval_every "
                             f"{self.config.eval_every:,}); train longer with --steps")
        expert = max(trained, key=lambda s: s["return"])
        target = self.config.medium_fraction * expert["return"]
        medium = min(trained, key=lambda s: (abs(s["return"] - target), s["step"]))
        return {"expert": expert, "medium": medium, "steps": self.step, "elapsed_s": self.elapsed_s}

    def write_policies(self, chosen: dict, directory: str | Path | None = None) -> list[Path]:
        from envs.locomotion import policy_path, save_policy
        from methods.nets import TanhGaussianActor
        paths = []
        for level in ("expert", "medium"):
            snap = chosen[level]
            actor = TanhGaussianActor(self.task.obs_dim, self.task.act_dim, tuple(self.config.hidden_dims))
            actor.load_state_dict(snap["actor"])
            notes = (f"SAC (2 critics) seed {self.seed}, snapshot at step {snap['step']:,} of {chosen['steps']:,}; "
                     f"{level}: {'best evaluation' if level == 'expert' else f'return closest to {self.config.medium_fraction:.2f} x expert'}")
            paths.append(save_policy(policy_path(self.task.group, level, directory), self.task, level, actor,
                                     self.config.hidden_dims, eval_return=snap["return"], train_steps=snap["step"],
                                     notes=notes))
        return paths


def train_policies(task: TaskSpec, config: TrainConfig, work_dir: str | Path, seed: int = 0,
                   policies_dir: str | Path | None = None, progress=None, log=print) -> list[Path]:
    """Train (or resume) ``task``'s robot and write its expert and medium policy files."""
    trainer = PolicyTrainer(task, config, Path(work_dir) / f"{task.group}-seed{seed}", seed)
    chosen = trainer.run(progress=progress, log=log)
    paths = trainer.write_policies(chosen, policies_dir)
    log(f"{task.group}: expert return {chosen['expert']['return']:.1f} (step {chosen['expert']['step']:,}), medium "
        f"{chosen['medium']['return']:.1f} (step {chosen['medium']['step']:,}); wrote {', '.join(map(str, paths))}")
    return paths
