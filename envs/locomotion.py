"""Locomotion (Gymnasium MuJoCo v5): environments, behaviour-policy files, and offline dataset generation.

Per robot and data scale, three Minari datasets, D4RL's recipe on the v5 envs:
``bench/<robot>/expert[-<scale>]-v1`` (the expert policy; D^E = its first 5 episodes),
``bench/<robot>/medium[-<scale>]-v1`` (a policy at about 1/3 of the expert's return) and
``bench/<robot>/medium-expert[-<scale>]-v1`` (the medium episodes followed by the expert ones, as D4RL).
Episodes run to a termination (hopper, walker2d, ant fall) or the 1000-step time limit (a truncation);
collection continues until the dataset holds at least ``locomotion_steps`` transitions (and, for the
expert data, ``expert_episodes`` episodes), whole episodes only. Actions are *sampled* from the
behaviour policy (tanh-Gaussian, as D4RL collected from its SAC policies), from a seeded generator, so
the same seed and policy files give the same data. Scores use D4RL's reference returns (envs/tasks.py).

Behaviour-policy files, ``envs/policies/<robot>-{expert,medium}.pt`` (``torch.save`` of a plain dict,
loadable with ``weights_only=True``), format ``bench-policy-v1``::

    format       "bench-policy-v1"
    robot, level "hopper", "expert" | "medium"
    env_id       "Hopper-v5"; env_kwargs: the task's (ant: include_cfrc_ext_in_observation=False)
    obs_dim, act_dim, hidden_dims   sizes of the actor
    actor        state dict of methods.nets.TanhGaussianActor(obs_dim, act_dim, hidden_dims): raw
                 observations in (no normalization), a = tanh(u), u ~ N(mu(s), exp(log_std(s)))
    eval_return  mean deterministic return measured when the file was written (or None)
    train_steps  environment steps of training behind it (or None); notes: free text

``bench data train-policies`` (benchmark/policy_training.py) writes them; tests write tiny ones of their own.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from core.errors import BenchError
from core.io import atomic_write_bytes
from core.seeding import stream_seed
from envs.storage import DATA_SCALES, Episode, dataset_status, named_dataset_id, write_dataset
from envs.tasks import LOCOMOTION_SPECS, TaskSpec, get_task

POLICY_FORMAT = "bench-policy-v1"
LEVELS = ("expert", "medium")
DEFAULT_POLICIES_DIR = Path(__file__).resolve().parent / "policies"
POLICIES_ENV = "BENCH_POLICIES_DIR"  # overrides the default policies directory (tests use a temp dir)
# Measured here (1 thread, SAC with 2 critics 2x256, one update per env step): used in messages only.
TRAINING_HOURS_PER_ROBOT = "about 1.5-3 h per robot for 1M steps"


def make_locomotion_env(task: TaskSpec) -> gym.Env:
    """The task's MuJoCo env with its 1000-step time limit (truncation) and its terminations."""
    return gym.make(task.env_id, max_episode_steps=task.max_episode_steps, **task.env_kwargs)


def robot_task(robot: str) -> TaskSpec:
    """Any task of ``robot`` (they share env and expert data)."""
    if robot not in LOCOMOTION_SPECS:
        raise BenchError(f"unknown robot {robot!r}; valid: {', '.join(LOCOMOTION_SPECS)}")
    return get_task(f"{robot}-medium")


# ----------------------------------------------------------------------------------- policy files
def policies_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get(POLICIES_ENV) or DEFAULT_POLICIES_DIR)


def policy_path(robot: str, level: str, directory: str | Path | None = None) -> Path:
    return policies_dir(directory) / f"{robot}-{level}.pt"


def missing_policies(robots: list[str], directory: str | Path | None = None) -> list[Path]:
    return [policy_path(r, level, directory) for r in robots for level in LEVELS
            if not policy_path(r, level, directory).exists()]


def missing_policies_message(robots: list[str], missing: list[Path]) -> str:
    envs = ",".join(robots)
    return (f"behaviour policy file(s) not found: {', '.join(str(p) for p in missing)}; they are trained locally "
            f"(not trained yet in this checkout): run `bench data train-policies --envs {envs}` (SAC, "
            f"{TRAINING_HOURS_PER_ROBOT} on a 2-core CPU, resumable) and then this command again; without them: "
            f"`bench data fetch --envs {envs}` (network) or `bench data import FILE.hdf5 --task ... --kind ...`")


def save_policy(path: str | Path, task: TaskSpec, level: str, actor, hidden_dims, eval_return: float | None = None,
                train_steps: int | None = None, notes: str = "") -> Path:
    """Write a ``bench-policy-v1`` file (atomically) from a methods.nets.TanhGaussianActor."""
    import torch
    payload = {"format": POLICY_FORMAT, "robot": task.group, "level": level, "env_id": task.env_id,
               "env_kwargs": dict(task.env_kwargs), "obs_dim": task.obs_dim, "act_dim": task.act_dim,
               "hidden_dims": [int(h) for h in hidden_dims],
               "actor": {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()},
               "eval_return": None if eval_return is None else float(eval_return),
               "train_steps": None if train_steps is None else int(train_steps), "notes": notes}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


@dataclass
class BehaviourPolicy:
    """A loaded policy file, evaluated in numpy (batch 1 in a collection loop is ~10x faster than torch)."""
    layers: list[tuple[np.ndarray, np.ndarray]]  # (weight (out, in), bias) of the actor's MLP
    act_dim: int
    meta: dict
    sha256: str

    def _mu_log_std(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.asarray(obs, np.float64)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        mu, log_std = h[..., :self.act_dim], h[..., self.act_dim:]
        return np.clip(mu, -9.0, 9.0), np.clip(log_std, -5.0, 2.0)  # TanhGaussianActor's clamps

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mu, log_std = self._mu_log_std(obs)
        return np.tanh(mu + np.exp(log_std) * rng.standard_normal(mu.shape)).astype(np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic (batched) action tanh(mu(s)), for evaluation."""
        return np.tanh(self._mu_log_std(obs)[0]).astype(np.float32)


def actor_layers(actor: dict, obs_dim: int, act_dim: int,
                 hidden_dims: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) float64 arrays of a TanhGaussianActor state dict (its ``trunk``: Linear and ReLU
    layers, obs_dim -> hidden_dims -> 2 act_dim). Keys and shapes must match exactly, and the weights round
    to float32 first, as loading them into the actor would; a mismatch is a RuntimeError, as there."""
    widths = [obs_dim, *hidden_dims, 2 * act_dim]
    shapes = {}
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        shapes[f"trunk.{2 * i}.weight"], shapes[f"trunk.{2 * i}.bias"] = (width_out, width_in), (width_out,)
    if set(actor) != set(shapes) or any(tuple(actor[key].shape) != shape for key, shape in shapes.items()):
        raise RuntimeError(f"expected tensors {shapes}")
    return [tuple(actor[f"trunk.{2 * i}.{name}"].detach().float().double().numpy() for name in ("weight", "bias"))
            for i in range(len(widths) - 1)]


def load_policy(path: str | Path, task: TaskSpec) -> BehaviourPolicy:
    """Load and validate a policy file for ``task``'s robot, with a one-line error on any mismatch."""
    import torch
    path = Path(path)
    raw = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:
        raise BenchError(f"policy file {path} is unreadable ({type(e).__name__}); retrain it with "
                         f"`bench data train-policies --envs {task.group}`") from None
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT:
        raise BenchError(f"policy file {path} is not a {POLICY_FORMAT} file (see envs/locomotion.py)")
    if (payload.get("obs_dim"), payload.get("act_dim")) != (task.obs_dim, task.act_dim):
        raise BenchError(f"policy file {path} is for obs {payload.get('obs_dim')} / act {payload.get('act_dim')}, "
                         f"{task.env_id} here has obs {task.obs_dim} / act {task.act_dim}")
    hidden_dims = tuple(payload["hidden_dims"])
    try:
        layers = actor_layers(payload["actor"], task.obs_dim, task.act_dim, hidden_dims)
    except Exception as e:
        raise BenchError(f"policy file {path}: actor weights do not fit hidden_dims {payload['hidden_dims']} "
                         f"({type(e).__name__})") from None
    meta = {k: v for k, v in payload.items() if k != "actor"}
    return BehaviourPolicy(layers, task.act_dim, meta, hashlib.sha256(raw).hexdigest())


# ------------------------------------------------------------------------------------- collection
def collect_episodes(task: TaskSpec, sample: Callable[[np.ndarray], np.ndarray], num_steps: int,
                     min_episodes: int, seed: int, progress: Callable[[int], None] | None = None):
    """Whole episodes of ``sample`` (obs -> action) until >= ``num_steps`` transitions and ``min_episodes``
    episodes. Episode i starts from ``env.reset(seed=seed + i)``."""
    env = make_locomotion_env(task)
    episodes, total = [], 0
    while total < num_steps or len(episodes) < min_episodes:
        obs, _ = env.reset(seed=seed + len(episodes))
        observations, actions, rewards = [obs], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action = sample(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
        T = len(actions)
        terminations, truncations = np.zeros(T, bool), np.zeros(T, bool)
        (terminations if terminated else truncations)[-1] = True
        rewards = np.asarray(rewards, np.float64)
        episodes.append(Episode(np.asarray(observations), np.asarray(actions, np.float32), rewards, rewards,
                                terminations, truncations))
        total += T
        if progress:
            progress(T)
    env.close()
    return episodes


def generate_locomotion_datasets(task: TaskSpec, scale: str, seed: int = 0, force: bool = False,
                                 progress_factory=None, log=print, policies_dir=None) -> list[str]:
    """Build ``task``'s robot's expert, medium and medium-expert datasets at ``scale``; return their ids."""
    robot, data = task.group, DATA_SCALES[scale]
    ids = {name: named_dataset_id(task, name, scale) for name in ("expert", "medium", "medium-expert")}
    if not force and all(dataset_status(i) == "ok" for i in ids.values()):
        log(f"{robot}: datasets already present ({', '.join(ids.values())}); --force rebuilds them")
        return list(ids.values())
    if missing := missing_policies([robot], policies_dir):
        raise BenchError(missing_policies_message([robot], missing))
    policies = {level: load_policy(policy_path(robot, level, policies_dir), task) for level in LEVELS}
    total = max(data.locomotion_steps, data.expert_episodes * task.max_episode_steps) + data.locomotion_steps
    bar = progress_factory(total=total, desc=f"generate {robot} ({scale})") if progress_factory else None
    episodes = {}
    for k, level in enumerate(LEVELS, start=1):
        rng = np.random.default_rng([seed, k])
        policy = policies[level]
        episodes[level] = collect_episodes(
            task, lambda obs, p=policy, r=rng: p.sample(obs, r), data.locomotion_steps,
            data.expert_episodes if level == "expert" else 1, seed=stream_seed(seed, f"{level} episode starts"),
            progress=bar.update if bar else None)
    if bar:
        bar.close()
    reference = {task.reward_type: task.fixed_reference()}
    common = {"bench_source": "generated", "bench_seed": seed, "bench_scale": scale, "bench_reference": reference}
    policy_meta = {level: {"file": policy_path(robot, level, policies_dir).name, "sha256": p.sha256,
                           "eval_return": p.meta.get("eval_return"), "train_steps": p.meta.get("train_steps")}
                   for level, p in policies.items()}
    contents = {"expert": ["expert"], "medium": ["medium"], "medium-expert": ["medium", "expert"]}
    for name, levels in contents.items():
        eps = [e for level in levels for e in episodes[level]]
        write_dataset(ids[name], task, eps, reference,
                      {**common, "bench_kind": "expert" if name == "expert" else "supplementary",
                       "bench_dataset": name, "bench_policies": {lv: policy_meta[lv] for lv in levels},
                       "bench_mean_return": float(np.mean([e.rewards.sum() for e in eps]))},
                      f"{' + '.join(levels)} behaviour policy episodes on {task.env_id} (sampled actions).",
                      algorithm_name="bench-sac-behaviour-policy")
    log(f"{robot}: wrote {', '.join(ids.values())}; mean returns expert "
        f"{np.mean([e.rewards.sum() for e in episodes['expert']]):.1f}, medium "
        f"{np.mean([e.rewards.sum() for e in episodes['medium']]):.1f} (D4RL reference {task.reference})")
    return list(ids.values())
