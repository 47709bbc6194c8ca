"""The benchmark as Python functions: everything ``bench`` does, with the same defaults, callable from a notebook.

    from benchmark import api
    api.run(methods=["bc-exp", "uds"], envs="maze2d-umaze", profile="smoke", seeds=2, generate_missing=True)
    api.report(results="results", out="report")

The CLI (benchmark/cli.py) parses arguments into these calls and prints what they return. User mistakes raise
``BenchError`` with a one-line message. Messages go to the ``benchmark`` loggers: ``logging.basicConfig(level=
logging.INFO)`` shows them outside the CLI (warnings show without it).
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from benchmark.logger import progress_bar
from core.errors import BenchError

log = logging.getLogger(__name__)

DEFAULT_METHODS = ("bc-exp",)
DEFAULT_ENVS = "maze2d"
DEFAULT_SEEDS = 4
DEFAULT_RESULTS = "results"
DEFAULT_REPORT = "report"
MODEL_CACHE = "model-cache"  # under the results directory: trained models the grid's runs share

Names = str | Sequence[str]  # "bc-exp,uds" or ["bc-exp", "uds"]


def names(value: Names | None, what: str) -> list[str] | None:
    """The names of a comma-separated string or a sequence; None when not given. Given but empty is a mistake."""
    if value is None:
        return None
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:
        raise BenchError(f"{what} is empty; name at least one (see `bench {'tasks' if what == 'envs' else what}`) "
                         f"or leave it out for the default")
    return items


# ------------------------------------------------------------------------------------------------- data

def task_groups(envs: Names) -> list:
    """One task per dataset group (sparse and dense maze tasks share data)."""
    from envs.tasks import get_task, resolve_tasks
    seen, out = set(), []
    for name in resolve_tasks(envs if isinstance(envs, str) else list(envs)):
        task = get_task(name)
        if task.group not in seen:
            seen.add(task.group)
            out.append(task)
    return out


def _data_scale(profile: str | None) -> str:
    from benchmark.profiles import DEFAULT_PROFILE, get_profile
    return get_profile(profile or DEFAULT_PROFILE).data


def check_policies(groups: list, policies: str | Path | None) -> None:
    """Locomotion generation needs behaviour-policy files: name every missing one before building anything."""
    from envs.locomotion import missing_policies, missing_policies_message
    robots = [t.group for t in groups if t.family == "locomotion"]
    if missing := missing_policies(robots, policies):
        raise BenchError(missing_policies_message(sorted({p.name.rsplit("-", 1)[0] for p in missing},
                                                         key=robots.index), missing))


def generate_data(envs: Names = "maze2d", profile: str | None = None, seed: int = 0, force: bool = False,
                  policies: str | Path | None = None, maze_expert: str = "waypoint") -> list[str]:
    """Generate the tasks' datasets locally and deterministically (``profile``'s data sizes, default quick);
    returns the dataset ids written. ``policies``: the locomotion behaviour-policy directory."""
    from envs.datasets import generate_datasets
    from envs.storage import KINDS, dataset_id, dataset_status, datasets_root
    scale = _data_scale(profile)
    groups = task_groups(envs)
    check_policies([t for t in groups if force or any(dataset_status(dataset_id(t, k, scale)) != "ok" for k in KINDS)],
                   policies)
    log.info(f"datasets root: {datasets_root()}")
    return [ds for task in groups for ds in generate_datasets(
        task, scale, seed=seed, force=force, progress_factory=progress_bar, log=log.info, policies_dir=policies,
        maze_expert=maze_expert)]


def fetch_data(envs: Names = "locomotion", profile: str | None = None, force: bool = False) -> list[str]:
    """Download Minari's mujoco/<robot>/{expert,medium}-v0 (network) under ``profile``'s dataset ids."""
    from envs.storage import datasets_root
    from envs.external import check_online, fetch_locomotion
    scale = _data_scale(profile)
    groups = task_groups(envs)
    if bad := [t.group for t in groups if t.family != "locomotion"]:
        raise BenchError(f"bench data fetch covers the locomotion tasks; build {', '.join(bad)} with "
                         f"`bench data generate --envs {','.join(bad)}`")
    check_online([t.group for t in groups])  # offline: one line within seconds, naming every robot asked for
    log.info(f"datasets root: {datasets_root()}")
    return [ds for task in groups for ds in fetch_locomotion(task, scale, force=force, log=log.info)]


def import_data(file: str | Path, task: str, kind: str, profile: str | None = None, force: bool = False) -> str:
    """Import a D4RL file (HDF5, or the official SRA code's .npz) as ``task``'s ``kind`` dataset (expert |
    supplementary); returns its dataset id."""
    from envs.external import import_d4rl
    from envs.tasks import get_task
    return import_d4rl(file, get_task(task), kind, _data_scale(profile), force=force, log=log.info,
                       progress_factory=progress_bar)


def train_policies(envs: Names = "locomotion", steps: int = 1_000_000, seed: int = 0,
                   work_dir: str | Path = "policy-training", policies: str | Path | None = None,
                   start_steps: int = 10_000, eval_every: int = 10_000, threads: int = 1) -> list[Path]:
    """Train the locomotion behaviour policies with SAC (one run per robot; re-running resumes from
    ``work_dir``); returns the policy files written."""
    import torch
    from benchmark.policy_training import TrainConfig, train_policies as train
    torch.set_num_threads(threads)
    groups = task_groups(envs)
    if bad := [t.name for t in groups if t.family != "locomotion"]:
        raise BenchError(f"behaviour policies are trained for locomotion tasks only, not {', '.join(bad)}")
    config = TrainConfig(total_steps=steps, start_steps=start_steps, eval_every=eval_every)
    return [path for task in groups for path in train(task, config, work_dir, seed=seed, policies_dir=policies,
                                                       progress=progress_bar, log=log.info)]


def list_datasets() -> list[dict]:
    """The bench datasets present locally, each checked (status ok | partial | damaged, with ``problem``)."""
    from envs.storage import list_datasets as listing
    return listing()


def ensure_datasets(task_names: list[str], scale: str, generate_missing: bool = False) -> None:
    """Fail before any run starts if data is missing, naming the command that builds it (or build it)."""
    from envs.datasets import generate_datasets
    from envs.storage import KINDS, dataset_id, dataset_status
    from envs.tasks import get_task
    missing = {}
    for name in task_names:
        task = get_task(name)
        bad = [dataset_id(task, k, scale) for k in KINDS if dataset_status(dataset_id(task, k, scale)) != "ok"]
        if bad:
            missing.setdefault(task.group, (task, bad))
    if missing and not generate_missing:
        ids = [i for _, bad in missing.values() for i in bad]
        profile = "" if scale == "quick" else f" --profile {scale}"
        robots = [group for group, (task, _) in missing.items() if task.family == "locomotion"]
        other = (f"; locomotion data can also be fetched (`bench data fetch --envs {','.join(robots)}`, network) or "
                 f"imported (`bench data import FILE.hdf5 ...`)" if robots else "")
        raise BenchError(f"missing or incomplete datasets: {', '.join(ids)}; build them with "
                         f"`bench data generate --envs {','.join(missing)}{profile}` (or pass --generate-missing)"
                         f"{other}")
    if missing:
        check_policies([task for task, _ in missing.values()], None)
        for task, _ in missing.values():
            generate_datasets(task, scale, progress_factory=progress_bar, log=log.info)
    _check_contents(task_names, scale)


def _check_contents(task_names: list[str], scale: str) -> None:
    """Load (and so validate: envs/validate.py) every dataset the grid reads, once, before any run starts: a
    damaged one is refused here in one line, not in a worker after the other workers' trainings."""
    from envs.storage import KINDS, dataset_id, load_flat
    from envs.tasks import get_task
    seen = set()
    for name in task_names:
        task = get_task(name)
        for kind in KINDS:
            if (ds_id := dataset_id(task, kind, scale)) not in seen:
                seen.add(ds_id)
                load_flat(ds_id, task, scale)


# -------------------------------------------------------------------------------------------------- run

@dataclass
class Grid:
    """A grid resolved from the arguments, a grid file or a named grid, and the defaults."""
    specs: list  # benchmark.grid.RunSpec, method-major
    profile: Any  # benchmark.profiles.Profile
    methods: list[str]
    tasks: list[str]
    seeds: list[int]


def resolve_grid(methods: Names | None = None, envs: Names | None = None, seeds: int | str | list[int] | None = None,
                 profile: str | None = None, expert_draw: str | None = None, overrides: Sequence[str] = (),
                 config: str | Path | None = None, grid: str | None = None, precision: str | None = None,
                 compile: bool = False) -> Grid:
    """The runs of methods x tasks x seeds, every name and override validated. ``config`` (a YAML/TOML grid file)
    or ``grid`` (a named grid: paper-table1, paper-table4) supplies what the arguments leave out; the rest
    defaults to DEFAULT_METHODS on DEFAULT_ENVS, DEFAULT_SEEDS seeds, the quick profile and the first-5 D^E.
    ``overrides``: ``"METHOD.KEY=VALUE"`` strings, as ``bench run --set``; ``precision``: fp32 (default) or
    bf16 learner updates (benchmark/precision.py); ``compile``: learner updates as one compiled graph where the
    learner has that path (methods/compiled_step.py). Both enter the runs' settings and keys."""
    from benchmark.config import GridFile, load_grid_file, merge_overrides, parse_seeds, parse_set_options
    from benchmark.grid import DEFAULT_EXPERT_DRAW, expand_grid
    from benchmark.grids import named_grid
    from benchmark.precision import DEFAULT_PRECISION
    from benchmark.profiles import DEFAULT_PROFILE, get_profile
    from envs.tasks import resolve_tasks
    from methods.registry import get_method

    if config and grid:
        raise BenchError("--config and --grid both name a grid; pick one (flags like --methods still override it)")
    layer = load_grid_file(config) if config else GridFile()
    if grid:
        layer, notes = named_grid(grid)
        for note in notes:
            log.warning(note)
    method_names = names(methods, "methods") or layer.methods or list(DEFAULT_METHODS)
    for name in method_names:
        get_method(name)
    task_names = resolve_tasks(names(envs, "envs") or layer.envs or DEFAULT_ENVS)
    seed_list = parse_seeds(seeds if seeds is not None else (layer.seeds if layer.seeds is not None else DEFAULT_SEEDS))
    chosen = get_profile(profile or layer.profile or DEFAULT_PROFILE)
    merged = merge_overrides(layer.overrides, parse_set_options(list(overrides), method_names))
    specs = expand_grid(method_names, task_names, seed_list, chosen, merged, note=log.warning,
                        expert_draw=expert_draw or layer.expert_draw or DEFAULT_EXPERT_DRAW,
                        precision=precision or DEFAULT_PRECISION, compile=compile)
    return Grid(specs, chosen, *(list(dict.fromkeys(v)) for v in (method_names, task_names, seed_list)))


def make_executor(executor: str = "local", workers: int | None = None, address: str | None = None,
                  cpus_per_run: float = 1.0, gpus_per_run: float = 0.0, max_retries: int = 2,
                  ray_results: str = "shared", device: str = "auto", threads: int | None = None):
    """The executor of ``bench run --executor``, after checking the device here (unless a cluster runs it)."""
    from benchmark.executor import LocalExecutor
    from benchmark.runner import resolve_device
    if executor == "ray" and device.startswith("cuda") and not gpus_per_run:
        raise BenchError(f"--device {device} with --executor ray needs --gpus-per-run (e.g. 0.25: four runs share "
                         "a GPU); Ray hides the GPUs from tasks that ask for none")
    if not (executor == "ray" and address):  # on a cluster the workers' devices count, not the driver's
        resolve_device(device)
    if executor == "ray" and threads:
        raise BenchError("--threads applies to the local executor; on Ray a run's torch threads are its "
                         "--cpus-per-run")
    if executor == "ray":
        from benchmark.ray_executor import RayExecutor
        return RayExecutor(address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                           max_retries=max_retries, results=ray_results)
    if executor != "local":
        raise BenchError(f"unknown executor {executor!r}; executors: local, ray")
    given = [flag for flag, value in (("--address", address), ("--gpus-per-run", gpus_per_run),
                                      ("--ray-results", ray_results != "shared")) if value]
    if given:
        raise BenchError(f"{', '.join(given)} only apply to --executor ray")
    return LocalExecutor(workers)


def check_writable(path: str | Path, flag: str = "out") -> None:
    """Create ``path`` and write a probe file in it, or say in one line why that is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".bench-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BenchError(f"{flag} {path} is not writable ({e.strerror or type(e).__name__}); "
                         f"pass a directory you can write to") from None


@contextmanager
def env_default(name: str, value: str):
    """Set an environment variable (seen by the workers) for the block unless the user set it."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


@dataclass
class RunOutcome:
    grid: Grid
    summary: Any  # benchmark.executor.GridSummary: done, skipped, failed, failed_earlier, busy, results


@dataclass
class Plan:
    """What ``run`` would do (``bench run --dry-run``): the grid, what is done, and what the rest costs."""
    grid: Grid
    jobs: list  # lists of twin RunSpecs that train once
    summary: Any  # benchmark.executor.GridSummary of the results already there
    cost: Any  # benchmark.estimate.Estimate
    device: str  # where the cost was calibrated
    share: int  # runs sharing one GPU
    executor: str
    todo: int = field(init=False)

    def __post_init__(self) -> None:
        self.todo = sum(len(job) for job in self.jobs)


def run(methods: Names | None = None, envs: Names | None = None, seeds: int | str | list[int] | None = None,
        profile: str | None = None, expert_draw: str | None = None, overrides: Sequence[str] = (),
        config: str | Path | None = None, grid: str | None = None, out: str | Path = DEFAULT_RESULTS,
        executor: str = "local", workers: int | None = None, address: str | None = None, cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0, max_retries: int = 2, ray_results: str = "shared", device: str = "auto",
        force: bool = False, retry_failed: bool = False, generate_missing: bool = False, tensorboard: bool = False,
        progress: bool = True, shared_training: bool = True, precision: str | None = None,
        threads: int | None = None, compile: bool = False) -> RunOutcome:
    """Run a grid of methods x tasks x seeds into ``out`` (see ``resolve_grid`` for the grid's arguments and
    ``make_executor`` for the executor's); finished runs are skipped, interrupted ones resume. Trained dynamics
    models are shared by the grid's runs through ``out/model-cache`` unless $BENCH_MODEL_CACHE says otherwise
    (empty: no cache). A failed run does not raise: it is in the outcome's ``summary.failed``. ``threads``: torch
    threads per run on the local executor (default: cores // workers)."""
    from benchmark.executor import run_grid
    resolved = resolve_grid(methods, envs, seeds, profile, expert_draw, overrides, config, grid, precision, compile)
    if precision == "bf16" and executor == "local":
        from benchmark.precision import BF16_CPU_FLAGS, bf16_native
        from benchmark.runner import resolve_device
        if resolve_device(device).type == "cpu" and not bf16_native("cpu"):
            log.warning(f"--precision bf16 on a CPU without bf16 matmul units ({' or '.join(BF16_CPU_FLAGS)}): "
                        "bf16 is slower than fp32 here")
    runner = make_executor(executor, workers, address, cpus_per_run, gpus_per_run, max_retries, ray_results, device,
                           threads)
    options = _run_options(out, device, tensorboard, progress, shared_training, threads)
    check_writable(out, "--out")  # before any data is built or run trained
    ensure_datasets(resolved.tasks, resolved.profile.data, generate_missing)
    with env_default("BENCH_MODEL_CACHE", str(Path(out).resolve() / MODEL_CACHE)):  # methods/model_cache.py
        summary = run_grid(resolved.specs, options, force=force, retry_failed=retry_failed, warn=log.info,
                           executor=runner)
    return RunOutcome(resolved, summary)


def _run_options(out, device: str, tensorboard: bool, progress: bool, shared_training: bool,
                 threads: int | None = None):
    from benchmark.runner import RunOptions
    return RunOptions(root=Path(out), device=device, threads=threads, tensorboard=tensorboard,
                      show_progress=progress, share_training=shared_training)


def plan(methods: Names | None = None, envs: Names | None = None, seeds: int | str | list[int] | None = None,
         profile: str | None = None, expert_draw: str | None = None, overrides: Sequence[str] = (),
         config: str | Path | None = None, grid: str | None = None, out: str | Path = DEFAULT_RESULTS,
         executor: str = "local", workers: int | None = None, address: str | None = None, cpus_per_run: float = 1.0,
         gpus_per_run: float = 0.0, max_retries: int = 2, ray_results: str = "shared", device: str = "auto",
         force: bool = False, retry_failed: bool = False, shared_training: bool = True,
         precision: str | None = None, threads: int | None = None, compile: bool = False) -> Plan:
    """What ``run`` with these arguments would do and cost (calibrated here); runs nothing."""
    from benchmark.estimate import estimate
    from benchmark.executor import plan_jobs
    from benchmark.store import iter_results
    resolved = resolve_grid(methods, envs, seeds, profile, expert_draw, overrides, config, grid, precision, compile)
    runner = make_executor(executor, workers, address, cpus_per_run, gpus_per_run, max_retries, ray_results, device,
                           threads)
    options = _run_options(out, device, False, False, shared_training, threads)
    jobs, summary = plan_jobs(resolved.specs, options, force, retry_failed, warn=log.info)
    known = list(iter_results(options.root, warn=log.info)) if Path(out).exists() else []
    where, share, parallel = calibration_device(device, runner)
    cost = estimate(resolved.specs, jobs, known, parallel, log=logging.getLogger("benchmark.estimate").info,
                    device=where, share=share, threads=threads)
    return Plan(resolved, jobs, summary, cost, where, share, runner.name)


def calibration_device(name: str, runner) -> tuple[str, int, int | None]:
    """Where the dry run calibrates, how many runs share one GPU, and how many run at once.

    On a GPU the local executor's workers all share it; Ray packs 1 / --gpus-per-run runs on each GPU."""
    import torch

    from benchmark.runner import resolve_device
    parallel = runner.parallelism()
    try:
        device = resolve_device(name)
    except BenchError:  # a cluster's device this machine lacks: calibrate here on the CPU
        log.warning(f"note: no {name} here; calibrating on the CPU")
        return "cpu", 1, parallel
    if device.type != "cuda":
        return "cpu", 1, parallel
    gpus_per_run = getattr(runner, "gpus_per_run", 0) or 0
    share = max(1, round(1 / gpus_per_run)) if gpus_per_run else (parallel or 1)
    if gpus_per_run and parallel:  # a local Ray: the GPUs bound the runs at a time, not only the CPUs
        parallel = min(parallel, share * torch.cuda.device_count())
    return str(device), share, parallel


# ----------------------------------------------------------------------------------------------- report

def report(results: str | Path | Sequence[str | Path] = DEFAULT_RESULTS, out: str | Path = DEFAULT_REPORT,
           profile: str | None = None, methods: Names | None = None, reps: int | None = None, seed: int = 0):
    """Write the report (Markdown, HTML, LaTeX, CSVs, plots) of one or more results directories into ``out``;
    returns its ``benchmark.report.ReportSummary``. ``methods`` keeps only those variants; ``reps``: bootstrap
    repetitions (default ``benchmark.report.BOOTSTRAP_REPS``); ``profile`` is needed when several are present."""
    from benchmark.report import BOOTSTRAP_REPS, write_report
    variants = names(methods, "methods")
    check_writable(out, "--out")
    return write_report(_results_dirs(results), Path(out), profile=profile, reps=reps or BOOTSTRAP_REPS, seed=seed,
                        variants=variants)


def report_table(table: str, results: str | Path | Sequence[str | Path] = DEFAULT_RESULTS,
                 profile: str | None = None) -> str:
    """One table of the paper from the results, as Markdown (``paper-table4``: W/T/L of SRA+X over UDS+X)."""
    from benchmark.report import table_markdown
    return table_markdown(table, _results_dirs(results), profile)


def _results_dirs(results) -> list[Path]:
    return [Path(results)] if isinstance(results, (str, Path)) else [Path(r) for r in results]


# ------------------------------------------------------------------------------------------------- plot

def plot_augmentation(task: str, run: str | Path, out: str | Path | None = None) -> tuple[Path, Path, int]:
    """SRA's augmented states after successive rounds over the maze layout, from an SRA run directory (or a
    results directory holding SRA runs of ``task``); returns (PNG path, run directory, rounds drawn)."""
    import numpy as np

    from benchmark.plots import augmentation_rounds, save
    from benchmark.store import ARTIFACTS_FILE, read_result
    from envs.tasks import get_task
    spec = get_task(task)
    if spec.family != "maze2d":
        raise BenchError(f"augmentation plots are drawn over a maze layout; {task} is not a maze2d task")
    root = Path(run)
    found = [root] if (root / ARTIFACTS_FILE).exists() else sorted(
        p.parent for p in root.glob(f"runs/sra*/{task}/*/{ARTIFACTS_FILE}"))
    if not found:
        raise BenchError(f"no SRA augmentation data ({ARTIFACTS_FILE}) under {root} for {task}; run "
                         f"`bench run --methods sra --envs {task}` first")
    run_dir = found[0]
    result = read_result(run_dir / "result.json")
    if result["task"] != task:
        raise BenchError(f"{run_dir} is a run of {result['task']}, not {task}")
    arrays = np.load(run_dir / ARTIFACTS_FILE)
    rounds = [arrays[f"round_{i}"] for i in range(sum(k.startswith("round_") for k in arrays.files))]
    goals = [arrays[f"goals_{i}"] for i in range(len(rounds)) if f"goals_{i}" in arrays.files]
    walls = spec.maze.walls  # the layout every maze2d task carries; no env needed
    fig = augmentation_rounds(walls, rounds, title=f"{result['variant']} on {task}, seed {result['seed']}",
                              goals=goals or None, coverage=result.get("method_info", {}).get("rounds"))
    target = (Path(out) if out else run_dir / "augmentation.png").with_suffix("")
    save(fig, target)
    return target.with_suffix(".png"), run_dir, len(rounds)
