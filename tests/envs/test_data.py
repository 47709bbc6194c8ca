"""Data generation, the maze experts, D4RL's rewards and evaluation, and dataset errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.errors import BenchError
from envs.evaluation import evaluate, normalized_score
from envs.maze import evaluation_target, make_maze_env, maze_grid, maze_rewards
from envs.maze_datasets import MAZE_EXPERTS, generate_maze_datasets, maze_expert, rollout_episodes
from envs.storage import DATA_SCALES, dataset_id, dataset_path, load_flat, own_expert_reference, reference_returns
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


def test_rewards_follow_d4rl_geometry_not_gymnasiums():
    task = get_task("maze2d-umaze-sparse")
    target = evaluation_target(maze_grid(task), task)
    np.testing.assert_allclose(target, maze_grid(task).cell_to_xy(task.goal_cell) + [0.2, -0.2])
    sparse, dense = maze_rewards(target + [[0.0, 0.48], [0.0, 0.52]], target)
    np.testing.assert_array_equal(sparse, [1.0, 0.0])  # D4RL's radius 0.5 (Gymnasium's 0.45 would give 0, 0)
    np.testing.assert_allclose(dense, np.exp(-np.array([0.48, 0.52])))


@pytest.mark.parametrize("size", ["umaze", "medium", "large"])
@pytest.mark.parametrize("expert", MAZE_EXPERTS)
def test_experts_reach_the_target_and_random_does_not(size, expert):
    task = get_task(f"maze2d-{size}-sparse")
    target = evaluation_target(maze_grid(task), task)
    policy, _ = maze_expert(task, expert, np.random.default_rng(0))
    episodes = rollout_episodes(task, policy, 8, np.random.default_rng(123))
    final_distance = [np.linalg.norm(e.observations[-1, :2] - target) for e in episodes]
    assert max(final_distance) < 0.2  # every episode ends parked at the target
    rng = np.random.default_rng(0)
    random = evaluate(lambda obs: rng.uniform(-1, 1, (len(obs), 2)), task, 8)
    reference = {"min": 0.0, "max": float(np.mean([e.rewards.sum() for e in episodes]))}
    assert normalized_score(random.mean(), reference) < 40


def test_scores_use_d4rl_references_and_own_expert_returns_are_stored(umaze_smoke):
    assert reference_returns(umaze_smoke, "smoke") == {"min": 23.85, "max": 161.86}
    assert reference_returns(get_task("maze2d-large-dense"), "smoke") == {"min": 30.569041, "max": 303.49}
    sparse = own_expert_reference(umaze_smoke, "smoke")
    dense = own_expert_reference(get_task("maze2d-umaze-dense"), "smoke")
    assert sparse["max"] > sparse["min"] and dense["max"] > dense["min"]
    assert sparse != dense


def test_d4rl_scale_scores_of_a_fixed_policy_are_stable_and_seeded_per_run():
    task = get_task("maze2d-umaze-dense")  # dense: returns vary with every start
    policy = lambda obs: np.clip(-obs[:, 2:4] + 0.3, -1, 1)  # a fixed (poor) policy
    first, again = evaluate(policy, task, 6, run_seed=1), evaluate(policy, task, 6, run_seed=1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(evaluate(policy, task, 6, run_seed=2), first)


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


# ------------------------------------------------------------------ issue 15: damaged datasets are refused
def _copy_umaze(umaze_smoke, root):
    """A private copy of the smoke umaze datasets (the session's stay intact) under a new Minari root."""
    from envs.storage import datasets_root
    shutil.copytree(datasets_root() / "bench" / "maze2d-umaze", root / "bench" / "maze2d-umaze")


def test_nan_in_a_dataset_is_refused_in_one_line_naming_field_and_row(umaze_smoke, tmp_path, monkeypatch):
    import h5py
    from click.testing import CliRunner
    from benchmark.cli import main
    from envs.validate import DatasetDamaged
    _copy_umaze(umaze_smoke, tmp_path / "minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    ds_id = dataset_id(umaze_smoke, "expert", "smoke")
    with h5py.File(dataset_path(ds_id) / "data" / "main_data.hdf5", "r+") as f:
        f["episode_1/observations"][12, 1] = np.nan
    horizon = umaze_smoke.max_episode_steps
    with pytest.raises(DatasetDamaged) as error:
        load_flat(ds_id, umaze_smoke, "smoke")
    assert str(error.value) == (
        f"dataset {ds_id} is damaged: observations row {horizon + 12} (episode 1, step 12) holds nan; rebuild it "
        f"with `bench data generate --envs maze2d-umaze --profile smoke --force`")
    result = CliRunner().invoke(main, ["run", "--envs", "maze2d-umaze-sparse", "--seeds", "2", "--profile", "smoke",
                                       "--out", str(tmp_path / "res"), "--no-progress", "--workers", "2"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [f"Error: {error.value}"]
    assert not (tmp_path / "res" / "runs").exists()  # refused before any run started (no worker trained meanwhile)
    listing = CliRunner().invoke(main, ["data", "list"]).output
    assert f"{ds_id:<46} damaged" in listing and "observations row" in listing, listing
    assert "supplementary-smoke-v1" in listing and "1 dataset(s) unusable" in listing


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.actions.__setitem__((7, 0), 1.5), "actions row 7 (episode 0, step 7) leave the action space [-1, 1]"),
    (lambda d: d.next_observations.__setitem__((9, 2), np.inf), "next_observations row 9 (episode 0, step 9) holds inf"),
    (lambda d: d.timeouts.__setitem__(slice(None), False), "row 299 (episode 0, step 299) ends an episode without"),
    (lambda d: d.terminals.__setitem__(5, True), "row 5 (episode 0, step 5) is flagged terminal/timeout inside"),
])
def test_dataset_checks_name_the_first_bad_row(umaze_smoke, damage, message):
    from envs.validate import first_problem
    flat = load_flat(dataset_id(umaze_smoke, "expert", "smoke"), umaze_smoke, "smoke")
    assert first_problem(flat, umaze_smoke) is None
    damage(flat)
    assert message in first_problem(flat, umaze_smoke)


def test_generation_refuses_to_write_invalid_episodes(umaze_smoke, tmp_path, monkeypatch):
    from envs.storage import dataset_status, write_dataset
    from envs.validate import DatasetDamaged
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    still = lambda obs: np.zeros(2, np.float32)
    episodes = rollout_episodes(umaze_smoke, lambda obs, target: still, 2, np.random.default_rng(0))
    episodes[1].observations[3, 0] = np.nan
    reference = {"sparse": {"min": 0.0, "max": 1.0}, "dense": {"min": 0.0, "max": 1.0}}
    with pytest.raises(DatasetDamaged, match=r"bench/test/x-v0 is damaged: observations row 303 \(episode 1, step 3\)"):
        write_dataset("bench/test/x-v0", umaze_smoke, episodes, reference, {}, "test")
    assert dataset_status("bench/test/x-v0") == "missing"


def test_maze_envs_leave_no_temporary_xml_files(tmp_path, monkeypatch):
    """Gymnasium-Robotics writes ant_maze<time>.xml into the temp dir for every maze env it builds."""
    import tempfile
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    for name in ("maze2d-umaze-sparse", "maze2d-large-dense"):
        env = make_maze_env(get_task(name))
        env.reset(seed=0)
        env.step(np.zeros(2, np.float32))
        env.close()
    assert not list(tmp_path.glob("*.xml"))
