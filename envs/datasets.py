"""Which generator builds a task's datasets: a maze map's in ``envs/maze_datasets.py``, a robot's in
``envs/locomotion.py`` (both store them through ``envs/storage.py``, which also loads them)."""
from __future__ import annotations

from envs.maze_datasets import generate_maze_datasets
from envs.tasks import TaskSpec


def generate_datasets(task: TaskSpec, scale: str, seed: int = 0, force: bool = False, progress_factory=None,
                      log=print, policies_dir=None, maze_expert: str = "waypoint") -> list[str]:
    """Build the datasets of ``task``'s group (a maze map, or a robot's expert/medium/medium-expert)."""
    if task.family == "locomotion":
        from envs.locomotion import generate_locomotion_datasets
        return generate_locomotion_datasets(task, scale, seed=seed, force=force, progress_factory=progress_factory,
                                            log=log, policies_dir=policies_dir)
    return generate_maze_datasets(task, scale, seed=seed, force=force, progress_factory=progress_factory, log=log,
                                  expert=maze_expert)
