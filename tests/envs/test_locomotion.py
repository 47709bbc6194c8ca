"""Locomotion suite: tasks, generation from behaviour-policy files, import, fetch (offline), runs, trainer.

No trained expert/medium policies exist in the tests: the "expert" is a scripted PD controller holding the
hopper's joints at their initial angles (written into the policy-file format), which stands until the
1000-step time limit (return ~1000); the "medium" is a randomly initialized actor, which falls within tens
of steps. Which of the two is better is known, so the ordering checks below can fail (swapped files,
ignored terminations, wrong normalization).
"""
from __future__ import annotations

import time

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from core.errors import BenchError
from envs.evaluation import evaluate, normalized_score
from envs.locomotion import (collect_episodes, generate_locomotion_datasets, load_policy, make_locomotion_env,
                             policy_path, save_policy)
from envs.storage import DATA_SCALES, dataset_id, dataset_source, load_flat, named_dataset_id, reference_returns
from envs.tasks import LOCOMOTION_SPECS, get_task, resolve_tasks
from methods.nets import TanhGaussianActor

HOPPER = get_task("hopper-medium")
HIDDEN = (16, 16)


def pd_stand_actor(kp: float = 2.0, kd: float = 0.2) -> TanhGaussianActor:
    """mu(s) = -kp q - kd qdot on hopper's three joints (obs 2:5 angles, 8:11 velocities), log-std -5: a linear
    law written into the ReLU MLP as relu(Ks) - relu(-Ks)."""
    a, o = HOPPER.act_dim, HOPPER.obs_dim
    actor = TanhGaussianActor(o, a, HIDDEN)
    first, second, out = [m for m in actor.trunk if isinstance(m, torch.nn.Linear)]
    gain = torch.zeros(a, o)
    for j in range(a):
        gain[j, 2 + j], gain[j, 8 + j] = -kp, -kd
    with torch.no_grad():
        for m in (first, second, out):
            m.weight.zero_()
            m.bias.zero_()
        first.weight[:a], first.weight[a:2 * a] = gain, -gain
        second.weight[:2 * a, :2 * a] = torch.eye(2 * a)
        out.weight[:a, :a], out.weight[:a, a:2 * a] = torch.eye(a), -torch.eye(a)
        out.bias[a:] = -5.0
    return actor


def write_test_policies(directory) -> None:
    torch.manual_seed(0)
    save_policy(policy_path("hopper", "expert", directory), HOPPER, "expert", pd_stand_actor(), HIDDEN, notes="PD")
    save_policy(policy_path("hopper", "medium", directory), HOPPER, "medium", TanhGaussianActor(11, 3, HIDDEN),
                HIDDEN, notes="random init")


def hopper_unhealthy(s: np.ndarray) -> bool:
    """Gymnasium Hopper-v5's termination test on an observation."""
    return not (np.isfinite(s).all() and (np.abs(s[1:]) < 100).all() and s[0] > 0.7 and abs(s[1]) < 0.2)


@pytest.fixture(scope="module")
def hopper_smoke(minari_root, tmp_path_factory):
    policies = tmp_path_factory.mktemp("policies")
    write_test_policies(policies)
    generate_locomotion_datasets(HOPPER, "smoke", seed=0, policies_dir=policies, log=lambda *_: None)
    return policies


def bench(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def one_line_error(code, output, *fragments):
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------------------------------------- tasks
def test_tasks_aliases_and_env_dims(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes a deprecation notice about Ant's model to ./MUJOCO_LOG.TXT
    loco = resolve_tasks("locomotion")
    assert loco == [f"{r}-{d}" for r in ("hopper", "halfcheetah", "walker2d", "ant") for d in ("medium", "medium-expert")]
    assert resolve_tasks("hopper") == ["hopper-medium", "hopper-medium-expert"]
    medium, mixed = get_task("hopper-medium"), get_task("hopper-medium-expert")
    assert medium.training_key != mixed.training_key  # different D^S: never trained once for both
    assert dataset_id(medium, "expert", "quick") == dataset_id(mixed, "expert", "quick") == "bench/hopper/expert-quick-v1"
    assert dataset_id(medium, "supplementary", "paper") == "bench/hopper/medium-v1"
    assert dataset_id(mixed, "supplementary", "paper") == "bench/hopper/medium-expert-v1"
    assert reference_returns(mixed, "smoke") == {"min": -20.272305, "max": 3234.3}
    for robot in LOCOMOTION_SPECS:
        task = get_task(f"{robot}-medium")
        env = make_locomotion_env(task)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (task.obs_dim,) and env.action_space.shape == (task.act_dim,)
        assert env.spec.max_episode_steps == 1000
    assert get_task("ant-medium").obs_dim == 27  # qpos[2:] + qvel, no contact forces (see envs/tasks.py)
    # maze2d is untouched
    assert get_task("maze2d-umaze-sparse").training_key == get_task("maze2d-umaze-dense").training_key


# -------------------------------------------------------------------------------------------- generation
def test_generated_datasets_have_shapes_and_episode_boundaries(hopper_smoke):
    scale = DATA_SCALES["smoke"]
    flats = {name: load_flat(named_dataset_id(HOPPER, name, "smoke"), HOPPER, "smoke")
             for name in ("expert", "medium", "medium-expert")}
    for name, flat in flats.items():
        n = len(flat.actions)
        assert flat.observations.shape == flat.next_observations.shape == (n, 11) and flat.actions.shape == (n, 3)
        assert n >= scale.locomotion_steps and np.abs(flat.actions).max() <= 1.0
        assert flat.metadata["bench_source"] == "generated"
        ends = np.append(flat.episode_starts[1:], n) - 1
        flags = flat.terminals | flat.timeouts
        assert flags[ends].all() and flags.sum() == len(ends)        # one end flag per episode, at its end
        assert not (flat.terminals & flat.timeouts).any()
        inner = np.setdiff1d(np.arange(n), ends)                     # consecutive within episodes
        np.testing.assert_array_equal(flat.observations[inner + 1], flat.next_observations[inner])
        lengths = np.diff(np.append(flat.episode_starts, n))
        assert (lengths[flat.timeouts[ends]] == 1000).all()          # timeouts only at the time limit
        for i in np.flatnonzero(flat.terminals):                     # terminations exactly where the env's check fails
            assert hopper_unhealthy(flat.next_observations[i])
        for i in inner[::97]:
            assert not hopper_unhealthy(flat.next_observations[i])
    expert, medium, mixed = flats["expert"], flats["medium"], flats["medium-expert"]
    assert len(expert.episode_starts) >= scale.expert_episodes and expert.timeouts.sum() == len(expert.episode_starts)
    assert medium.terminals.sum() == len(medium.episode_starts)      # the random actor always falls
    for key in ("observations", "actions", "terminals", "timeouts", "rewards"):
        np.testing.assert_array_equal(getattr(mixed, key), np.concatenate([getattr(medium, key), getattr(expert, key)]))


def test_better_policy_gets_higher_returns_and_scores(hopper_smoke):
    expert = load_flat(named_dataset_id(HOPPER, "expert", "smoke"), HOPPER, "smoke")
    medium = load_flat(named_dataset_id(HOPPER, "medium", "smoke"), HOPPER, "smoke")
    per_episode = lambda f: np.add.reduceat(f.rewards, f.episode_starts)  # noqa: E731
    assert per_episode(expert).min() > 900 > 100 > per_episode(medium).max()
    reference = reference_returns(HOPPER, "smoke")
    good = evaluate(load_policy(policy_path("hopper", "expert", hopper_smoke), HOPPER).act, HOPPER, 3)
    bad = evaluate(load_policy(policy_path("hopper", "medium", hopper_smoke), HOPPER).act, HOPPER, 3)
    assert normalized_score(good.mean(), reference) == pytest.approx(100 * (1000 + 20.27) / 3254.57, abs=2)
    assert normalized_score(bad.mean(), reference) < 5  # fell: the evaluation stopped at the termination


def test_generation_is_deterministic_for_a_seed(hopper_smoke):
    policy = load_policy(policy_path("hopper", "medium", hopper_smoke), HOPPER)
    runs = [collect_episodes(HOPPER, lambda o, r=np.random.default_rng([3, 1]): policy.sample(o, r), 200, 1, seed=5)
            for _ in range(2)]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_a_policy_file_loads_as_its_actors_layers_without_the_actor_class(tmp_path):
    """envs reads the weights from the state dict (methods.nets stays out of envs): the same float64 layers and
    deterministic actions as the TanhGaussianActor holding them; weights of another shape are a one-line error."""
    torch.manual_seed(3)
    actor = TanhGaussianActor(HOPPER.obs_dim, HOPPER.act_dim, HIDDEN)
    policy = load_policy(save_policy(tmp_path / "p.pt", HOPPER, "medium", actor, HIDDEN), HOPPER)
    linears = [m for m in actor.trunk if isinstance(m, torch.nn.Linear)]
    for (weight, bias), m in zip(policy.layers, linears, strict=True):
        np.testing.assert_array_equal(weight, m.weight.detach().double().numpy())
        np.testing.assert_array_equal(bias, m.bias.detach().double().numpy())
    obs = np.random.default_rng(0).normal(size=(4, HOPPER.obs_dim))
    with torch.no_grad():
        expected = actor.act(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(policy.act(obs), expected, atol=1e-5)
    save_policy(tmp_path / "q.pt", HOPPER, "medium", TanhGaussianActor(HOPPER.obs_dim, HOPPER.act_dim, (8, 8)), HIDDEN)
    with pytest.raises(BenchError, match=r"actor weights do not fit hidden_dims \[16, 16\] \(RuntimeError\)"):
        load_policy(tmp_path / "q.pt", HOPPER)


def test_missing_policy_files_fail_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    code, output = bench("data", "generate", "--envs", "hopper", "--profile", "smoke", "--policies", str(tmp_path))
    one_line_error(code, output, str(tmp_path / "hopper-expert.pt"), "bench data train-policies --envs hopper",
                   "not trained yet")


# ------------------------------------------------------------------------------------------------ import
def write_d4rl(path, flat, next_obs: bool = True, obs=None, actions=None, drop: str | None = None):
    with h5py.File(path, "w") as f:
        arrays = {"observations": flat.observations if obs is None else obs,
                  "actions": flat.actions if actions is None else actions, "rewards": flat.rewards,
                  "terminals": flat.terminals, "timeouts": flat.timeouts}
        if next_obs:
            arrays["next_observations"] = flat.next_observations
        for key, value in arrays.items():
            if key != drop:
                f[key] = value


def test_import_round_trip_and_source_labels(hopper_smoke, tmp_path, monkeypatch):
    from benchmark.runner import data_source
    source = {name: load_flat(named_dataset_id(HOPPER, name, "smoke"), HOPPER, "smoke") for name in ("expert", "medium")}
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    write_d4rl(tmp_path / "medium.hdf5", source["medium"])
    code, output = bench("data", "import", str(tmp_path / "medium.hdf5"), "--task", "hopper-medium",
                         "--kind", "supplementary", "--profile", "smoke")
    assert code == 0, output
    ds = dataset_id(HOPPER, "supplementary", "smoke")
    back = load_flat(ds, HOPPER, "smoke")
    for key in ("observations", "actions", "next_observations", "terminals", "timeouts", "rewards", "episode_starts"):
        np.testing.assert_array_equal(getattr(back, key), getattr(source["medium"], key))
    assert dataset_source(ds) == "imported-d4rl"
    one_line_error(*bench("data", "import", str(tmp_path / "medium.hdf5"), "--task", "hopper-medium", "--kind",
                          "supplementary", "--profile", "smoke"), "exists already", "--force")
    # without next_observations: a timeout's last transition is dropped, a terminal's is kept
    write_d4rl(tmp_path / "expert.hdf5", source["expert"], next_obs=False)
    assert bench("data", "import", str(tmp_path / "expert.hdf5"), "--task", "hopper-medium", "--kind", "expert",
                 "--profile", "smoke")[0] == 0
    expert = load_flat(dataset_id(HOPPER, "expert", "smoke"), HOPPER, "smoke")
    episodes = len(source["expert"].episode_starts)
    assert len(expert.actions) == len(source["expert"].actions) - episodes and expert.timeouts.sum() == episodes
    np.testing.assert_array_equal(expert.observations[:999], source["expert"].observations[:999])
    assert data_source(HOPPER, "smoke") == "imported-d4rl"
    # a task whose D^E and D^S come from different places says both
    write_d4rl(tmp_path / "mixed.hdf5", source["medium"])
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "other"))
    generate_locomotion_datasets(HOPPER, "smoke", policies_dir=hopper_smoke, log=lambda *_: None)
    bench("data", "import", str(tmp_path / "mixed.hdf5"), "--task", "hopper-medium", "--kind", "supplementary",
          "--profile", "smoke", "--force")
    assert data_source(HOPPER, "smoke") == "generated (expert) + imported-d4rl (supplementary)"


def test_import_rejects_mismatched_missing_and_corrupt_files(hopper_smoke, tmp_path, monkeypatch):
    flat = load_flat(named_dataset_id(HOPPER, "medium", "smoke"), HOPPER, "smoke")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    args = ("--task", "hopper-medium", "--kind", "supplementary", "--profile", "smoke")
    cases = {
        "walker.hdf5": (dict(obs=np.zeros((len(flat.actions), 17))), "observations have width 17"),
        "act.hdf5": (dict(actions=np.zeros((len(flat.actions), 6), np.float32)), "actions have width 6"),
        "keys.hdf5": (dict(drop="timeouts"), "lacks D4RL key(s) timeouts"),
        "rows.hdf5": (dict(obs=flat.observations[:-3]), "observations has"),
        "bounds.hdf5": (dict(actions=flat.actions * 3), "leave Hopper-v5's bounds"),
    }
    for name, (kwargs, fragment) in cases.items():
        write_d4rl(tmp_path / name, flat, **kwargs)
        one_line_error(*bench("data", "import", str(tmp_path / name), *args), fragment)
    (tmp_path / "corrupt.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    one_line_error(*bench("data", "import", str(tmp_path / "corrupt.hdf5"), *args), "not a readable HDF5 file")
    one_line_error(*bench("data", "import", str(tmp_path / "act.hdf5"), "--task", "maze2d-umaze-sparse", "--kind",
                          "expert"), "actions have width 6", "takes 2")  # a hopper file for a maze
    assert not (tmp_path / "minari" / "bench").exists()  # nothing half-written


def test_import_keeps_the_27_ant_columns_of_d4rl_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    rng = np.random.default_rng(0)
    n, ant = 30, get_task("ant-medium")
    obs = np.concatenate([rng.normal(size=(n, 27)), np.zeros((n, 84))], axis=1).astype(np.float32)
    terminals, timeouts = np.zeros(n, bool), np.zeros(n, bool)
    terminals[9], timeouts[19] = True, True  # episodes 0-9 (terminal), 10-19 (timeout), 20-29 (end of data)
    with h5py.File(tmp_path / "ant.hdf5", "w") as f:
        f["observations"], f["next_observations"] = obs, np.roll(obs, -1, 0)
        f["actions"] = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
        f["rewards"], f["terminals"], f["timeouts"] = rng.normal(size=n), terminals, timeouts
    assert bench("data", "import", str(tmp_path / "ant.hdf5"), "--task", "ant-medium", "--kind", "supplementary",
                 "--profile", "smoke")[0] == 0
    back = load_flat(dataset_id(ant, "supplementary", "smoke"), ant, "smoke")
    np.testing.assert_allclose(back.observations, obs[:, :27])
    assert back.episode_starts.tolist() == [0, 10, 20]
    assert back.terminals.nonzero()[0].tolist() == [9] and back.timeouts.nonzero()[0].tolist() == [19, 29]


# ------------------------------------------------------------------------------------------------- fetch
def test_fetch_offline_fails_fast_and_downloads_nothing(tmp_path, monkeypatch):
    import socket

    import minari

    from envs import external
    monkeypatch.setattr(minari, "download_dataset", lambda *a, **k: pytest.fail("fetch tried to download"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(external, "remote_endpoint", lambda: ("127.0.0.1", port))
    start = time.perf_counter()
    one_line_error(*bench("data", "fetch", "--envs", "hopper"), "cannot reach Minari's remote",
                   "bench data generate --envs hopper")
    assert time.perf_counter() - start < 5
    # a remote that never answers (DNS or a black hole) is cut off by the timeout
    def black_hole(*args, **kwargs):  # hangs, then fails as a real connect timeout would (in its own thread)
        time.sleep(30)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    start = time.perf_counter()
    with pytest.raises(BenchError, match="timed out"):
        external.check_online(["hopper"], timeout=0.3)
    assert time.perf_counter() - start < 2


# -------------------------------------------------------------------------------------------------- runs
@pytest.mark.slow  # long (a training to a quality bar, or a process pool): `pytest -m slow`
def test_bc_exp_and_uds_run_on_hopper_medium(hopper_smoke, tmp_path):
    from benchmark.grid import expand_grid
    from benchmark.profiles import get_profile
    from benchmark.report import _provenance
    from benchmark.runner import RunOptions, run_one
    results = []
    for spec in expand_grid(["bc-exp", "uds"], ["hopper-medium"], [0], get_profile("smoke"), {}):
        result = run_one(spec, RunOptions(root=tmp_path, threads=1, show_progress=False))
        assert result["status"] == "done", result.get("error")
        assert np.isfinite(result["final_score"]) and result["family"] == "locomotion"
        assert result["data"]["source"] == "generated" and result["data"]["supplementary"] == "bench/hopper/medium-smoke-v1"
        assert result["reference"] == {"min": -20.272305, "max": 3234.3}
        results.append(result)
    assert "generated: hopper-medium" in _provenance(results, [])


# ------------------------------------------------------------------------------------------------ trainer
def test_policy_trainer_resumes_exactly_and_writes_policy_files(tmp_path):
    from benchmark.policy_training import PolicyTrainer, TrainConfig
    config = TrainConfig(total_steps=240, start_steps=80, batch_size=32, hidden_dims=(32, 32), buffer_size=1_000,
                         eval_every=80, eval_episodes=1, checkpoint_every=40)
    quiet = lambda *_: None  # noqa: E731
    whole = PolicyTrainer(HOPPER, config, tmp_path / "whole", seed=1)
    chosen = whole.run(log=quiet)
    killed = PolicyTrainer(HOPPER, config, tmp_path / "killed", seed=1)
    assert killed.run(stop_after_step=190, log=quiet) == {"stopped_at": 190}
    saved = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert 80 < saved["step"] < 190 and len(saved["snapshots"]) == 1  # resumes after the first evaluation
    resumed = PolicyTrainer(HOPPER, config, tmp_path / "killed", seed=1)
    again = resumed.run(log=quiet)
    for key, value in whole.learner.state_dict()["actor"].items():
        torch.testing.assert_close(resumed.learner.state_dict()["actor"][key], value, rtol=0, atol=0)
    assert [s["return"] for s in resumed.snapshots] == [s["return"] for s in whole.snapshots]
    assert chosen["steps"] == again["steps"] == 240 and len(whole.snapshots) == 3
    paths = whole.write_policies(chosen, tmp_path / "policies")
    policy = load_policy(paths[0], HOPPER)
    assert policy.meta["level"] == "expert" and policy.meta["eval_return"] == chosen["expert"]["return"]
    assert policy.act(np.zeros((2, 11))).shape == (2, 3)
    # the selection rule: expert = best, medium = closest to 1/3 of it, among snapshots of a trained actor
    # (the one at start_steps = 80 is the untrained actor: left out even though it scores best)
    whole.snapshots = [{"step": s, "return": r, "actor": None}
                       for s, r in [(80, 1500.0), (160, 300.0), (240, 1000.0), (320, 900.0)]]
    picked = whole.select()
    assert picked["expert"]["step"] == 240 and picked["medium"]["step"] == 160
    whole.snapshots = whole.snapshots[:1]
    with pytest.raises(BenchError, match="no evaluation snapshot of a trained actor yet"):
        whole.select()
