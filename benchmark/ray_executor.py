"""The Ray executor: the same grid on a Ray cluster (or a local Ray), one Ray task per training job.

Where results are written (``results``):

- ``"shared"`` (default): workers write results, logs and checkpoints straight into the results
  directory, which must be the same path on every node (a shared filesystem; always true for a local
  Ray). A killed driver resumes like the local runner: finished runs are skipped, interrupted ones go
  on from their last checkpoint.
- ``"driver"``: workers train in a temporary directory and return the run directories' files to the
  driver, which writes them (atomically) into its results directory. For clusters without a shared
  filesystem; a run interrupted with its driver restarts from scratch (its checkpoints were on the worker).

A job whose method code raises, or whose worker dies, is retried up to ``max_retries`` times by Ray; then
its runs are written as failed and the grid goes on (``bench run --retry-failed`` tries them again).
Every node needs the package installed and the datasets under its ``MINARI_DATASETS_PATH``.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from benchmark.grid import RunSpec
from benchmark.locks import RunBusy
from benchmark.runner import RunOptions, busy_results, run_shared, write_crash_results
from benchmark.store import CHECKPOINT_FILE, RESULT_FILE, run_dir
from core.errors import BenchError
from core.io import atomic_write_bytes

RESULTS_MODES = ("shared", "driver")
ATTEMPTS_FILE = "attempts.log"  # shared mode: one line per Ray attempt (time, host), to spot flaky nodes
# Passed to the workers of a Ray this process starts itself (a cluster's nodes keep their own settings).
FORWARDED_ENV = ("MINARI_DATASETS_PATH", "BENCH_MODEL_CACHE")


def import_ray():
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray, an optional extra: pip install -e '.[ray]' "
                         "(or pip install 'ray[default]>=2.9')") from None
    return ray


def _ray_job(job: list[RunSpec], options: RunOptions, results_mode: str) -> dict:
    """Body of one Ray task: train the job; in driver mode also return the run directories' files."""
    import torch
    if options.threads:
        torch.set_num_threads(options.threads)
    if results_mode == "shared":
        line = f"{dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} {socket.gethostname()}\n"
        for spec in job:
            path = run_dir(options.root, spec.run_key) / ATTEMPTS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(line)
        try:
            return {"results": run_shared(job, options)}
        except RunBusy as e:
            return {"results": busy_results(job, str(e))}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        results = run_shared(job, replace(options, root=Path(tmp)))
        files = {spec.run_key: {p.name: p.read_bytes() for p in run_dir(Path(tmp), spec.run_key).iterdir()
                                if p.is_file() and p.name != CHECKPOINT_FILE} for spec in job}
    return {"results": results, "files": files}


@dataclass
class RayExecutor:
    address: str | None = None   # None: start a local Ray; "auto" or HOST:PORT: join that cluster
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0    # fractional GPUs share a card (e.g. 0.25: four runs per GPU)
    max_retries: int = 2
    results: str = "shared"      # see the module docstring
    name: str = "ray"

    def __post_init__(self) -> None:
        if self.results not in RESULTS_MODES:
            raise BenchError(f"unknown Ray results mode {self.results!r}; use one of {', '.join(RESULTS_MODES)}")
        if self.cpus_per_run <= 0 or self.gpus_per_run < 0 or self.max_retries < 0:
            raise BenchError("--cpus-per-run must be > 0, --gpus-per-run and --max-retries >= 0")

    def parallelism(self) -> int | None:
        """Concurrent runs on a local Ray (the cluster's size is unknown before connecting)."""
        return max(1, int((os.cpu_count() or 1) // self.cpus_per_run)) if self.address is None else None

    def _init(self, ray) -> bool:
        """Connect (or start a local Ray); True when this call started it and should shut it down."""
        if ray.is_initialized():
            return False
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if self.address is None:
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            kwargs["runtime_env"] = {"env_vars": env} if env else None
        try:
            ray.init(address=self.address, **kwargs)
        except ConnectionError as e:
            raise BenchError(f"cannot reach the Ray cluster at {self.address!r} ({e}); start one with "
                             f"`ray start --head` or drop --address to run a local Ray") from None
        return True

    def run(self, jobs: list[list[RunSpec]], options: RunOptions, record: Callable[[list[dict]], None],
            warn=print) -> None:
        ray = import_ray()
        started = self._init(ray)
        remote = ray.remote(_ray_job).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                              max_retries=self.max_retries, retry_exceptions=True)
        threads = options.threads or max(1, int(self.cpus_per_run))
        worker_options = replace(options, show_progress=False, threads=threads)
        job_of = {remote.remote(job, worker_options, self.results): job for job in jobs}
        pending = list(job_of)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                job = job_of[ready[0]]
                try:
                    payload = ray.get(ready[0])
                except ray.exceptions.RayError as e:  # raised (or the worker died) on every attempt
                    cause = getattr(e, "cause", None) or e
                    attempts = self.max_retries + 1
                    record(write_crash_results(job, options.root, f"{type(cause).__name__}: {cause} "
                                               f"(after {attempts} attempts on Ray)", str(e), attempts=attempts))
                    continue
                for run_key, files in payload.get("files", {}).items():
                    for name in sorted(files, key=lambda n: n == RESULT_FILE):  # the result last: it marks done
                        atomic_write_bytes(run_dir(options.root, run_key) / name, files[name])
                record(payload["results"])
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        finally:
            if started:
                ray.shutdown()
