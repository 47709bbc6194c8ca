"""Deterministic evaluation: the same starts at every evaluation, all episodes stepped in lockstep so the
policy sees one batch per time step."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import gymnasium as gym
import numpy as np

from envs.tasks import TaskSpec

EVAL_SEED = 10_000  # evaluation starts are seeded apart from everything used for data generation


@lru_cache(maxsize=8)
def _envs(task_name: str, count: int) -> tuple[gym.Env, ...]:
    """Evaluation envs are built once per process (building a maze compiles a MuJoCo model)."""
    from envs.maze import make_maze_env
    from envs.tasks import get_task
    return tuple(make_maze_env(get_task(task_name)) for _ in range(count))


def evaluate(act: Callable[[np.ndarray], np.ndarray], task: TaskSpec, episodes: int,
             seed: int = EVAL_SEED) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes of the batched deterministic policy ``act``.

    Episode i starts from ``env.reset(seed=seed + i)``, so every evaluation sees the same starts.
    """
    from envs.maze import reset_to_goal
    envs = _envs(task.name, episodes)
    obs = np.stack([reset_to_goal(env, task, seed=seed + i) for i, env in enumerate(envs)])
    returns = np.zeros(episodes)
    active = np.ones(episodes, bool)
    low, high = task.action_bounds()
    while active.any():
        actions = np.clip(act(obs), low, high)
        for i in np.flatnonzero(active):
            step_obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
            obs[i] = step_obs["observation"]
            returns[i] += reward
            active[i] = not (terminated or truncated)
    return returns


def normalized_score(returns: np.ndarray | float, reference: dict[str, float]) -> np.ndarray | float:
    """D4RL normalization: 100 * (R - min) / (max - min)."""
    return 100.0 * (np.asarray(returns) - reference["min"]) / (reference["max"] - reference["min"])
