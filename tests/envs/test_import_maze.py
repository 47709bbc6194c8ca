"""`bench data import` of maze2d files in D4RL's frame (HDF5 as D4RL ships them, .npz as the official SRA code).

The files are written here: episodes rolled out in this suite's env from D4RL's resets, converted to D4RL's frame.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.cli import main
from core.errors import BenchError
from envs import d4rl_maze as dm
from envs.external import REPLAY_TOLERANCE, import_d4rl, maze_episodes, replay_errors
from envs.maze import MazeGrid, make_maze_env, set_goal
from envs.maze_datasets import maze_reference
from envs.storage import dataset_id, dataset_source, load_flat, own_expert_reference, reference_returns
from envs.tasks import get_task

UMAZE = get_task("maze2d-umaze-sparse")


def rollout(task, episodes: int = 4, steps: int = 120, seed: int = 0):
    """Noisy waypoint-expert episodes from D4RL's resets: Gymnasium-frame observations (episodes, steps + 1, 4)
    and actions (episodes, steps, 2)."""
    env = make_maze_env(task)
    walls = MazeGrid.from_env(env).walls
    goal = dm.Frame(*walls.shape).cell_point(task.goal_cell)
    rng = np.random.default_rng(seed)
    observations, actions = np.zeros((episodes, steps + 1, 4)), np.zeros((episodes, steps, 2), np.float32)
    for i in range(episodes):
        env.reset(seed=i)
        set_goal(env, goal)
        position, velocity = dm.reset_state(walls, rng)
        env.unwrapped.point_env.set_state(position, velocity)
        observations[i, 0] = np.concatenate([position, velocity])
        expert = dm.GymWaypointExpert(walls, rng)
        expert.set_goal(goal, observations[i, 0])
        for t in range(steps):
            actions[i, t] = np.clip(expert.act(observations[i, t]) + 0.3 * rng.standard_normal(2), -1, 1)
            observations[i, t + 1] = env.step(actions[i, t])[0]["observation"]
    env.close()
    return observations, actions


def d4rl_arrays(task, observations, actions) -> dict[str, np.ndarray]:
    """D4RL's flat layout: each step's observation before its action (the final states are not stored), a
    timeout on each episode's last step, float32 as D4RL stores them; the rewards are junk (never stored)."""
    frame = dm.Frame(*MazeGrid.from_env(env := make_maze_env(task)).walls.shape)
    env.close()
    episodes, steps = actions.shape[:2]
    timeouts = np.zeros((episodes, steps), bool)
    timeouts[:, -1] = True
    return {"observations": frame.observation_from_gym(observations[:, :-1]).reshape(-1, 4).astype(np.float32),
            "actions": frame.vector_from_gym(actions).reshape(-1, 2).astype(np.float32),
            "rewards": np.full(episodes * steps, 7.0, np.float32), "terminals": np.zeros(episodes * steps, bool),
            "timeouts": timeouts.reshape(-1)}


def write_hdf5(path, arrays):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
        n = len(arrays["actions"])  # D4RL's infos, ignored by the import
        f["infos/goal"], f["infos/qpos"], f["infos/qvel"] = np.ones((n, 2)), np.ones((n, 2)), np.ones((n, 2))
    return path


@pytest.fixture(scope="module")
def umaze_file():
    observations, actions = rollout(UMAZE)
    return observations, actions, d4rl_arrays(UMAZE, observations, actions)


def bench(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def one_line_error(code, output, *fragments):
    assert code != 0 and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    for fragment in fragments:
        assert fragment in output, output


def test_frame_round_trips_on_rolled_out_states(umaze_file):
    observations, actions, arrays = umaze_file
    frame = dm.Frame(5, 5)
    np.testing.assert_allclose(frame.observation_to_gym(arrays["observations"]).reshape(4, -1, 4),
                               observations[:, :-1], atol=1e-6)
    np.testing.assert_allclose(frame.vector_to_gym(arrays["actions"]).reshape(actions.shape), actions, atol=0)


def test_import_stores_our_env_states_and_d4rl_rewards(umaze_file, tmp_path, monkeypatch):
    observations, actions, arrays = umaze_file
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = make_maze_env(UMAZE)
    episodes = maze_episodes(arrays, UMAZE, env)
    # replayed from its first state, each episode lands where the file says (float32 rounding only)
    errors = replay_errors(episodes, env, num_episodes=4, num_steps=119)
    env.close()
    assert max(e.max() for e in errors) < 1e-5
    ds = import_d4rl(write_hdf5(tmp_path / "umaze.hdf5", arrays), UMAZE, "expert", "smoke", log=lambda *_: None)
    flat = load_flat(ds, UMAZE, "smoke")
    # D4RL stores no final states: each episode's last transition (a timeout) is dropped
    kept = observations[:, :-1]  # (episodes, steps, 4): the states the stored transitions start from and reach
    np.testing.assert_allclose(flat.observations.reshape(4, -1, 4), kept[:, :-1], atol=1e-6)
    np.testing.assert_allclose(flat.next_observations.reshape(4, -1, 4), kept[:, 1:], atol=1e-6)
    np.testing.assert_array_equal(flat.actions.reshape(4, -1, 2), actions[:, :-1])
    assert flat.episode_starts.tolist() == [0, 119, 238, 357] and flat.timeouts.sum() == 4
    target = dm.Frame(5, 5).cell_point(UMAZE.goal_cell)
    np.testing.assert_allclose(flat.rewards, dm.rewards(flat.next_observations[:, :2], target)[0])
    assert flat.rewards.sum() > 0  # the expert reaches the goal: the file's junk rewards (7.0) were not kept
    meta = flat.metadata
    assert meta["bench_source"] == dataset_source(ds) == "imported-d4rl" and meta["bench_frame"] == "d4rl"
    assert meta["bench_replay_error"] < 1e-5
    expected = maze_reference(UMAZE, maze_episodes(arrays, UMAZE, make_maze_env(UMAZE)), 5, 0)
    assert meta["bench_reference"] == expected and own_expert_reference(UMAZE, "smoke") == expected["sparse"]
    assert reference_returns(UMAZE, "smoke") == {"min": 23.85, "max": 161.86}  # scores stay on D4RL's scale


def test_import_refuses_files_that_do_not_replay(umaze_file, tmp_path, monkeypatch):
    observations, actions, arrays = umaze_file
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    args = ("--task", "maze2d-umaze-sparse", "--kind", "expert", "--profile", "smoke")
    flipped = dict(arrays, actions=arrays["actions"].copy())
    flipped["actions"][120 + 10:120 + 20] *= -1  # episode 1, steps 10-19: 0.0585 off after step 14
    one_line_error(*bench("data", "import", str(write_hdf5(tmp_path / "flipped.hdf5", flipped)), *args),
                   "flipped.hdf5: episode 1 does not replay", "after step 14", f"tolerance {REPLAY_TOLERANCE}")
    shifted = dict(arrays, observations=arrays["observations"].copy())
    shifted["observations"][5:120, 0] += 0.1  # episode 0 from step 5 on, D4RL's x
    one_line_error(*bench("data", "import", str(write_hdf5(tmp_path / "shifted.hdf5", shifted)), *args),
                   "episode 0 does not replay", "after step 4")
    medium = get_task("maze2d-medium-sparse")  # a medium file replays in open corridors, but crosses umaze's walls
    other = d4rl_arrays(medium, *rollout(medium, episodes=2, steps=60))
    one_line_error(*bench("data", "import", str(write_hdf5(tmp_path / "medium.hdf5", other)), *args),
                   "medium.hdf5: episode 0", "inside a wall of the maze2d-umaze map")
    assert not (tmp_path / "minari" / "bench").exists()  # nothing written


def test_cli_imports_hdf5_and_sra_npz(umaze_file, tmp_path, monkeypatch):
    observations, actions, arrays = umaze_file
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    np.savez(tmp_path / "sra.npz", **arrays)
    write_hdf5(tmp_path / "d4rl.hdf5", arrays)
    for name, kind in (("d4rl.hdf5", "expert"), ("sra.npz", "supplementary")):
        code, output = bench("data", "import", str(tmp_path / name), "--task", "maze2d-umaze-dense", "--kind", kind,
                             "--profile", "smoke")
        assert code == 0 and "4 episodes, 476 steps" in output, output
    dense = get_task("maze2d-umaze-dense")
    expert, supplementary = (load_flat(dataset_id(dense, kind, "smoke"), dense, "smoke")
                             for kind in ("expert", "supplementary"))
    for key in ("observations", "actions", "next_observations", "rewards", "timeouts"):
        np.testing.assert_array_equal(getattr(expert, key), getattr(supplementary, key))
    assert "bench_reference" in expert.metadata and "bench_reference" not in supplementary.metadata
    assert supplementary.metadata["bench_source"] == "imported-d4rl"
    assert "maze2d" in bench("data", "import", "--help")[1]


def test_import_errors_are_one_line(umaze_file, tmp_path, monkeypatch):
    observations, actions, arrays = umaze_file
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    args = ("--task", "maze2d-umaze-sparse", "--kind", "supplementary", "--profile", "smoke")
    (tmp_path / "notes.txt").write_text("observations, actions\n")
    one_line_error(*bench("data", "import", str(tmp_path / "notes.txt"), *args),
                   "neither an HDF5 file nor an .npz archive")
    np.savez(tmp_path / "keys.npz", **{k: v for k, v in arrays.items() if k != "timeouts"})
    one_line_error(*bench("data", "import", str(tmp_path / "keys.npz"), *args), "lacks D4RL key(s) timeouts")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    one_line_error(*bench("data", "import", str(tmp_path / "broken.npz"), *args), "not a readable .npz archive")
    np.savez(tmp_path / "wide.npz", **dict(arrays, observations=np.zeros((len(arrays["actions"]), 6))))
    one_line_error(*bench("data", "import", str(tmp_path / "wide.npz"), *args), "observations have width 6",
                   "takes 4")
    np.savez(tmp_path / "act.npz", **dict(arrays, actions=np.zeros((len(arrays["actions"]), 3), np.float32)))
    one_line_error(*bench("data", "import", str(tmp_path / "act.npz"), *args), "actions have width 3")
    with pytest.raises(BenchError, match="no such file"):
        import_d4rl(tmp_path / "absent.npz", UMAZE, "expert", "smoke")
    assert not (tmp_path / "minari" / "bench").exists()
