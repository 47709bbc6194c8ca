"""D4RL's maze2d on Gymnasium-Robotics' PointMaze: its frame, reward geometry, resets and expert.

The physics of the two are the same (dt 0.01, gear 100, velocity clipped to +-5); their frames differ.
D4RL's point ``(x, y)`` is ``(row, column)`` of the maze string, and D4RL's qpos ``(i, j)`` sits 0.2 off
the centre of Gymnasium's cell ``(i, j)``. With ``R, C`` the map's rows and columns:

    x_gym = y + 0.7 - C/2,    y_gym = R/2 - x - 0.7,    (u, v)_gym = (v, -u) for velocities and actions.

D4RL rewards the point for being within 0.5 of its target (sparse) or ``exp(-distance)`` (dense), its
target being the goal cell's D4RL point, i.e. Gymnasium's goal-cell centre + (0.2, -0.2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GOAL_RADIUS = 0.5         # D4RL's sparse reward radius (Gymnasium-Robotics uses 0.45)
OFFSET = np.array([0.2, -0.2])  # D4RL's point of a cell, relative to Gymnasium's cell centre
RESET_POSITION_NOISE = 0.1  # D4RL's reset: cell point + U(-0.1, 0.1) per axis ...
RESET_VELOCITY_STD = 0.1    # ... and velocity N(0, 0.1^2) per axis

# D4RL's reference returns (random, expert) per maze and reward type: maze2d scores mean these.
REFERENCE = {
    ("umaze", "sparse"): (23.85, 161.86), ("medium", "sparse"): (13.13, 277.39),
    ("large", "sparse"): (6.7, 273.99), ("umaze", "dense"): (68.537689, 193.66),
    ("medium", "dense"): (44.264742, 297.46), ("large", "dense"): (30.569041, 303.49),
}


@dataclass(frozen=True)
class Frame:
    """Conversions between D4RL's frame and Gymnasium's for a map of ``rows`` x ``cols`` cells."""
    rows: int
    cols: int

    def position_to_gym(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return np.stack([p[..., 1] + 0.7 - self.cols / 2, self.rows / 2 - p[..., 0] - 0.7], axis=-1)

    def position_from_gym(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        return np.stack([self.rows / 2 - 0.7 - p[..., 1], p[..., 0] - 0.7 + self.cols / 2], axis=-1)

    @staticmethod
    def vector_to_gym(v) -> np.ndarray:
        """Velocities and actions: D4RL (u, v) -> Gymnasium (v, -u)."""
        v = np.asarray(v)
        return np.stack([v[..., 1], -v[..., 0]], axis=-1)

    @staticmethod
    def vector_from_gym(v) -> np.ndarray:
        v = np.asarray(v)
        return np.stack([-v[..., 1], v[..., 0]], axis=-1)

    def observation_to_gym(self, obs) -> np.ndarray:
        """(x, y, vx, vy) observations, D4RL -> Gymnasium."""
        obs = np.asarray(obs, dtype=np.float64)
        return np.concatenate([self.position_to_gym(obs[..., :2]), self.vector_to_gym(obs[..., 2:4])], axis=-1)

    def observation_from_gym(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        return np.concatenate([self.position_from_gym(obs[..., :2]), self.vector_from_gym(obs[..., 2:4])], axis=-1)

    def cell_point(self, cell) -> np.ndarray:
        """D4RL's point of ``cell`` (its target when the cell is the goal), in Gymnasium's frame."""
        return self.position_to_gym(np.asarray(cell, dtype=np.float64))


def rewards(position, target) -> tuple[np.ndarray, np.ndarray]:
    """(sparse, dense) rewards as D4RL computes them, for positions after each step (Gymnasium frame)."""
    distance = np.linalg.norm(np.asarray(position) - np.asarray(target), axis=-1)
    return (distance <= GOAL_RADIUS).astype(np.float64), np.exp(-distance)


def reset_state(walls: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """D4RL's ``reset_model``: any free cell (the goal cell included) uniformly, its D4RL point + U(-0.1, 0.1)
    per axis, velocity N(0, 0.1^2) per axis. Returns (position, velocity) in Gymnasium's frame."""
    frame = Frame(*walls.shape)
    free = np.argwhere(~walls)
    cell = free[rng.integers(len(free))]
    position = cell + rng.uniform(-RESET_POSITION_NOISE, RESET_POSITION_NOISE, 2)
    velocity = RESET_VELOCITY_STD * rng.standard_normal(2)
    return frame.position_to_gym(position), frame.vector_to_gym(velocity)


# Gridcraft's actions in their order (argmax ties go to the first): no-op, then (row, column) moves
_MOVES = np.array([[0, 0], [0, -1], [0, 1], [-1, 0], [1, 0]])


def _waypoint_cells(walls: np.ndarray, start, target, iterations: int = 50, discount: float = 0.99) -> list:
    """D4RL's plan: tabular Q-iteration on the grid (reward 1 in the target cell, a move into a wall or off the
    map is a no-op), then a greedy rollout from ``start`` until the target; the cells visited after ``start``."""
    rows, cols = walls.shape
    cells = np.array([(r, c) for r in range(rows) for c in range(cols)])
    moved = cells[:, None, :] + _MOVES[None]
    legal = ((moved >= 0) & (moved < (rows, cols))).all(-1)
    clipped = np.clip(moved, 0, (rows - 1, cols - 1))
    legal &= ~walls[clipped[..., 0], clipped[..., 1]]
    moved = np.where(legal[..., None], moved, cells[:, None, :])
    next_index = moved[..., 0] * cols + moved[..., 1]  # (cells, 5)
    target_index = target[0] * cols + target[1]
    reward = (np.arange(len(cells)) == target_index).astype(np.float64)
    q = np.zeros((len(cells), len(_MOVES)))
    for _ in range(iterations):
        q = reward[:, None] + discount * q.max(1)[next_index]
    s, path = start[0] * cols + start[1], []
    for _ in range(100):
        s = next_index[s, int(np.argmax(q[s]))]
        path.append((s // cols, s % cols))
        if s == target_index:
            break
    return path


class WaypointController:
    """D4RL's maze2d expert (``d4rl/pointmaze/waypoint_controller.py``), in D4RL's frame.

    On a new target it plans a path of cells, and jitters every waypoint but the target by ``-U(0, 0.2)``
    per axis; it then drives a PD controller ``a = clip(10 (w - x) - v, -1, 1)`` toward the current waypoint,
    moving on when within 0.1 and nearly still (< 0.1 moved in a step), and holds the target once there.
    Unlike D4RL's reference-return script, which kept one controller and so stale waypoints across episodes,
    :meth:`plan` is called at every episode start (as the official SRA data were made).
    """
    SOLVE_THRESHOLD = 0.1
    STILL_THRESHOLD = 0.1
    P_GAIN, D_GAIN = 10.0, -1.0

    def __init__(self, walls: np.ndarray, rng: np.random.Generator):
        self.walls = np.asarray(walls, bool)
        self.rng = rng
        self.target = np.zeros(2)
        self.waypoints: list[np.ndarray] = []
        self.index = 0
        self.previous_location = np.zeros(2)

    @staticmethod
    def _gridify(point) -> tuple[int, int]:
        return int(round(float(point[0]))), int(round(float(point[1])))

    def plan(self, location, target) -> None:
        start, goal = self._gridify(location), self._gridify(target)
        self.waypoints = []
        for cell in _waypoint_cells(self.walls, start, goal):
            point = np.asarray(cell, dtype=np.float64)
            if cell != goal:
                point = point - self.rng.uniform(size=2) * 0.2
            self.waypoints.append(point)
        self.index = 0
        self.previous_location = np.asarray(start, dtype=np.float64)
        self.target = np.asarray(goal, dtype=np.float64)

    def act(self, location, velocity) -> tuple[np.ndarray, bool]:
        """The action (D4RL frame) and whether the target is reached and the point still."""
        location, velocity = np.asarray(location, np.float64), np.asarray(velocity, np.float64)
        moved = np.linalg.norm(self.previous_location - location)
        solved = np.linalg.norm(location - self.target) < self.SOLVE_THRESHOLD and moved < self.STILL_THRESHOLD
        waypoint = self.target if solved else self.waypoints[self.index]
        action = self.P_GAIN * (waypoint - location) + self.D_GAIN * velocity
        if (not solved and np.linalg.norm(location - waypoint) < self.SOLVE_THRESHOLD
                and moved < self.STILL_THRESHOLD and self.index < len(self.waypoints) - 1):
            self.index += 1
        self.previous_location = location
        return np.clip(action, -1.0, 1.0), bool(solved)


class GymWaypointExpert:
    """The waypoint controller acting on Gymnasium observations (x, y, vx, vy): converts to D4RL's frame and back.

    ``set_goal(goal, obs)`` re-plans from the current position (call it at every episode start and goal change).
    """

    def __init__(self, walls: np.ndarray, rng: np.random.Generator):
        self.frame = Frame(*np.asarray(walls).shape)
        self.controller = WaypointController(walls, rng)
        self.solved = False

    def set_goal(self, goal_xy, obs) -> None:
        self.controller.plan(self.frame.position_from_gym(obs[:2]), self.frame.position_from_gym(goal_xy))

    def act(self, obs: np.ndarray) -> np.ndarray:
        d4rl = self.frame.observation_from_gym(obs)
        action, self.solved = self.controller.act(d4rl[:2], d4rl[2:4])
        return self.frame.vector_to_gym(action).astype(np.float32)
