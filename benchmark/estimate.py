"""What a grid will cost before it runs (``bench run --dry-run``).

A run costs pretraining + steps x seconds per update + evaluations x episodes x seconds per episode. The
rates come from earlier results in the results directory when there are any (the same method and task
family; pretraining only from the same profile, since its budget depends on the profile), otherwise
from a short calibration on this machine: a few seconds of updates on synthetic data of the task's
shape, and one timed evaluation episode. Calibration cannot see pretraining (SRA's and the model-based
methods' model training, OTIL's relabelling); the table says where it is missing.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.config import resolve_config
from benchmark.grid import RunSpec
from envs.tasks import get_task
from methods.base import synchronize
from methods.data import synthetic_data
from methods.learners import compile_method
from methods.registry import get_method

BARRIER_TIMEOUT_S = 300  # sharers wait this long for each other to build (GPU start-up included)


@dataclass
class Rates:
    update_s: float               # seconds per learner update
    pretrain_s: float | None      # None: unknown (calibration does not run pretraining)
    source: str


def evaluations(spec: RunSpec) -> int:
    steps, every = spec.settings["num_steps"], spec.settings["eval_every"]
    return steps // every + 1 + (steps % every != 0)  # the step-0 point, every `every` steps, the end


def rates_from_results(results: list[dict]) -> tuple[dict, dict, dict]:
    """Medians over finished runs: update s/step per (method, family, compiled), pretraining (and compilation)
    per (method, family, compiled, profile), evaluation s/episode per task."""
    update, pretrain, episode = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in results:
        phases, settings = r.get("phase_times_s") or {}, r.get("settings") or {}
        if r.get("status") != "done" or "update" not in phases or not settings.get("num_steps"):
            continue
        compiled = bool(settings.get("compile"))  # compiled and eager updates run at different rates
        update[(r["method"], r.get("family"), compiled)].append(phases["update"] / settings["num_steps"])
        # one-off costs of a run: pretraining and (compiled runs) compilation
        pretrain[(r["method"], r.get("family"), compiled, r["profile"])].append(
            phases.get("pretrain", 0.0) + phases.get("compile", 0.0))
        evals = len(r.get("curve", {}).get("step", [])) * settings.get("eval_episodes", 0)
        if evals:
            episode[r["task"]].append(phases.get("eval", 0.0) / evals)
    med = lambda table: {k: statistics.median(v) for k, v in table.items()}
    return med(update), med(pretrain), med(episode)


def build_for_timing(spec: RunSpec, device: str = "cpu"):
    """``spec``'s method with its config, on synthetic data of the task's shape, ready to ``update``: a method
    that needs its pretraining first gets it at the smoke budget (the learner's own settings are kept)."""
    task, cls = get_task(spec.task), get_method(spec.method)
    data = synthetic_data(task.obs_dim, task.act_dim, expert_episodes=5, supplementary_episodes=50, horizon=100)
    torch.manual_seed(0)
    steps = spec.settings["num_steps"]
    method = cls(task, data, resolve_config(cls, spec.config), 0, torch.device(device), steps)
    try:
        method.update(0)
    except Exception:  # the method needs its pretraining first: run it on the synthetic data
        method = cls(task, data, resolve_config(cls, cls.budgets.get("smoke", {}), spec.config), 0,
                     torch.device(device), steps)
        method.pretrain(partial(tqdm, disable=True))
    if spec.settings.get("compile"):  # as the runner does; the first updates compile (the warm-up, untimed)
        compile_method(method)
    return method


class Calibrator:
    """Times updates on ``device``. With ``share`` > 1, ``share`` copies of each method run at once, one per
    process of a pool started on first use and kept until ``close`` (runs that share one GPU), and a method's
    seconds per update is the mean over the copies: the rate each run gets while sharing."""

    def __init__(self, device: str = "cpu", share: int = 1, threads: int | None = None, seconds: float = 1.5):
        self.device, self.share, self.threads, self.seconds = device, share, threads, seconds
        self._stack: ExitStack | None = None

    def __enter__(self) -> "Calibrator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def updates(self, spec: RunSpec) -> float:
        if self.share <= 1:
            return _time_updates(spec, self.seconds, self.device, self.threads)
        if self._stack is None:
            ctx = mp.get_context("spawn")  # CUDA cannot be forked
            self._stack = ExitStack()
            self._barrier = self._stack.enter_context(ctx.Manager()).Barrier(self.share)
            self._pool = self._stack.enter_context(ProcessPoolExecutor(self.share, mp_context=ctx))
        futures = [self._pool.submit(_time_updates, spec, self.seconds, self.device, self.threads, self._barrier)
                   for _ in range(self.share)]
        errors = [f.exception() for f in futures]
        if any(errors):
            self._barrier.reset()  # a sharer that failed broke it for the others; the next method needs it whole
            failed = [e for e in errors if e]  # the cause, not the sharers it released through the barrier
            raise next((e for e in failed if not isinstance(e, threading.BrokenBarrierError)), failed[0])
        return statistics.mean(f.result() for f in futures)


def _time_updates(spec: RunSpec, seconds: float, device: str, threads: int | None = None, barrier=None) -> float:
    if threads:
        torch.set_num_threads(threads)
    try:
        method = build_for_timing(spec, device)
        for step in range(10):
            method.update(step)
        synchronize(device)
    except BaseException:
        if barrier is not None:
            barrier.abort()  # release the sharers waiting for this one at once
        raise
    if barrier is not None:  # every sharer has built and warmed up: time them together
        barrier.wait(BARRIER_TIMEOUT_S)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count < 5:
        method.update(10 + count)
        count += 1
        if count % 16 == 0:
            synchronize(device)  # keep the clock honest: queued GPU work counts
    synchronize(device)
    return (time.perf_counter() - start) / count


def calibrate_episode(task_name: str) -> float:
    """Seconds per evaluation episode of ``task_name`` under a random policy (batched lockstep, 2 episodes)."""
    from envs.evaluation import evaluate
    task, rng = get_task(task_name), np.random.default_rng(0)
    policy = lambda obs: rng.uniform(-1, 1, (len(obs), task.act_dim))
    evaluate(policy, task, 2)  # builds the envs
    start = time.perf_counter()
    evaluate(policy, task, 2)
    return (time.perf_counter() - start) / 2


@dataclass
class Estimate:
    rows: list[dict]              # per method: runs, todo, steps (a range where tasks differ), s/update, source, hours
    total_core_hours: float
    parallel: int | None
    notes: list[str]

    @property
    def wall_hours(self) -> float | None:
        return None if not self.parallel else self.total_core_hours / self.parallel


def estimate(specs: list[RunSpec], jobs: list[list[RunSpec]], results: list[dict], parallel: int | None,
             calibrate: bool = True, log=print, device: str = "cpu", share: int = 1,
             threads: int | None = None) -> Estimate:
    """Cost of running ``jobs`` (twins share one training) out of the grid ``specs``.

    Calibration runs on ``device``; ``share`` runs at a time share one GPU there (each calibrated while the
    others run), so a run's time is its time while sharing. ``threads``: a run's torch threads (default: as the
    local workers will run, cores // parallel)."""
    update, pretrain, episode = rates_from_results(results)
    threads_before = torch.get_num_threads()
    run_threads = threads or max(1, (os.cpu_count() or 1) // (parallel or 1))
    torch.set_num_threads(run_threads)
    rates: dict[tuple[str, str, bool], Rates] = {}
    notes: list[str] = []
    per_method: dict[str, dict] = {}
    for spec in specs:
        row = per_method.setdefault(spec.method, {"method": spec.method, "runs": 0, "todo": 0, "trainings": 0,
                                                  "steps": set(), "seconds": 0.0})
        row["runs"] += 1
        row["steps"].add(spec.settings["num_steps"])  # e.g. SRA: 200k on maze2d, 500k on locomotion
    with Calibrator(device, share, run_threads) as calibrator:
        for job in jobs:
            spec, task = job[0], get_task(job[0].task)
            key = (spec.method, task.family, bool(spec.settings.get("compile")))
            if key not in rates:
                if key in update:
                    known = pretrain.get((*key, spec.profile))
                    rates[key] = Rates(update[key], known, "earlier results" + ("" if known is not None else
                                                                                 ", pretraining unknown"))
                elif calibrate:
                    sharing = f", {share} at once on one GPU" if share > 1 else ""
                    log(f"calibrating {spec.method} on {task.family} ({device}{sharing}) ...")
                    try:
                        rates[key] = Rates(calibrator.updates(spec), None,
                                           f"calibration on {device}{sharing}, pretraining unknown")
                    except Exception as e:  # noqa: BLE001 - a method that cannot run here costs only its row
                        reason = f"{type(e).__name__}: {str(e).strip()}"[:80]
                        log(f"calibrating {spec.method} on {task.family} failed: {reason}")
                        rates[key] = Rates(float("nan"), None, f"calibration failed ({reason})")
                else:
                    rates[key] = Rates(float("nan"), None, "unknown")
            if spec.task not in episode:
                episode[spec.task] = calibrate_episode(spec.task) if calibrate else float("nan")
            r, row = rates[key], per_method[spec.method]
            seconds = ((r.pretrain_s or 0.0) + spec.settings["num_steps"] * r.update_s
                       + evaluations(spec) * spec.settings["eval_episodes"] * episode[spec.task])
            row["todo"] += len(job)
            row["trainings"] += 1
            row["seconds"] += seconds
            row["s_per_update"], row["source"] = r.update_s, r.source
    torch.set_num_threads(threads_before)
    rows = [{**row, "steps": "-".join(map(str, sorted({min(row["steps"]), max(row["steps"])}))),
             "hours": row["seconds"] / 3600} for row in per_method.values()]
    total = sum(row["seconds"] for row in rows if np.isfinite(row["seconds"])) / 3600
    if any(row.get("source", "").startswith("calibration failed") for row in rows):
        notes.append("calibration failed = that method cannot run here as configured; not counted in the total")
    if any(row.get("source", "").endswith("pretraining unknown") for row in rows):
        notes.append("pretraining unknown = not counted: a quick run of that method first lets the "
                     "estimate use its measured pretraining time")
    if any(spec.settings.get("compile") for spec in specs):
        notes.append("--compile: the calibrated rates are the compiled updates'; each run's one-off compilation "
                     "(~20 s per learner shape, a few s from torch.compile's cache) counts with pretraining")
    return Estimate(rows, total, parallel, notes)


def format_hours(hours: float) -> str:
    if not np.isfinite(hours):
        return "?"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
