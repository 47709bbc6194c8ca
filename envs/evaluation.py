"""Deterministic evaluation: the same starts at every evaluation of a run, all episodes stepped in lockstep
so the policy sees one batch per time step, seeded apart from every seed used to make data.

Maze2d follows D4RL's protocol: D4RL's resets (any free cell, the goal cell included, at its D4RL point
+- 0.1, velocity noise 0.1), D4RL's target and rewards (``envs/maze.py``), episodes to the time limit, and
starts drawn per run seed (the official code seeds its evaluation env with the training seed).
Locomotion episodes end at a termination (hopper, walker2d and ant falling) or the 1000-step time limit;
episode i starts from ``env.reset(seed=seed + i)`` for every run seed (the locomotion experts' selection
during data generation uses the same rule, so changing it would change the generated locomotion data)."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import gymnasium as gym
import numpy as np

from envs.tasks import TaskSpec

EVAL_SEED = 10_000  # evaluation starts are seeded apart from everything used for data generation


def protocol(task: TaskSpec, episodes: int, run_seed: int, seed: int = EVAL_SEED) -> dict:
    """What a result records about how it was evaluated."""
    if task.family == "maze2d":
        return {"protocol": "d4rl-maze2d", "episodes": episodes, "starts": f"default_rng([{seed}, {run_seed}, i])"}
    return {"protocol": "gymnasium-reset", "episodes": episodes, "starts": f"env.reset(seed={seed} + i)"}


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


def _reset(env: gym.Env, task: TaskSpec, seed: int, run_seed: int, episode: int) -> np.ndarray:
    if task.family == "maze2d":
        from envs.maze import reset_to_goal
        return reset_to_goal(env, task, np.random.default_rng([seed, run_seed, episode]))
    return env.reset(seed=seed + episode)[0]


def evaluate(act: Callable[[np.ndarray], np.ndarray], task: TaskSpec, episodes: int, run_seed: int = 0,
             seed: int = EVAL_SEED) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes of the batched deterministic policy ``act``; every
    evaluation with the same (run_seed, seed) sees the same starts (the module docstring says which)."""
    return evaluate_tasks(act, [task], episodes, run_seed, seed)[task.name]


def evaluate_tasks(act: Callable[[np.ndarray], np.ndarray], tasks: list[TaskSpec], episodes: int,
                   run_seed: int = 0, seed: int = EVAL_SEED) -> dict[str, np.ndarray]:
    """Returns per task from one set of rollouts, for tasks sharing a ``training_key`` (maze2d sparse and
    dense): one env per episode is stepped and every task's reward is computed from the same states."""
    from envs.maze import MazeGrid, evaluation_target, maze_rewards
    task = tasks[0]
    if any(t.training_key != task.training_key or t.family != "maze2d" for t in tasks[1:]):
        raise ValueError(f"tasks {[t.name for t in tasks]} cannot share evaluation rollouts")
    envs = _envs(task.name, episodes)
    obs = np.stack([_reset(env, task, seed, run_seed, i) for i, env in enumerate(envs)])
    target = evaluation_target(MazeGrid.from_env(envs[0]), task) if task.family == "maze2d" else None
    returns = {t.name: np.zeros(episodes) for t in tasks}
    active = np.ones(episodes, bool)
    low, high = task.action_bounds()
    while active.any():
        actions = np.clip(act(obs), low, high)
        for i in np.flatnonzero(active):
            step_obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
            if target is None:
                obs[i] = step_obs
                returns[task.name][i] += reward
            else:
                obs[i] = step_obs["observation"]
                sparse, dense = maze_rewards(obs[i, :2], target)
                for t in tasks:
                    returns[t.name][i] += sparse if t.reward_type == "sparse" else dense
            active[i] = not (terminated or truncated)
    return returns


def normalized_score(returns: np.ndarray | float, reference: dict[str, float]) -> np.ndarray | float:
    """D4RL normalization: 100 * (R - min) / (max - min)."""
    return 100.0 * (np.asarray(returns) - reference["min"]) / (reference["max"] - reference["min"])
