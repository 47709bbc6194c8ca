"""The runner: learning, kill-and-resume, skipping finished runs, failures that do not stop the grid."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
import torch

from benchmark.executor import run_grid
from benchmark.grid import expand_grid
from benchmark.profiles import get_profile
from benchmark.runner import (RunOptions, SimulatedKill, expert_episode_ids, load_imitation_data, run_one,
                              run_shared)
from benchmark.store import CHECKPOINT_FILE, RESULT_FILE, run_dir
from core.errors import BenchError
from methods import nets, registry
from methods.bc_exp import BCExp

SMOKE = get_profile("smoke")


def spec(method="bc-exp", task="maze2d-umaze-sparse", seed=0, overrides=None):
    return expand_grid([method], [task], [seed], SMOKE, {method: overrides} if overrides else None)[0]


def options(tmp_path, **kw):
    return RunOptions(root=tmp_path, device="cpu", show_progress=False, **kw)


def test_bc_exp_beats_random_on_umaze_smoke(umaze_random_score, umaze_smoke, tmp_path):
    result = run_one(spec(), options(tmp_path))
    random_score = umaze_random_score(SMOKE.eval_episodes)
    assert result["status"] == "done"
    assert result["final_score"] > random_score + 30
    assert len(result["curve"]["step"]) == SMOKE.num_steps // SMOKE.eval_every + 1  # + the step-0 point
    assert result["best_score"] >= result["final_score"]
    assert not (run_dir(tmp_path, result["run_key"]) / CHECKPOINT_FILE).exists()


def test_kill_and_resume_equals_uninterrupted(umaze_smoke, tmp_path):
    straight = run_one(spec(), options(tmp_path / "a"))
    with pytest.raises(SimulatedKill):  # dies at step 250, last checkpoint at 200
        run_one(spec(), options(tmp_path / "b", stop_after_step=250))
    directory = run_dir(tmp_path / "b", straight["run_key"])
    assert (directory / CHECKPOINT_FILE).exists() and not (directory / RESULT_FILE).exists()
    resumed = run_one(spec(), options(tmp_path / "b"))
    assert resumed["curve"] == straight["curve"]
    assert resumed["final_score"] == straight["final_score"]
    log_a = (run_dir(tmp_path / "a", straight["run_key"]) / "log.csv").read_text()
    assert (directory / "log.csv").read_text() == log_a  # no duplicated rows from the lost steps


def test_checkpoint_from_another_device_type_restarts_the_run(umaze_smoke, tmp_path):
    """Generator states of CPU and CUDA samplers differ in kind: a checkpoint trained on the other device type
    is not resumed (that would raise) but the run restarts, with a warning, and equals a fresh one."""
    import torch
    straight = run_one(spec(), options(tmp_path / "a"))
    with pytest.raises(SimulatedKill):
        run_one(spec(), options(tmp_path / "b", stop_after_step=250))
    path = run_dir(tmp_path / "b", straight["run_key"]) / CHECKPOINT_FILE
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["device"] == "cpu"
    torch.save({**checkpoint, "device": "cuda"}, path)
    warnings = []
    restarted = run_one(spec(), options(tmp_path / "b"), warn=warnings.append)
    assert any("trained on cuda" in w and "restarting" in w for w in warnings), warnings
    assert restarted["curve"] == straight["curve"]


def test_sparse_dense_twins_train_once_and_equal_separate_runs(umaze_smoke, tmp_path):
    """One training scored with both rewards gives exactly the results of two separate runs, also
    when the shared job is killed and resumed."""
    twins = [spec(task="maze2d-umaze-sparse"), spec(task="maze2d-umaze-dense")]
    separate = run_grid(twins, options(tmp_path / "a", share_training=False), workers=1, warn=lambda *_: None)
    with pytest.raises(SimulatedKill):
        run_shared(twins, options(tmp_path / "b", stop_after_step=150))
    messages = []
    shared = run_grid(twins, options(tmp_path / "b"), workers=1, warn=messages.append)
    assert any("2 runs in 1 trainings" in m for m in messages)
    by_task = lambda summary: {r["task"]: r for r in summary.done}
    for task, result in by_task(shared).items():
        assert result["curve"] == by_task(separate)[task]["curve"]
        assert result["trained_with"] == [s.run_key for s in twins if s.task != task]
    sparse, dense = (by_task(shared)[t]["curve"]["return"] for t in ("maze2d-umaze-sparse", "maze2d-umaze-dense"))
    assert sparse != dense  # the rewards really differ


def test_rerun_skips_finished_and_force_redoes(umaze_smoke, tmp_path):
    specs = [spec(seed=0), spec(seed=1)]
    first = run_grid(specs, options(tmp_path), workers=1, warn=lambda *_: None)
    assert len(first.done) == 2
    again = run_grid(specs, options(tmp_path), workers=1, warn=lambda *_: None)
    assert len(again.done) == 0 and len(again.skipped) == 2
    forced = run_grid(specs[:1], options(tmp_path), workers=1, force=True, warn=lambda *_: None)
    assert len(forced.done) == 1


def test_config_override_changes_the_run_key_and_is_stored(umaze_smoke, tmp_path):
    base, tuned = spec(), spec(overrides={"lr": 1e-3})
    assert base.run_key != tuned.run_key and tuned.variant == "bc-exp[lr=0.001]"
    result = run_one(tuned, options(tmp_path))
    stored = json.loads((run_dir(tmp_path, tuned.run_key) / RESULT_FILE).read_text())
    assert stored["config"]["lr"] == 1e-3 and stored["overrides"] == {"lr": 1e-3}
    assert stored["data"]["expert_draw"] == "first" and stored["data"]["expert_episode_ids"] == [0, 1, 2, 3, 4]
    assert result["settings"]["num_steps"] == SMOKE.num_steps and stored["git_commit"] != ""
    assert stored["settings"]["onednn_linear"] is nets.ONEDNN_LINEAR  # which matmul path ran
    assert set(stored["phase_times_s"]) == {"pretrain", "update", "eval"}  # no compile phase in eager runs


# run keys of default runs: a new setting at its default (or a change to how keys are hashed) must leave them
# byte-identical, or finished results would be trained again. A method's own Config change moves only that method's
# keys (update its pin then, and say so in the commit). Moved on purpose: maze2d keys with data v1 (D4RL's data,
# scale and evaluation), quick keys with 30 evaluation episodes, bc-exp's with its weight decay (issue 18), SRA's
# (and romi, otil, uds-awac, uds-sacn, sra-*) when the stored config began to hold the task defaults resolved before
# the run instead of None, and lost num_steps (the run length: a setting, already in the key as settings.num_steps);
# every method with an IQL learner (uds, sra*, romi, otil), uds-awac and uds-td3bc when the learner configs kept only
# their algorithm's hyper-parameters (lr schedules to SRA's and OTIL's Config, one bc_weight in every learner);
# locomotion keys with data v1 (episode starts from named seed streams); SRA's quick keys (and its variants') when
# quick's warm-up moved from 5k to 7.5k.
PINNED_RUN_KEYS = {
    ("bc-exp", "quick", "maze2d-umaze-sparse"): "bc-exp/maze2d-umaze-sparse/seed0-7b40dad7",
    ("bc-exp", "paper", "maze2d-umaze-sparse"): "bc-exp/maze2d-umaze-sparse/seed0-eb8c858b",
    ("uds", "quick", "maze2d-umaze-sparse"): "uds/maze2d-umaze-sparse/seed0-ebf723bf",
    ("uds", "paper", "maze2d-umaze-sparse"): "uds/maze2d-umaze-sparse/seed0-0423b3bf",
    ("sra", "quick", "maze2d-umaze-sparse"): "sra/maze2d-umaze-sparse/seed0-3f9c72c5",
    ("sra", "paper", "maze2d-umaze-sparse"): "sra/maze2d-umaze-sparse/seed0-845a4ce2",
    ("uds", "paper", "hopper-medium"): "uds/hopper-medium/seed0-0423b3bf",
    ("sra", "paper", "hopper-medium"): "sra/hopper-medium/seed0-df823d5e",
}


@pytest.mark.parametrize("method, profile, task", sorted(PINNED_RUN_KEYS))
def test_default_run_keys_are_unchanged(method, profile, task):
    run_spec = expand_grid([method], [task], [0], get_profile(profile))[0]
    assert run_spec.run_key == PINNED_RUN_KEYS[(method, profile, task)]


# ------------------------------------------------------------------ issue 18: the D^E draw
def test_seeded_expert_draw_differs_between_seeds_and_repeats_for_a_seed():
    draws = [expert_episode_ids("seeded", 100, 5, seed) for seed in range(4)]
    assert len({tuple(d) for d in draws}) == 4
    assert draws == [expert_episode_ids("seeded", 100, 5, seed) for seed in range(4)]
    assert all(d == sorted(set(d)) and len(d) == 5 and 0 <= d[0] and d[-1] < 100 for d in draws)
    assert expert_episode_ids("first", 100, 5, 3) == [0, 1, 2, 3, 4]
    with pytest.raises(BenchError, match="unknown expert draw 'random'; valid draws: first, seeded"):
        expert_episode_ids("random", 100, 5, 0)


def test_first_draw_is_the_first_episodes_and_seeded_takes_the_drawn_ones(umaze_smoke):
    from envs.storage import dataset_id, load_flat
    from methods.data import Transitions
    flat = load_flat(dataset_id(umaze_smoke, "expert", "smoke"), umaze_smoke, "smoke")
    raw = Transitions(flat.observations, flat.actions, flat.next_observations, flat.terminals, flat.timeouts,
                      flat.episode_starts)
    first = load_imitation_data(umaze_smoke, "smoke", 5).expert  # the default: the paper's protocol
    assert all((getattr(first, k) == getattr(raw.first_episodes(5), k)).all()
               for k in ("observations", "actions", "episode_starts"))
    seeded = load_imitation_data(umaze_smoke, "smoke", 5, "seeded", seed=1).expert
    ids = expert_episode_ids("seeded", raw.num_episodes, 5, 1)
    assert ids != [0, 1, 2, 3, 4] and seeded.num_episodes == 5
    for (a, b), i in zip(seeded.episode_bounds(), ids):
        start, end = raw.episode_bounds()[i]
        assert (seeded.observations[a:b] == raw.observations[start:end]).all()


def test_expert_draw_is_a_run_setting_only_when_not_the_default():
    default, seeded = (expand_grid(["bc-exp"], ["maze2d-umaze-sparse"], [0], SMOKE, expert_draw=d)[0]
                       for d in ("first", "seeded"))
    assert "expert_draw" not in default.settings and default.run_key == spec().run_key
    assert seeded.settings["expert_draw"] == "seeded" and seeded.run_key != default.run_key
    with pytest.raises(BenchError, match="valid draws: first, seeded"):
        expand_grid(["bc-exp"], ["maze2d-umaze-sparse"], [0], SMOKE, expert_draw="last")


@dataclass(frozen=True)
class _NaNConfig(BCExp.Config):
    nan_at: int = 30


class NaNMethod(BCExp):
    """BC whose loss turns NaN from step ``nan_at`` on (a diverging learner)."""
    name = "nan-test"
    Config = _NaNConfig

    def update(self, step):
        metrics = super().update(step)
        if step + 1 >= self.config.nan_at:
            metrics["loss/actor"] = torch.tensor(float("nan"))
        return metrics


def test_nan_update_marks_the_run_failed_and_the_grid_goes_on(umaze_smoke, tmp_path, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "nan-test", NaNMethod)
    specs = [spec("nan-test"), spec("bc-exp")]
    summary = run_grid(specs, options(tmp_path), workers=1, warn=lambda *_: None)
    assert [r["method"] for r in summary.failed] == ["nan-test"]
    assert [r["method"] for r in summary.done] == ["bc-exp"]
    failed = summary.failed[0]
    assert failed["failed_step"] == 40 and "non-finite loss/actor at step 40" in failed["error"]


def test_corrupt_result_file_is_set_aside_and_the_run_redone(umaze_smoke, tmp_path):
    s = spec()
    run_one(s, options(tmp_path))
    path = run_dir(tmp_path, s.run_key) / RESULT_FILE
    path.write_text('{"truncated": ')
    messages = []
    summary = run_grid([s], options(tmp_path), workers=1, warn=messages.append)
    assert len(summary.done) == 1
    assert (path.parent / "result.json.corrupt-0").read_text() == '{"truncated": '
    assert any("corrupt result file" in m and str(path) in m for m in messages)


@pytest.mark.slow  # long (a training to a quality bar, or a process pool): `pytest -m slow`
def test_parallel_workers_match_a_single_worker(umaze_smoke, tmp_path):
    specs = [spec(seed=0), spec(seed=1)]
    serial = run_grid(specs, options(tmp_path / "serial"), workers=1, warn=lambda *_: None)
    parallel = run_grid(specs, options(tmp_path / "parallel", threads=1), workers=2, warn=lambda *_: None)
    by_key = {r["run_key"]: r["curve"] for r in serial.done}
    assert {r["run_key"]: r["curve"] for r in parallel.done} == by_key


# ------------------------------------------------------------------ issue 15: concurrency and duplicates
def test_a_run_listed_twice_runs_once_with_a_clean_curve(umaze_smoke, tmp_path):
    s = spec()
    summary = run_grid([s, s], options(tmp_path), workers=1, warn=lambda *_: None)
    assert len(summary.done) == 1
    steps = summary.done[0]["curve"]["step"]
    assert steps == sorted(set(steps))
    with pytest.raises(ValueError, match="cannot share training"):
        run_shared([s, s], options(tmp_path / "b"))


def test_a_run_locked_by_another_process_is_skipped_not_trained_twice(umaze_smoke, tmp_path):
    """Two `bench run` on one --out: the second one neither trains a run the first holds nor touches its files."""
    from benchmark.locks import run_lock
    s = spec()
    directory = run_dir(tmp_path, s.run_key)
    messages = []
    with run_lock(directory):  # "another process" (flock: a second open file conflicts within one process too)
        summary = run_grid([s], options(tmp_path), workers=1, warn=messages.append)
    assert [r["status"] for r in summary.busy] == ["busy"] and not summary.done and not summary.failed
    assert "another process is training it right now" in summary.busy[0]["error"]
    assert not (directory / RESULT_FILE).exists() and not (directory / CHECKPOINT_FILE).exists()
    assert not (directory / "log.csv").exists()
    assert len(run_grid([s], options(tmp_path), workers=1, warn=lambda *_: None).done) == 1  # lock released


def test_a_run_finished_by_another_process_meanwhile_is_not_retrained(umaze_smoke, tmp_path):
    s = spec()
    first = run_one(s, options(tmp_path))
    messages = []
    again = run_shared([s], options(tmp_path), warn=messages.append)  # planned before the other one finished
    assert again[0]["finished_at"] == first["finished_at"]
    assert any("finished by another process meanwhile" in m for m in messages)


def test_the_lock_of_a_killed_process_is_released(tmp_path):
    import subprocess
    import sys
    from benchmark.locks import RunBusy, run_lock
    code = ("import sys, time; from benchmark.locks import run_lock\n"
            f"with run_lock({str(tmp_path)!r}):\n    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusy, match=f"pid {holder.pid}"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs
        holder.wait()
    with run_lock(tmp_path):
        pass


def test_both_twins_get_the_training_log(umaze_smoke, tmp_path):
    twins = [spec(task="maze2d-umaze-sparse"), spec(task="maze2d-umaze-dense")]
    summary = run_grid(twins, options(tmp_path), workers=1, warn=lambda *_: None)
    logs = [(run_dir(tmp_path, r["run_key"]) / "log.csv") for r in summary.done]
    assert len(logs) == 2 and all(p.exists() for p in logs)
    assert logs[0].read_text() == logs[1].read_text() and "eval/score/maze2d-umaze-dense" in logs[0].read_text()


class TimedPretrain(BCExp):
    """BC-exp with a timed pretraining phase that reports a metric."""
    name = "timed-pretrain-test"
    phases = ("warm", "never")

    def pretrain(self, progress):
        with self.timer("warm"):
            time.sleep(0.01)
        return {"fit": torch.tensor(0.25)}


def test_pretrain_metrics_and_method_phases_reach_the_result_also_after_a_resume(umaze_smoke, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, TimedPretrain.name, TimedPretrain)
    straight = run_one(spec(TimedPretrain.name), options(tmp_path / "a"))
    log = (run_dir(tmp_path / "a", straight["run_key"]) / "log.csv").read_text().splitlines()
    assert log[1] == "0,pretrain/fit,0.25"  # logged at step 0, before the step-0 evaluation
    with pytest.raises(SimulatedKill):
        run_one(spec(TimedPretrain.name), options(tmp_path / "b", stop_after_step=250))
    resumed = run_one(spec(TimedPretrain.name), options(tmp_path / "b"))  # never pretrains again
    for result in (straight, resumed):
        assert result["pretrain_metrics"] == {"fit": 0.25}
        assert result["phase_times_s"]["method/warm"] >= 0.01 and result["phase_times_s"]["method/never"] == 0.0
    assert "pretrain_metrics" not in run_one(spec(), options(tmp_path / "c"))  # bc-exp: no pretraining


def test_a_compiled_sacn_run_resumes_like_an_uninterrupted_one(umaze_smoke, tmp_path):
    """CLARE's SAC-N updates compiled in two stages, the policy noise drawn inside the graph (seeded from the
    global RNG the checkpoint restores): killed and resumed, the same curve as straight through."""
    compiled = expand_grid(["clare"], ["maze2d-umaze-sparse"], [0], SMOKE, compile=True)[0]
    warnings = []
    straight = run_one(compiled, options(tmp_path / "a"), warn=warnings.append)
    assert straight["status"] == "done", straight.get("error")
    assert not [w for w in warnings if "--compile" in w], warnings  # the learner took the compiled path
    assert straight["phase_times_s"]["compile"] > 0
    with pytest.raises(SimulatedKill):
        run_one(compiled, options(tmp_path / "b", stop_after_step=250))
    assert run_one(compiled, options(tmp_path / "b"))["curve"] == straight["curve"]


def test_a_compiled_run_is_its_own_run_and_resumes_like_an_uninterrupted_one(umaze_smoke, tmp_path):
    """``bench run --compile``: UDS's IQL updates as one compiled graph (methods/compiled_step.py; equal to the
    eager update within float rounding: tests/methods/test_iql_plain_reference.py); killed and resumed, the same
    curve as a run straight through."""
    compiled = expand_grid(["uds"], ["maze2d-umaze-sparse"], [0], SMOKE, compile=True)[0]
    assert compiled.settings["compile"] is True
    assert compiled.run_key != spec("uds").run_key
    warnings = []
    straight = run_one(compiled, options(tmp_path / "a"), warn=warnings.append)
    assert straight["status"] == "done", straight.get("error")
    assert not [w for w in warnings if "--compile" in w], warnings  # UDS's learner took the compiled path
    with pytest.raises(SimulatedKill):
        run_one(compiled, options(tmp_path / "b", stop_after_step=250))
    resumed = run_one(compiled, options(tmp_path / "b"))
    assert resumed["curve"] == straight["curve"]
    # the one-off compilation is a phase of its own, not in the update time steps/s is computed from
    phases = straight["phase_times_s"]
    assert phases["compile"] > 0 and straight["steps_per_s"] == pytest.approx(
        straight["settings"]["num_steps"] / phases["update"])
    assert straight["wall_time_s"] == pytest.approx(sum(v for k, v in phases.items() if "/" not in k))
    assert resumed["phase_times_s"]["compile"] > 0  # the resumed process compiled again
