"""D4RL's maze2d frame, reward geometry, resets and waypoint expert, on Gymnasium-Robotics' PointMaze."""
from __future__ import annotations

import numpy as np
import pytest

from envs import d4rl_maze as dm
from envs.maze import MazeGrid, make_maze_env, maze_grid, set_goal
from envs.tasks import get_task


def test_frame_transform_round_trips():
    frame = dm.Frame(9, 12)
    obs = np.random.default_rng(0).normal(size=(50, 4)) * 3
    np.testing.assert_allclose(frame.observation_from_gym(frame.observation_to_gym(obs)), obs, atol=1e-12)
    np.testing.assert_allclose(frame.observation_to_gym(frame.observation_from_gym(obs)), obs, atol=1e-12)
    # D4RL's +x (down the rows) is Gymnasium's -y; D4RL's +y (along the columns) is Gymnasium's +x
    np.testing.assert_allclose(frame.vector_to_gym([1.0, 0.0]), [0.0, -1.0])
    np.testing.assert_allclose(frame.vector_to_gym([0.0, 1.0]), [1.0, 0.0])


@pytest.mark.parametrize("size", ["umaze", "medium", "large"])
def test_d4rl_goal_point_is_the_goal_cell_centre_offset(size):
    task = get_task(f"maze2d-{size}-sparse")
    grid = maze_grid(task)
    frame = dm.Frame(*grid.walls.shape)
    np.testing.assert_allclose(frame.cell_point(task.goal_cell), grid.cell_to_xy(task.goal_cell) + [0.2, -0.2])


@pytest.mark.parametrize("size", ["umaze", "medium", "large"])
def test_the_registry_maze_layouts_are_the_envs(size):
    """Methods read a maze's layout from the task (core.tasks.MazeLayout), without building its env."""
    task = get_task(f"maze2d-{size}-sparse")
    np.testing.assert_array_equal(task.maze.walls, maze_grid(task).walls)


def test_waypoints_follow_the_shortest_path_around_the_u():
    walls = maze_grid(get_task("maze2d-umaze-sparse")).walls
    assert dm._waypoint_cells(walls, (3, 1), (1, 1)) == [(3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]
    assert dm._waypoint_cells(walls, (1, 1), (1, 1)) == [(1, 1)]


def test_resets_cover_every_free_cell_including_the_goal_with_d4rl_noise():
    walls = maze_grid(get_task("maze2d-umaze-sparse")).walls
    frame, grid, rng = dm.Frame(*walls.shape), MazeGrid(walls), np.random.default_rng(0)
    states = [dm.reset_state(walls, rng) for _ in range(700)]
    positions = frame.position_from_gym(np.array([p for p, _ in states]))
    cells = np.rint(positions).astype(int)
    assert {tuple(c) for c in cells} == {tuple(c) for c in grid.free_cells}
    assert np.abs(positions - cells).max() <= dm.RESET_POSITION_NOISE
    velocities = np.array([v for _, v in states])
    assert 0.08 < velocities.std() < 0.12


def test_waypoint_expert_reaches_the_d4rl_goal_from_d4rl_resets():
    task = get_task("maze2d-umaze-sparse")
    env = make_maze_env(task)
    walls = MazeGrid.from_env(env).walls
    goal = dm.Frame(*walls.shape).cell_point(task.goal_cell)
    rng = np.random.default_rng(1)
    returns = []
    for episode in range(5):
        env.reset(seed=episode)
        set_goal(env, goal)
        position, velocity = dm.reset_state(walls, rng)
        env.unwrapped.point_env.set_state(position, velocity)
        obs = np.concatenate([position, velocity])
        expert = dm.GymWaypointExpert(walls, rng)
        expert.set_goal(goal, obs)
        total = 0.0
        for _ in range(task.max_episode_steps):
            obs = env.step(expert.act(obs))[0]["observation"]
            total += dm.rewards(obs[:2], goal)[0]
        returns.append(total)
    env.close()
    # from the farthest cell the U takes ~110 steps; the point then stays at the goal
    assert min(returns) > 150, returns
