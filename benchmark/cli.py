"""The ``bench`` command line: a thin layer over library functions (everything is scriptable from Python)."""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import click
import numpy as np

from envs import BenchError


class BenchGroup(click.Group):
    """Print user mistakes (BenchError) as one line, never as a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BenchError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=BenchGroup)
def main() -> None:
    """Offline imitation learning benchmark: SRA and its baselines on the same data, budgets and statistics."""


# ---------------------------------------------------------------------------------------------- listing
@main.command("tasks")
def tasks_cmd() -> None:
    """List the registered tasks and their aliases."""
    from envs.tasks import ALIASES, TASKS
    for task in TASKS.values():
        click.echo(f"{task.name:<24} {task.env_id:<26} horizon {task.max_episode_steps:<4} goal cell {task.goal_cell}")
    click.echo("\naliases: " + "; ".join(f"{a} = {','.join(t)}" for a, t in ALIASES.items()))


@main.command("methods")
def methods_cmd() -> None:
    """List the registered methods (in-tree and from the bench.methods entry-point group)."""
    from methods.registry import available
    for name, cls in available().items():
        click.echo(f"{name:<16} {cls.description}  [{cls.__module__}]")


@main.command("profiles")
def profiles_cmd() -> None:
    """List the budget profiles."""
    from benchmark.profiles import PROFILES
    for p in PROFILES.values():
        click.echo(f"{p.name:<7} {p.num_steps:>9,} steps, eval every {p.eval_every:,} x {p.eval_episodes} episodes, "
                   f"data '{p.data}' - {p.description}")


# ------------------------------------------------------------------------------------------------- data
@main.group("data")
def data_group() -> None:
    """Build and inspect datasets (Minari format, under $MINARI_DATASETS_PATH or ~/.minari/datasets)."""


def _groups(envs: str) -> list:
    """One task per dataset group (sparse and dense maze tasks share data)."""
    from envs.tasks import get_task, resolve_tasks
    seen, out = set(), []
    for name in resolve_tasks(envs):
        task = get_task(name)
        if task.group not in seen:
            seen.add(task.group)
            out.append(task)
    return out


@data_group.command("generate")
@click.option("--envs", default="maze2d", show_default=True, help="Tasks or aliases, comma-separated.")
@click.option("--profile", default=None, help="Data sizes of this profile (default: quick).")
@click.option("--seed", default=0, show_default=True, help="Generation seed (same seed = same data).")
@click.option("--force", is_flag=True, help="Rebuild datasets that already exist.")
def data_generate(envs: str, profile: str | None, seed: int, force: bool) -> None:
    """Generate datasets locally and deterministically (no network needed)."""
    from benchmark.profiles import DEFAULT_PROFILE, get_profile
    from envs.datasets import datasets_root, generate_maze_datasets
    from tqdm.auto import tqdm
    scale = get_profile(profile or DEFAULT_PROFILE).data
    click.echo(f"datasets root: {datasets_root()}")
    for task in _groups(envs):
        generate_maze_datasets(task, scale, seed=seed, force=force, progress_factory=tqdm, log=click.echo)


@data_group.command("list")
def data_list() -> None:
    """Show the bench datasets present locally."""
    from envs.datasets import datasets_root, list_datasets
    rows = list_datasets()
    click.echo(f"datasets root: {datasets_root()}")
    if not rows:
        click.echo("no bench datasets yet; build them with `bench data generate --envs maze2d`")
    for r in rows:
        click.echo(f"{r['id']:<46} {r['status']:<8} {r.get('episodes', '?'):>6} episodes {r.get('steps', '?'):>9} steps "
                   f"[{r.get('source', '?')}, {r.get('scale', '?')}]")


def ensure_datasets(task_names: list[str], scale: str, generate_missing: bool) -> None:
    """Fail before any run starts if data is missing, naming the command that builds it (or build it)."""
    from envs.datasets import KINDS, dataset_id, dataset_status, generate_maze_datasets
    from envs.tasks import get_task
    from tqdm.auto import tqdm
    missing = {}
    for name in task_names:
        task = get_task(name)
        bad = [dataset_id(task, k, scale) for k in KINDS if dataset_status(dataset_id(task, k, scale)) != "ok"]
        if bad:
            missing.setdefault(task.group, (task, bad))
    if not missing:
        return
    if generate_missing:
        for task, _ in missing.values():
            generate_maze_datasets(task, scale, progress_factory=tqdm, log=click.echo)
        return
    ids = [i for _, bad in missing.values() for i in bad]
    profile = "" if scale == "quick" else f" --profile {scale}"
    raise BenchError(f"missing or incomplete datasets: {', '.join(ids)}; build them with "
                     f"`bench data generate --envs {','.join(missing)}{profile}` (or pass --generate-missing)")


# -------------------------------------------------------------------------------------------------- run
@main.command("run")
@click.option("--methods", default=None, help="Methods, comma-separated (see `bench methods`). [default: bc-exp]")
@click.option("--envs", default=None, help="Tasks or aliases, comma-separated (see `bench tasks`). [default: maze2d]")
@click.option("--seeds", default=None, help="A count (4 = seeds 0-3) or a list (0,2). [default: 4]")
@click.option("--profile", default=None, help="Budget profile: smoke, quick, paper. [default: quick]")
@click.option("--set", "set_items", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Override a hyper-parameter (repeatable), e.g. --set bc-exp.lr=1e-3.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML/TOML grid file: methods, envs, seeds, profile, overrides. The CLI flags win.")
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False), help="Results directory.")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Parallel runs. [default: CPU cores]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Redo runs that are already finished.")
@click.option("--retry-failed", is_flag=True, help="Redo runs that failed earlier.")
@click.option("--generate-missing", is_flag=True, help="Build missing datasets instead of stopping.")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run_cmd(methods, envs, seeds, profile, set_items, config_file, out, workers, device, force, retry_failed,
            generate_missing, tensorboard, no_progress) -> None:
    """Run a grid of methods x tasks x seeds; re-running skips finished runs and resumes interrupted ones."""
    from benchmark.config import GridFile, load_grid_file, merge_overrides, parse_seeds, parse_set_options
    from benchmark.executor import run_grid
    from benchmark.grid import expand_grid
    from benchmark.profiles import DEFAULT_PROFILE, get_profile
    from benchmark.runner import RunOptions, resolve_device
    from envs.tasks import resolve_tasks
    from methods.registry import get_method

    grid = load_grid_file(config_file) if config_file else GridFile()
    method_names = _split(methods) if methods else (grid.methods or ["bc-exp"])
    for name in method_names:
        get_method(name)
    task_names = resolve_tasks(envs or grid.envs or "maze2d")
    seed_list = parse_seeds(seeds if seeds is not None else (grid.seeds if grid.seeds is not None else 4))
    chosen = get_profile(profile or grid.profile or DEFAULT_PROFILE)
    overrides = merge_overrides(grid.overrides, parse_set_options(list(set_items), method_names))
    specs = expand_grid(method_names, task_names, seed_list, chosen, overrides)
    resolve_device(device)
    ensure_datasets(task_names, chosen.data, generate_missing)

    options = RunOptions(root=Path(out), device=device, tensorboard=tensorboard, show_progress=not no_progress)
    summary = run_grid(specs, options, workers=workers, force=force, retry_failed=retry_failed, warn=click.echo)
    _print_scores(summary.results, chosen.name)
    if summary.failed:
        click.echo(f"{len(summary.failed)} run(s) failed; their errors are in their result.json files")
    click.echo(f"results in {out}/; next: bench report --results {out}")


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _print_scores(results: list[dict], profile: str) -> None:
    """Final normalized score per (variant, task): mean +- SE over the seeds of this grid."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in results:
        if r["status"] == "done":
            groups[(r["variant"], r["task"])].append(r["final_score"])
    if not groups:
        return
    click.echo(f"\nfinal normalized score ({profile} profile, mean +- SE over seeds):")
    for (variant, task), scores in sorted(groups.items()):
        se = np.std(scores, ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else float("nan")
        click.echo(f"  {variant:<20} {task:<24} {np.mean(scores):7.1f} +- {se:5.1f}  (n={len(scores)})")


# ----------------------------------------------------------------------------------------------- report
@main.command("report")
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default="report", show_default=True, type=click.Path(file_okay=False))
@click.option("--profile", default=None, help="Which profile's results (needed when several are present).")
@click.option("--reps", default=None, type=click.IntRange(min=100), help="Bootstrap repetitions for the CIs.")
def report_cmd(results: str, out: str, profile: str | None, reps: int | None) -> None:
    """Tables (Markdown, CSV, LaTeX), rliable statistics and an HTML page with plots."""
    from benchmark.report import BOOTSTRAP_REPS, ReportError, write_report
    try:
        summary = write_report(Path(results), Path(out), profile=profile, reps=reps or BOOTSTRAP_REPS,
                               progress=lambda message: click.echo(message, err=True))
    except ReportError as e:
        raise BenchError(str(e)) from None
    click.echo(summary.markdown)
    click.echo(f"\nwrote {', '.join(str(p) for p in summary.paths)}")


if __name__ == "__main__":
    main()
