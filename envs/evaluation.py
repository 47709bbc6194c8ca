"""Deterministic evaluation: the same starts at every evaluation, all episodes stepped in lockstep so the
policy sees one batch per time step. Maze2d episodes run to the time limit; locomotion episodes end at a
termination (hopper, walker2d and ant falling) or the 1000-step time limit, whichever comes first."""
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
    from envs.tasks import get_task
    task = get_task(task_name)
    if task.family == "locomotion":
        from envs.locomotion import make_locomotion_env
        return tuple(make_locomotion_env(task) for _ in range(count))
    from envs.maze import make_maze_env
    return tuple(make_maze_env(task) for _ in range(count))


def _reset(env: gym.Env, task: TaskSpec, seed: int) -> np.ndarray:
    if task.family == "maze2d":
        from envs.maze import reset_to_goal
        return reset_to_goal(env, task, seed=seed)
    return env.reset(seed=seed)[0]


def evaluate(act: Callable[[np.ndarray], np.ndarray], task: TaskSpec, episodes: int,
             seed: int = EVAL_SEED) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes of the batched deterministic policy ``act``.

    Episode i starts from ``env.reset(seed=seed + i)``, so every evaluation sees the same starts.
    """
    return evaluate_tasks(act, [task], episodes, seed)[task.name]


def evaluate_tasks(act: Callable[[np.ndarray], np.ndarray], tasks: list[TaskSpec], episodes: int,
                   seed: int = EVAL_SEED) -> dict[str, np.ndarray]:
    """Returns per task from one set of rollouts, for tasks sharing a ``training_key`` (maze2d sparse and
    dense): the first task's env is stepped, the others' rewards are computed from the same states."""
    from envs.maze import maze_rewards
    task, twins = tasks[0], tasks[1:]
    if any(t.training_key != task.training_key or t.family != "maze2d" for t in twins):
        raise ValueError(f"tasks {[t.name for t in tasks]} cannot share evaluation rollouts")
    envs = _envs(task.name, episodes)
    obs = np.stack([_reset(env, task, seed + i) for i, env in enumerate(envs)])
    returns = {t.name: np.zeros(episodes) for t in tasks}
    active = np.ones(episodes, bool)
    low, high = task.action_bounds()
    while active.any():
        actions = np.clip(act(obs), low, high)
        for i in np.flatnonzero(active):
            step_obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
            obs[i] = step_obs["observation"] if task.family == "maze2d" else step_obs
            returns[task.name][i] += reward
            if twins:
                sparse, dense = maze_rewards(step_obs["achieved_goal"], step_obs["desired_goal"])
                for twin in twins:
                    returns[twin.name][i] += sparse if twin.reward_type == "sparse" else dense
            active[i] = not (terminated or truncated)
    return returns


def normalized_score(returns: np.ndarray | float, reference: dict[str, float]) -> np.ndarray | float:
    """D4RL normalization: 100 * (R - min) / (max - min)."""
    return 100.0 * (np.asarray(returns) - reference["min"]) / (reference["max"] - reference["min"])
