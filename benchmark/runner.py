"""One run, start to finish: data, seeding, the learner loop, evaluation, logs, checkpoints, the result.

The runner owns the loop, never a method: methods only ``pretrain`` / ``update`` / ``act`` / ``state_dict``.
A checkpoint is written after every evaluation (and right after ``pretrain``), holding the method's
state (its phase timer included), the step, the curve so far, the pretraining's metrics, phase timings and every
RNG, so a killed run resumes exactly. A done run stores the method's ``result_info()``, ``artifacts()`` and
``timer`` phases with its result.
"""
from __future__ import annotations

import datetime as dt
import io
import math
import os
import random
import subprocess
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.config import resolve_config
from benchmark.grid import DEFAULT_EXPERT_DRAW, RunSpec, check_expert_draw
from benchmark.locks import RunBusy, run_locks
from benchmark.logger import CSVLogger, MultiLogger, TensorBoardLogger, progress_bar
from benchmark.precision import DEFAULT_PRECISION, update_precision
from benchmark.profiles import get_profile
from benchmark.store import (ARTIFACTS_FILE, CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE, RESULT_FILE, RESULT_SCHEMA,
                             CorruptResultError, read_result, run_dir, set_aside)
from core.errors import BenchError
from core.io import atomic_write_bytes, atomic_write_json
from envs.evaluation import evaluate_tasks, normalized_score, protocol
from envs.storage import dataset_id, dataset_source, load_flat, own_expert_reference, reference_returns
from envs.tasks import TaskSpec, get_task
from methods import nets
from methods.base import synchronize
from methods.data import ImitationData, Transitions
from methods.learners import compile_method, compile_seconds
from methods.registry import get_method

REPO_ROOT = Path(__file__).resolve().parents[1]


class SimulatedKill(Exception):
    """Raised by the ``stop_after_step`` test hook: the process 'dies' between checkpoints."""


@dataclass
class RunOptions:
    root: Path = Path("results")
    device: str = "auto"
    threads: int | None = None          # torch intra-op threads; None = leave torch's default
    tensorboard: bool = False
    show_progress: bool = True
    progress_position: int = 0
    stop_after_step: int | None = None  # test hook: raise SimulatedKill after this many updates
    share_training: bool = True         # train maze2d sparse/dense twins once (executor.share_training)
    redo_finished: bool = False         # --force: train even if a done result exists (and drop checkpoints)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise BenchError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} GPU(s); "
                         f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return device


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The suite's commit (with ``+dirty`` when the tree has uncommitted changes), or None outside git."""
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states(device: torch.device) -> dict[str, Any]:
    """The global RNGs, plus the run's own GPU's (not every visible GPU's: a resume may see fewer)."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and isinstance(states.get("cuda"), torch.Tensor):
        torch.cuda.set_rng_state(states["cuda"], device)


def _transitions(flat) -> Transitions:
    return Transitions(flat.observations, flat.actions, flat.next_observations, flat.terminals, flat.timeouts,
                       flat.episode_starts)


def load_imitation_data(task: TaskSpec, scale: str, expert_episodes: int, expert_draw: str = DEFAULT_EXPERT_DRAW,
                        seed: int = 0) -> ImitationData:
    """D^E = ``expert_episodes`` episodes of the expert dataset (by default the first ones, the paper's protocol;
    see ``expert_episode_ids``); D^S = the supplementary set."""
    return load_imitation_data_with_ids(task, scale, expert_episodes, expert_draw, seed)[0]


def load_imitation_data_with_ids(task: TaskSpec, scale: str, expert_episodes: int, expert_draw: str,
                                 seed: int) -> tuple[ImitationData, list[int]]:
    """``load_imitation_data`` and the expert dataset's episode indices that form D^E."""
    expert = _transitions(load_flat(dataset_id(task, "expert", scale), task, scale))
    supplementary = _transitions(load_flat(dataset_id(task, "supplementary", scale), task, scale))
    if expert.num_episodes < expert_episodes:
        raise BenchError(f"{dataset_id(task, 'expert', scale)} holds {expert.num_episodes} episodes, "
                         f"D^E needs {expert_episodes}")
    ids = expert_episode_ids(expert_draw, expert.num_episodes, expert_episodes, seed)
    return ImitationData.build(expert.episodes(ids), supplementary), ids


def expert_episode_ids(draw: str, available: int, count: int, seed: int) -> list[int]:
    """The expert episodes (indices in file order) that form D^E under ``draw`` (benchmark.grid.EXPERT_DRAWS):
    "first": 0 .. count-1; "seeded": ``count`` distinct ones, sorted, drawn by a generator of the run seed (its
    SeedSequence's first child, a stream apart from ``default_rng(seed)``), so each seed has its own D^E and the
    same seed always the same. The task plays no part: sparse/dense twins, trained once, share D^E."""
    if check_expert_draw(draw) == "first":
        return list(range(count))
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    return sorted(rng.choice(available, size=count, replace=False).tolist())


def data_source(task: TaskSpec, scale: str) -> str:
    """Where the task's data came from (the datasets' ``bench_source``): "generated", "minari",
    "imported-d4rl", or "<expert's> + <supplementary's>" when the two differ."""
    expert, supplementary = (dataset_source(dataset_id(task, kind, scale)) for kind in ("expert", "supplementary"))
    return expert if expert == supplementary else f"{expert} (expert) + {supplementary} (supplementary)"


def _save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_checkpoint(path: Path, warn) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        moved = set_aside(path)
        warn(f"warning: checkpoint {path} is unreadable ({type(e).__name__}); moved it to {moved.name}, "
             f"restarting the run")
        return None


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.item() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}


def run_one(spec: RunSpec, options: RunOptions, warn=print) -> dict:
    """Train and evaluate one (method, task, seed); write and return its result (done or failed)."""
    return run_shared([spec], options, warn)[0]


def run_shared(specs: list[RunSpec], options: RunOptions, warn=print) -> list[dict]:
    """Train once for ``specs`` (one run, or twins differing only in a task of the same ``training_key``)
    and write one result per spec. The first spec's directory holds the checkpoint and the training log
    (copied to the twins' directories at the end).

    The runs' locks are held throughout (``benchmark/locks.py``): RunBusy if another process trains them now.
    A run another process finished meanwhile is not trained again (unless ``options.redo_finished``)."""
    spec, twins = specs[0], specs[1:]
    task = get_task(spec.task)
    tasks = [task, *(get_task(t.task) for t in twins)]
    if any((t.method, t.seed, t.config_hash) != (spec.method, spec.seed, spec.config_hash) for t in twins) or \
            any(t.training_key != task.training_key for t in tasks) or len({s.task for s in specs}) < len(specs):
        raise ValueError(f"runs {[s.run_key for s in specs]} cannot share training")
    directories = [run_dir(options.root, s.run_key) for s in specs]
    with run_locks(directories):
        if options.redo_finished:
            (directories[0] / CHECKPOINT_FILE).unlink(missing_ok=True)
        elif (finished := _finished(directories)) is not None:
            warn(f"{', '.join(s.run_key for s in specs)}: finished by another process meanwhile; not trained again")
            return finished
        return _train(specs, tasks, directories, options, warn)


def _finished(directories: list[Path]) -> list[dict] | None:
    """The done results of all ``directories``, or None if any run is not done."""
    results = []
    for d in directories:
        try:
            result = read_result(d / RESULT_FILE)
        except CorruptResultError:
            return None
        if result["status"] != "done":
            return None
        results.append(result)
    return results


def _train(specs: list[RunSpec], tasks: list[TaskSpec], directories: list[Path], options: RunOptions,
           warn) -> list[dict]:
    spec, twins, task, directory = specs[0], specs[1:], tasks[0], directories[0]
    profile, method_cls = get_profile(spec.profile), get_method(spec.method)
    config = resolve_config(method_cls, spec.config)
    device = resolve_device(options.device)
    # Subnormal floats (|x| < 1.2e-38) turn up in the learners' tensors after some thousand updates, and on an
    # Intel Xeon every op on them takes a slow path: SRA's quick maze2d update fell from 63 to 4.9 updates/s.
    # Flushing them to zero (as GPUs do by default) changes no number above fp32's normal range.
    torch.set_flush_denormal(True)
    if options.threads:
        torch.set_num_threads(options.threads)
    expert_draw = spec.settings.get("expert_draw", DEFAULT_EXPERT_DRAW)
    data, expert_ids = load_imitation_data_with_ids(task, profile.data, profile.expert_episodes, expert_draw,
                                                    spec.seed)
    bases = []
    for s, t, d in zip(specs, tasks, directories):
        d.mkdir(parents=True, exist_ok=True)
        base = {"schema": RESULT_SCHEMA, "run_key": s.run_key, "method": s.method, "variant": s.variant,
                "task": s.task, "family": t.family, "seed": s.seed, "profile": s.profile,
                "config": s.config, "overrides": s.overrides,
                "settings": {**s.settings, "device": str(device), "torch_threads": torch.get_num_threads(),
                             "onednn_linear": nets.ONEDNN_LINEAR},  # which matmul path ran (not in the run key)
                "git_commit": git_commit(), "reference": reference_returns(t, profile.data),
                "reference_own_expert": own_expert_reference(t, profile.data),
                "evaluation": protocol(t, profile.eval_episodes, s.seed),
                "data": {"source": data_source(t, profile.data), "expert": dataset_id(t, "expert", profile.data),
                         "supplementary": dataset_id(t, "supplementary", profile.data),
                         "expert_episodes": data.expert.num_episodes, "expert_draw": expert_draw,
                         "expert_episode_ids": expert_ids, "expert_steps": len(data.expert),
                         "supplementary_steps": len(data.supplementary)}}
        if twins:
            base["trained_with"] = [o.run_key for o in specs if o is not s]
        atomic_write_json(d / CONFIG_FILE, base)
        bases.append(base)

    seed_everything(spec.seed)
    method = method_cls(task, data, config, spec.seed, device, spec.settings["num_steps"])
    if spec.settings.get("compile") and not compile_method(method):
        warn(f"note: --compile: {spec.method} has no compiled update; its updates run eagerly")
    checkpoint_path = directory / CHECKPOINT_FILE
    checkpoint = _load_checkpoint(checkpoint_path, warn)
    if checkpoint is not None and "curves" not in checkpoint:  # a checkpoint from before shared training
        checkpoint["curves"] = {task.name: checkpoint.pop("curve")}
    if checkpoint is not None and set(checkpoint["curves"]) != {t.name for t in tasks}:
        warn(f"warning: checkpoint {checkpoint_path} was trained for other tasks; restarting the run")
        checkpoint = None
    if checkpoint is not None and checkpoint.get("device", device.type) != device.type:
        # samplers' generator states differ in kind between CPU and CUDA (and so would the numbers)
        warn(f"warning: checkpoint {checkpoint_path} was trained on {checkpoint['device']}, this run is on "
             f"{device.type}; restarting the run")
        checkpoint = None
    bar = partial(progress_bar, disable=not options.show_progress, leave=False, dynamic_ncols=True,
                  position=options.progress_position)
    if checkpoint is not None:
        method.load_state_dict(checkpoint["method"])
        set_rng_states(checkpoint["rng"], device)
        step, curves, times = checkpoint["step"], checkpoint["curves"], checkpoint["times"]
        pretrain_metrics = checkpoint.get("pretrain_metrics", {})  # absent in checkpoints from before it was kept
    else:
        step, times = 0, {"pretrain": 0.0, "update": 0.0, "eval": 0.0}
        curves = {t.name: {"step": [], "score": [], "return": [],
                           **({"own_expert_pct": []} if base["reference_own_expert"] else {})}
                  for t, base in zip(tasks, bases)}
        start = time.perf_counter()
        pretrain_metrics = _scalars(method.pretrain(partial(bar, desc=f"{spec.method} pretrain")) or {})
        times["pretrain"] = time.perf_counter() - start

    def save() -> None:
        _save_checkpoint(checkpoint_path, {"method": method.state_dict(), "rng": rng_states(device), "step": step,
                                           "curves": curves, "times": times, "pretrain_metrics": pretrain_metrics,
                                           "device": device.type})

    def failed(message: str) -> list[dict]:
        logger.close()
        _copy_log(directories)
        results = [{**base, "status": "failed", "error": message, "failed_step": step, "curve": curves[t.name],
                    "phase_times_s": times, "finished_at": _now()} for base, t in zip(bases, tasks)]
        for d, result in zip(directories, results):
            atomic_write_json(d / RESULT_FILE, result)
        return results

    def run_evaluation() -> str | None:
        start = time.perf_counter()
        returns = evaluate_tasks(method.act, tasks, profile.eval_episodes, run_seed=spec.seed)
        times["eval"] += time.perf_counter() - start
        for t, base in zip(tasks, bases):
            mean_return = float(returns[t.name].mean())
            if not math.isfinite(mean_return):
                return f"evaluation returned a non-finite return at step {step}"
            curve = curves[t.name]
            curve["step"].append(step)
            curve["return"].append(mean_return)
            curve["score"].append(float(normalized_score(mean_return, base["reference"])))
            if "own_expert_pct" in curve:  # maze2d: the secondary scale, 100 = the data's own expert
                curve["own_expert_pct"].append(float(normalized_score(mean_return, base["reference_own_expert"])))
            suffix = "" if t is task else f"/{t.name}"
            logger.log(step, {f"eval/return{suffix}": mean_return, f"eval/score{suffix}": curve["score"][-1]})
        return None

    loggers = [CSVLogger(directory / LOG_FILE, resume_from_step=step if checkpoint else None)]
    if options.tensorboard:
        loggers.append(TensorBoardLogger(directory / "tb"))
    logger = MultiLogger(*loggers)
    try:
        if checkpoint is None:
            if pretrain_metrics:
                logger.log(0, {f"pretrain/{k}": v for k, v in pretrain_metrics.items()})
            if error := run_evaluation():  # the step-0 point of the learning curve
                return failed(error)
            save()
        num_steps = spec.settings["num_steps"]
        progress = bar(total=num_steps, initial=step, desc=f"{spec.method} {spec.task} s{spec.seed}")
        if spec.settings.get("compile"):
            times.setdefault("compile", 0.0)  # the compiled updates' one-off compilation, apart from "update"
        compiled_s = compile_seconds(method)  # what compiled before this loop (pretraining) stays there
        update_start = time.perf_counter()
        precision = update_precision(device, spec.settings.get("precision", DEFAULT_PRECISION))
        while step < num_steps:
            with precision:
                metrics = method.update(step)
            step += 1
            if options.stop_after_step is not None and step >= options.stop_after_step:
                raise SimulatedKill(f"simulated kill after step {step}")
            last = step == num_steps
            if step % profile.log_every == 0 or last:
                scalars = _scalars(metrics)  # the only host sync of the hot loop
                bad = [k for k, v in scalars.items() if not math.isfinite(v)]
                if bad:
                    return failed(f"update returned non-finite {', '.join(bad)} at step {step} "
                                  f"(scalars are checked every {profile.log_every} steps)")
                logger.log(step, scalars)
                progress.update(step - progress.n)
            if step % profile.eval_every == 0 or last:
                synchronize(device)
                elapsed, compiled_before = time.perf_counter() - update_start, compiled_s
                compiled_s = compile_seconds(method)
                times["update"] += elapsed - (compiled_s - compiled_before)
                if compiled_s > compiled_before:
                    times["compile"] = times.get("compile", 0.0) + compiled_s - compiled_before
                if error := run_evaluation():
                    return failed(error)
                save()
                update_start = time.perf_counter()
        progress.close()
        if bad := [t.name for t in tasks if not _strictly_increasing(curves[t.name]["step"])]:
            return failed(f"the learning curve of {', '.join(bad)} has repeated or unordered steps "
                          f"{curves[bad[0]]['step']}; not stored as done (a bug: please report it)")
    finally:
        logger.close()
    _copy_log(directories)

    artifacts = method.artifacts()
    if artifacts:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **artifacts)
        for d in directories:
            atomic_write_bytes(d / ARTIFACTS_FILE, buffer.getvalue())
    method_phases = {f"method/{k}": v for k, v in method.timer.seconds.items()}
    method_info = method.result_info()  # e.g. SRA's model errors and per-round coverage
    results = []
    for base, t, d in zip(bases, tasks, directories):
        curve = curves[t.name]
        best = int(np.argmax(curve["score"]))
        result = {**base, "status": "done", "error": None, "failed_step": None, "curve": curve,
                  "final_score": curve["score"][-1], "best_score": curve["score"][best],
                  "best_step": curve["step"][best], "wall_time_s": sum(times.values()),
                  **({"final_own_expert_pct": curve["own_expert_pct"][-1],
                      "best_own_expert_pct": max(curve["own_expert_pct"])} if "own_expert_pct" in curve else {}),
                  "phase_times_s": {**times, **method_phases},
                  "steps_per_s": num_steps / max(times["update"], 1e-9), "finished_at": _now()}
        if method_info:
            result["method_info"] = method_info
        if pretrain_metrics:
            result["pretrain_metrics"] = pretrain_metrics
        atomic_write_json(d / RESULT_FILE, result)
        results.append(result)
    checkpoint_path.unlink(missing_ok=True)
    return results


def _strictly_increasing(steps: list[int]) -> bool:
    return all(a < b for a, b in zip(steps, steps[1:]))


def _copy_log(directories: list[Path]) -> None:
    """Give each twin the shared training's log.csv (its eval/score/<task> rows are the twin's curve)."""
    source = directories[0] / LOG_FILE
    if source.exists():
        for d in directories[1:]:
            atomic_write_bytes(d / LOG_FILE, source.read_bytes())


def run_one_safely(spec: RunSpec, options: RunOptions, warn=print) -> dict:
    """``run_one`` that turns a crash inside method code into a failed result (see ``run_shared_safely``)."""
    return run_shared_safely([spec], options, warn)[0]


def run_shared_safely(specs: list[RunSpec], options: RunOptions, warn=print) -> list[dict]:
    """``run_shared``, turning a crash inside method code into failed results so the grid goes on.

    User-environment problems (BenchError: missing/corrupt data) write nothing, so a re-run retries."""
    try:
        return run_shared(specs, options, warn)
    except RunBusy as e:
        return busy_results(specs, str(e))
    except (BenchError, SimulatedKill, KeyboardInterrupt):
        raise
    except Exception as e:
        return write_crash_results(specs, options.root, f"{type(e).__name__}: {e}", traceback.format_exc())


def busy_results(specs: list[RunSpec], message: str) -> list[dict]:
    """Not-written results for runs another process is training (status "busy": neither done nor failed)."""
    return [{"run_key": spec.run_key, "method": spec.method, "variant": spec.variant, "task": spec.task,
             "seed": spec.seed, "profile": spec.profile, "status": "busy", "error": message} for spec in specs]


def write_crash_results(specs: list[RunSpec], root: Path, message: str, trace: str | None = None,
                        **extra: Any) -> list[dict]:
    """Failed results for runs whose method code raised (written atomically, the grid goes on)."""
    results = []
    for spec in specs:
        result = {"schema": RESULT_SCHEMA, "run_key": spec.run_key, "method": spec.method, "variant": spec.variant,
                  "task": spec.task, "seed": spec.seed, "profile": spec.profile, "config": spec.config,
                  "overrides": spec.overrides, "status": "failed", "error": message, "traceback": trace,
                  "failed_step": None, "finished_at": _now(), **extra}
        atomic_write_json(run_dir(root, spec.run_key) / RESULT_FILE, result)
        results.append(result)
    return results


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
