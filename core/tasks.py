"""What a method may know about a task: its sizes, action bounds and horizon, which states end an episode (for
model rollouts) and, on maze2d, the maze's layout. Methods see only this, so they never depend on how
environments, datasets or scores are made; ``envs.tasks.TaskSpec`` adds those and is a TaskInfo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

# Raw states (B, obs_dim) tensor -> (B,) bool tensor: which states end an episode.
Termination = Callable[[Any], Any]


@dataclass(frozen=True)
class MazeLayout:
    """A maze map in Gymnasium-Robotics' frame: cell (row, col), scale 1, the map centred on the origin."""
    rows: tuple[str, ...]  # one string per map row: "#" a wall, "." a free cell

    @property
    def walls(self) -> np.ndarray:
        """(rows, cols) bool, True = wall."""
        return np.array([[cell == "#" for cell in row] for row in self.rows])

    def coverage(self, xy: np.ndarray) -> float:
        """The fraction of free cells holding at least one of the points ``xy`` (N, 2); points in walls or
        outside the maze count for nothing."""
        walls = self.walls
        rows, cols = walls.shape
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        r, c = np.floor(rows / 2 - xy[:, 1]).astype(np.int64), np.floor(xy[:, 0] + cols / 2).astype(np.int64)
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        hit = np.zeros_like(walls)
        hit[r[inside], c[inside]] = True
        return float((hit & ~walls).sum() / max((~walls).sum(), 1))


@dataclass(frozen=True)
class TaskInfo:
    name: str                    # e.g. "maze2d-umaze-sparse"; per-task defaults key on its first part
    family: str                  # "maze2d" | "locomotion"
    max_episode_steps: int
    obs_dim: int
    act_dim: int
    action_low: float = -1.0
    action_high: float = 1.0
    reward_type: str = "sparse"  # which reference returns normalize this task's score
    maze_map: str | None = None  # maze2d only: "umaze" | "medium" | "large"
    maze: MazeLayout | None = None  # maze2d only: the map's layout
    termination: Termination | None = None  # None where no state ends an episode (maze2d, halfcheetah)

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.full(self.act_dim, self.action_low, np.float32),
                np.full(self.act_dim, self.action_high, np.float32))
