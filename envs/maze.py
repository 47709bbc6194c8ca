"""PointMaze helpers: environment construction, D4RL's evaluation target, rewards and resets, and the grid
planner (an optional, faster expert than D4RL's waypoint controller in ``envs/d4rl_maze.py``).

Every maze2d reward in this suite is D4RL's, computed from the point's position: sparse 1 within 0.5 of the
target, dense ``exp(-distance)``, the target being D4RL's point of the goal cell (Gymnasium's goal-cell
centre + (0.2, -0.2)); the Gymnasium env's own reward (radius 0.45 around the centre) is never used.
The planner: value iteration over the maze grid picks the next waypoint (the centre of the neighbouring cell
one step closer to the goal, the exact goal in the goal cell) and a PD controller drives the point mass
toward it, ``a = clip(kp (w - x) - kd v, -1, 1)``.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from envs import d4rl_maze
from envs.tasks import TaskSpec

KP, KD = 10.0, 1.0  # D4RL's waypoint controller gains (p_gain 10, d_gain -1)


def _register_robotics() -> None:
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # silence an Adroit notice
        warnings.simplefilter("ignore")
        import gymnasium_robotics
    gym.register_envs(gymnasium_robotics)


def make_maze_env(task: TaskSpec) -> gym.Env:
    """The task's PointMaze env: continuing (the point may park at the goal), goal not re-sampled."""
    _register_robotics()
    env = gym.make(task.env_id, max_episode_steps=task.max_episode_steps, **task.env_kwargs)
    # Gymnasium-Robotics writes the maze's MuJoCo XML to $TMPDIR/ant_maze<time>.xml and never removes it
    # (~1900 files after one grid); the model is in memory once the env exists, so the file can go
    if xml := getattr(env.unwrapped, "tmp_xml_file_path", None):
        Path(xml).unlink(missing_ok=True)
    return env


def maze_grid(task: TaskSpec) -> MazeGrid:
    """The task's maze layout (built from its env, then closed)."""
    env = make_maze_env(task)
    try:
        return MazeGrid.from_env(env)
    finally:
        env.close()


def maze_rewards(position: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sparse, dense) rewards as D4RL computes them, for the positions after each step."""
    return d4rl_maze.rewards(position, target)


def evaluation_target(grid: "MazeGrid", task: TaskSpec) -> np.ndarray:
    """D4RL's target of the task: its goal cell's D4RL point, in Gymnasium's frame."""
    return d4rl_maze.Frame(*grid.walls.shape).cell_point(task.goal_cell)


@dataclass
class MazeGrid:
    """A maze map (1 = wall) with cell <-> xy conversions matching Gymnasium-Robotics (scale 1)."""
    walls: np.ndarray  # (rows, cols) bool

    @classmethod
    def from_env(cls, env: gym.Env) -> "MazeGrid":
        return cls(np.asarray(env.unwrapped.maze.maze_map) == 1)

    @property
    def free_cells(self) -> np.ndarray:
        return np.argwhere(~self.walls)

    def cell_to_xy(self, cell) -> np.ndarray:
        rows, cols = self.walls.shape
        return np.array([cell[1] + 0.5 - cols / 2, rows / 2 - cell[0] - 0.5])

    def xy_to_cell(self, xy) -> tuple[int, int]:
        rows, cols = self.walls.shape
        row = int(np.clip(np.floor(rows / 2 - xy[1]), 0, rows - 1))
        col = int(np.clip(np.floor(xy[0] + cols / 2), 0, cols - 1))
        return row, col

    def distances_to(self, goal_cell) -> np.ndarray:
        """Value iteration with unit step costs (4-connected): steps from every cell to the goal."""
        dist = np.full(self.walls.shape, np.inf)
        dist[tuple(goal_cell)] = 0.0
        while True:
            padded = np.pad(dist, 1, constant_values=np.inf)
            neighbours = np.minimum.reduce([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
            new = np.where(self.walls, np.inf, np.minimum(dist, neighbours + 1))
            if np.array_equal(new, dist):
                return dist
            dist = new


class PlannerExpert:
    """Waypoint planner + PD control toward a goal position (which may change: D^S re-samples goals)."""

    def __init__(self, grid: MazeGrid):
        self.grid = grid
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self.goal = np.zeros(2)
        self._next_cell: np.ndarray | None = None

    def set_goal(self, goal_xy: np.ndarray) -> None:
        self.goal = np.asarray(goal_xy, dtype=np.float64)
        cell = self.grid.xy_to_cell(self.goal)
        if cell not in self._cache:
            self._cache[cell] = self._policy_table(self.grid.distances_to(cell))
        self._next_cell = self._cache[cell]

    def _policy_table(self, dist: np.ndarray) -> np.ndarray:
        """For each cell, the neighbouring cell one step closer to the goal (itself at the goal)."""
        rows, cols = dist.shape
        table = np.zeros((rows, cols, 2), dtype=int)
        for r, c in np.ndindex(rows, cols):
            best = (r, c)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < rows and 0 <= cc < cols and dist[rr, cc] < dist[best]:
                    best = (rr, cc)
            table[r, c] = best
        return table

    def waypoint(self, position: np.ndarray) -> np.ndarray:
        cell = self.grid.xy_to_cell(position)
        nxt = tuple(self._next_cell[cell])
        if nxt == cell:  # in the goal cell (or stuck in a wall cell): go straight to the goal
            return self.goal
        return self.grid.cell_to_xy(nxt)

    def act(self, obs: np.ndarray) -> np.ndarray:
        position, velocity = obs[:2], obs[2:4]
        action = KP * (self.waypoint(position) - position) - KD * velocity
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def set_goal(env: gym.Env, goal_xy: np.ndarray) -> None:
    """Place the env's goal exactly (Gymnasium-Robotics adds +-0.25 noise to goals at reset)."""
    maze_env = env.unwrapped
    maze_env.goal = np.asarray(goal_xy, dtype=np.float64).copy()
    maze_env.update_target_site_pos()


def reset_to_goal(env: gym.Env, task: TaskSpec, rng: np.random.Generator) -> np.ndarray:
    """D4RL's reset (any free cell, the goal's included, at its D4RL point +- 0.1, velocity noise 0.1) toward
    the task's fixed D4RL target; returns the observation (x, y, vx, vy)."""
    grid = MazeGrid.from_env(env)
    env.reset(seed=int(rng.integers(2**31)), options={"goal_cell": np.array(task.goal_cell)})
    set_goal(env, evaluation_target(grid, task))
    position, velocity = d4rl_maze.reset_state(grid.walls, rng)
    env.unwrapped.point_env.set_state(position, velocity)
    return np.concatenate([position, velocity])
