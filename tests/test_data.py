"""Data generation, the planner expert, rewards, and dataset errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from envs import BenchError
from envs.datasets import (DATA_SCALES, dataset_id, dataset_path, generate_maze_datasets, load_flat,
                           reference_returns, rollout_episodes)
from envs.evaluation import evaluate, normalized_score
from envs.maze import MazeGrid, PlannerExpert, make_maze_env, maze_rewards, reset_to_goal
from envs.tasks import get_task, resolve_tasks


def test_aliases_expand_to_the_six_maze_tasks():
    assert resolve_tasks("maze2d") == [f"maze2d-{s}-{r}" for s in ("umaze", "medium", "large") for r in ("sparse", "dense")]
    with pytest.raises(BenchError, match="valid tasks: maze2d-umaze-sparse"):
        resolve_tasks("maze2d-tiny")


def test_smoke_datasets_have_the_expected_shapes(umaze_smoke):
    scale = DATA_SCALES["smoke"]
    expert = load_flat(dataset_id(umaze_smoke, "expert", "smoke"), umaze_smoke, "smoke")
    supp = load_flat(dataset_id(umaze_smoke, "supplementary", "smoke"), umaze_smoke, "smoke")
    horizon = umaze_smoke.max_episode_steps
    assert expert.observations.shape == (scale.expert_episodes * horizon, 4)
    assert expert.actions.shape == (scale.expert_episodes * horizon, 2)
    assert len(expert.episode_starts) == scale.expert_episodes
    assert expert.timeouts.sum() == scale.expert_episodes and not expert.terminals.any()
    assert len(supp.actions) == scale.supplementary_steps["umaze"]
    # continuing collection: each chunk starts where the previous one ended
    starts = supp.episode_starts[1:]
    np.testing.assert_allclose(supp.observations[starts], supp.next_observations[starts - 1])
    assert np.abs(supp.actions).max() <= 1.0


def test_generation_is_deterministic_for_a_seed(umaze_smoke, tmp_path, monkeypatch):
    first = load_flat(dataset_id(umaze_smoke, "supplementary", "smoke"), umaze_smoke, "smoke")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    generate_maze_datasets(umaze_smoke, "smoke", seed=0, log=lambda *_: None)
    again = load_flat(dataset_id(umaze_smoke, "supplementary", "smoke"), umaze_smoke, "smoke")
    np.testing.assert_array_equal(first.observations, again.observations)
    np.testing.assert_array_equal(first.actions, again.actions)


def test_rewards_match_the_environment():
    for name in ("maze2d-umaze-sparse", "maze2d-umaze-dense"):
        task = get_task(name)
        env = make_maze_env(task)
        reset_to_goal(env, task, seed=3)
        goal = env.unwrapped.goal.copy()
        for _ in range(50):
            obs, reward, *_ = env.step(env.action_space.sample())
            sparse, dense = maze_rewards(obs["achieved_goal"], goal)
            assert reward == pytest.approx(dense if name.endswith("dense") else sparse)


@pytest.mark.parametrize("size", ["umaze", "medium", "large"])
def test_planner_reaches_the_goal_and_random_does_not(size):
    task = get_task(f"maze2d-{size}-sparse")
    env = make_maze_env(task)
    grid = MazeGrid.from_env(env)
    expert = PlannerExpert(grid)
    expert.set_goal(grid.cell_to_xy(task.goal_cell))
    episodes = rollout_episodes(task, expert.act, 8, seed=123)
    final_distance = [np.linalg.norm(e.observations[-1, :2] - grid.cell_to_xy(task.goal_cell)) for e in episodes]
    assert max(final_distance) < 0.2  # every episode ends parked at the goal
    planner = evaluate(lambda obs: np.stack([expert.act(o) for o in obs]), task, 8)
    rng = np.random.default_rng(0)
    random = evaluate(lambda obs: rng.uniform(-1, 1, (len(obs), 2)), task, 8)
    reference = {"min": 0.0, "max": float(np.mean([e.rewards.sum() for e in episodes]))}
    assert normalized_score(planner.mean(), reference) == pytest.approx(100, abs=15)
    assert normalized_score(random.mean(), reference) < 40


def test_reference_returns_are_stored_for_both_reward_types(umaze_smoke):
    sparse = reference_returns(umaze_smoke, "smoke")
    dense = reference_returns(get_task("maze2d-umaze-dense"), "smoke")
    assert sparse["max"] > sparse["min"] and dense["max"] > dense["min"]
    assert sparse != dense


def test_missing_partial_and_corrupt_datasets_give_the_fix(umaze_smoke, tmp_path, monkeypatch):
    task = get_task("maze2d-medium-sparse")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.raises(BenchError, match="bench data generate --envs maze2d-medium --profile smoke"):
        load_flat(dataset_id(task, "expert", "smoke"), task, "smoke")
    # a finished dataset whose data file is then damaged
    generate_maze_datasets(umaze_smoke, "smoke", seed=0, log=lambda *_: None)
    ds = dataset_id(umaze_smoke, "expert", "smoke")
    data_file = dataset_path(ds) / "data" / "main_data.hdf5"
    data_file.write_bytes(b"not an hdf5 file")
    with pytest.raises(BenchError, match="corrupt.*--force"):
        load_flat(ds, umaze_smoke, "smoke")
    # a generation that never finished: no completion marker
    meta = dataset_path(ds) / "data" / "metadata.json"
    meta.write_text(meta.read_text().replace('"bench_complete": true', '"bench_complete": false'))
    with pytest.raises(BenchError, match="incomplete"):
        load_flat(ds, umaze_smoke, "smoke")
    shutil.rmtree(dataset_path(ds))
