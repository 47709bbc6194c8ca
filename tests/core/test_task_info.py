"""What methods know of a task (core/tasks.py): the registry's tasks carry it, maze layouts and terminations included."""
from __future__ import annotations

import numpy as np
import torch

from core.tasks import MazeLayout, TaskInfo
from envs.tasks import TASKS, get_task

UMAZE = MazeLayout(("#####",
                    "#...#",
                    "###.#",
                    "#...#",
                    "#####"))


def test_coverage_counts_free_cells_holding_a_point():
    assert UMAZE.walls.shape == (5, 5) and (~UMAZE.walls).sum() == 7
    # cell (row, col) has its centre at (col + 0.5 - 2.5, 2.5 - row - 0.5)
    centre = lambda row, col: [col - 2.0, 2.0 - row]  # noqa: E731
    points = np.array([centre(1, 1), centre(1, 1), centre(3, 3), centre(0, 0), [9.0, 9.0]])  # a wall, off the map
    assert UMAZE.coverage(points) == 2 / 7
    assert UMAZE.coverage(np.zeros((0, 2))) == 0.0


def test_registry_tasks_are_task_infos_with_their_layout_and_termination():
    assert all(isinstance(task, TaskInfo) for task in TASKS.values())
    for name, task in TASKS.items():
        if task.family == "maze2d":
            assert task.maze is not None and not task.maze.walls[task.goal_cell] and task.termination is None, name
        else:
            assert task.maze is None, name
    assert get_task("halfcheetah-medium").termination is None
    assert get_task("hopper-medium").termination is get_task("hopper-medium-expert").termination is not None


def test_terminations_are_mopos_health_checks():
    hopper, walker, ant = (get_task(f"{robot}-medium").termination for robot in ("hopper", "walker2d", "ant"))
    states = torch.zeros(5, 11)
    states[:, 0] = 1.25  # standing height
    states[1, 0] = 0.6   # fallen
    states[2, 1] = 0.3   # tilted
    states[3, 5] = 150   # a velocity out of range
    states[4, 7] = float("nan")
    assert hopper(states).tolist() == [False, True, True, True, True]
    walker_states = torch.zeros(3, 17)
    walker_states[:, 0] = torch.tensor([1.25, 0.7, 2.1])
    assert walker(walker_states).tolist() == [False, True, True]
    ant_states = torch.zeros(3, 27)
    ant_states[:, 0] = torch.tensor([0.5, 0.1, 1.2])
    assert ant(ant_states).tolist() == [False, True, True]
