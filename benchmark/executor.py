"""Running a grid: skip what is done, resume what was interrupted, run the rest in parallel processes."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from tqdm.auto import tqdm

from benchmark.grid import RunSpec
from benchmark.logger import progress_bar
from benchmark.runner import RunOptions, default_workers, run_shared_safely
from benchmark.store import CHECKPOINT_FILE, load_result, run_dir
from envs.tasks import get_task


@dataclass
class GridSummary:
    done: list[dict] = field(default_factory=list)        # finished in this call
    skipped: list[dict] = field(default_factory=list)     # finished earlier
    failed: list[dict] = field(default_factory=list)      # failed in this call
    failed_earlier: list[dict] = field(default_factory=list)
    busy: list[dict] = field(default_factory=list)        # being trained by another process: skipped

    @property
    def results(self) -> list[dict]:
        return self.done + self.skipped + self.failed + self.failed_earlier


def plan(specs: list[RunSpec], options: RunOptions, force: bool = False, retry_failed: bool = False, warn=print):
    """Split specs into (todo, finished results); report how many todo runs resume from a checkpoint."""
    todo, finished = [], []
    for spec in {spec.run_key: spec for spec in specs}.values():  # a run listed twice runs once
        result = None if force else load_result(options.root, spec.run_key, warn)
        if result is not None and not (retry_failed and result["status"] == "failed"):
            finished.append(result)
            continue
        todo.append(spec)  # with force the job drops its checkpoint once it holds the run's lock
    return todo, finished


def share_training(todo: list[RunSpec], root) -> list[list[RunSpec]]:
    """Group runs that train identically (same method, config, seed and task ``training_key``: maze2d
    sparse and dense) into one job each. A member with a checkpoint leads, so an interrupted job resumes."""
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in todo:
        key = (spec.method, spec.seed, spec.config_hash, get_task(spec.task).training_key)
        groups.setdefault(key, []).append(spec)
    jobs = []
    for members in groups.values():
        members.sort(key=lambda s: not (run_dir(root, s.run_key) / CHECKPOINT_FILE).exists())
        jobs.append(members)
    return jobs


_position = None


def _init_worker(counter, lock, threads: int) -> None:
    global _position
    import torch
    torch.set_num_threads(threads)
    tqdm.set_lock(lock)
    with counter.get_lock():
        counter.value += 1
        _position = counter.value


def _run_in_worker(job: list[RunSpec], options: RunOptions) -> list[dict]:
    return run_shared_safely(job, replace(options, progress_position=_position or 0))


class Executor(Protocol):
    """Runs jobs (lists of twin RunSpecs that train once) and hands every result to ``record``."""
    name: str

    def parallelism(self) -> int: ...

    def run(self, jobs: list[list[RunSpec]], options: RunOptions, record: Callable[[list[dict]], None],
            warn=print) -> None: ...


@dataclass
class LocalExecutor:
    """A spawn-context process pool on this machine (1 worker: in-process). Threads per worker =
    cores // workers, unless ``RunOptions.threads`` says otherwise."""
    workers: int | None = None
    name: str = "local"

    def parallelism(self) -> int:
        return self.workers or default_workers()

    def run(self, jobs, options, record, warn=print) -> None:
        workers = min(self.parallelism(), len(jobs))
        if workers == 1:
            for job in jobs:
                record(run_shared_safely(job, replace(options, progress_position=1), warn))
            return
        threads = options.threads or max(1, default_workers() // workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(ctx.Value("i", 0), ctx.RLock(), threads)) as pool:
            pending = {pool.submit(_run_in_worker, job, options) for job in jobs}
            try:
                while pending:
                    finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished_now:
                        record(future.result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise


def plan_jobs(specs: list[RunSpec], options: RunOptions, force: bool = False, retry_failed: bool = False,
              warn=print) -> tuple[list[list[RunSpec]], GridSummary]:
    """What a grid call will do: the jobs to run and the results already there (no side effects but
    setting corrupt result files aside)."""
    summary = GridSummary()
    todo, finished = plan(specs, options, force, retry_failed, warn)
    for result in finished:
        (summary.skipped if result["status"] == "done" else summary.failed_earlier).append(result)
    jobs = share_training(todo, options.root) if options.share_training else [[spec] for spec in todo]
    return jobs, summary


def run_grid(specs: list[RunSpec], options: RunOptions, workers: int | None = None, force: bool = False,
             retry_failed: bool = False, warn=print, executor: Executor | None = None) -> GridSummary:
    """Run every spec not finished yet with ``executor`` (default: the local pool with ``workers``)."""
    executor = executor or LocalExecutor(workers)
    options = replace(options, redo_finished=force)
    jobs, summary = plan_jobs(specs, options, force, retry_failed, warn)
    todo = sum(len(job) for job in jobs)
    resumable = 0 if force else sum((run_dir(options.root, job[0].run_key) / CHECKPOINT_FILE).exists() for job in jobs)
    warn(f"{len(specs)} runs: {len(summary.skipped)} done earlier, {len(summary.failed_earlier)} failed earlier"
         f"{' (--retry-failed reruns them)' if summary.failed_earlier else ''}, {todo} to run"
         f"{f' ({resumable} resume from a checkpoint)' if resumable else ''}")
    if len(jobs) < todo:
        warn(f"sparse/dense twins train once: {todo} runs in {len(jobs)} trainings")
    if not jobs:
        return summary
    grid_bar = progress_bar(total=todo, desc=f"grid ({executor.name})", position=0, disable=not options.show_progress,
                    dynamic_ncols=True)

    def record(results: list[dict]) -> None:
        for result in results:
            status = result["status"]
            {"done": summary.done, "busy": summary.busy}.get(status, summary.failed).append(result)
            if status != "done":
                tqdm.write(f"run {result['run_key']} {'skipped' if status == 'busy' else 'failed'}: {result['error']}")
            grid_bar.update(1)

    try:
        executor.run(jobs, options, record, warn)
        return summary
    finally:
        grid_bar.close()
