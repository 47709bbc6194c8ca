"""The ``bench`` command line: argument parsing, printing and exit codes over ``benchmark.api`` (which a notebook
calls with the same defaults)."""
from __future__ import annotations

import inspect
import logging
import sys
from collections import defaultdict

import click
import numpy as np

from benchmark import api
from benchmark.precision import DEFAULT_PRECISION, PRECISIONS
from core.errors import BenchError


EXIT_USAGE = 2        # a user mistake (one line on stderr); click's own usage errors use 2 too
EXIT_RUNS_FAILED = 3  # `bench run`: the grid finished, but at least one run failed (see its result.json)
_calibration_device = api.calibration_device  # its name before benchmark.api (tests/benchmark/test_scale_out.py)


def _default(func, name: str):
    """A parameter's default in the API's signature: the CLI's defaults are the API's."""
    return inspect.signature(func).parameters[name].default


class EchoHandler(logging.Handler):
    """The library's log messages as plain lines: info on stdout, warnings on stderr; the report's and the
    cost estimate's messages on stderr too, beside their results on stdout."""
    STDERR_LOGGERS = ("benchmark.report", "benchmark.estimate")

    def emit(self, record: logging.LogRecord) -> None:
        err = record.levelno >= logging.WARNING or record.name.startswith(self.STDERR_LOGGERS)
        click.echo(self.format(record), err=err)


def show_logs() -> None:
    """Route the ``benchmark`` loggers' INFO and above to the terminal (once per process)."""
    logger = logging.getLogger("benchmark")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, EchoHandler) for h in logger.handlers):
        logger.addHandler(EchoHandler())


class BenchGroup(click.Group):
    """Print user mistakes (BenchError) as one line, never as a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BenchError as e:
            click.echo(f"Error: {e}", err=True)  # the prefix of click's own usage errors
            sys.exit(EXIT_USAGE)


@click.group(cls=BenchGroup)
def main() -> None:
    """Offline imitation learning benchmark: SRA and its baselines on the same data, budgets and statistics."""
    show_logs()
# ---------------------------------------------------------------------------------------------- listing
@main.command("tasks")
def tasks_cmd() -> None:
    """List the registered tasks and their aliases."""
    from envs.tasks import ALIASES, TASKS
    for task in TASKS.values():
        what = (f"goal cell {task.goal_cell}" if task.family == "maze2d" else
                f"D^S {task.supplementary_dataset}, D4RL reference {task.reference[0]:g} / {task.reference[1]:g}")
        click.echo(f"{task.name:<24} {task.env_id:<26} horizon {task.max_episode_steps:<4} {what}")
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


@data_group.command("generate")
@click.option("--envs", default=_default(api.generate_data, "envs"), show_default=True,
              help="Tasks or aliases, comma-separated.")
@click.option("--profile", default=None, help="Data sizes of this profile (default: quick).")
@click.option("--seed", default=_default(api.generate_data, "seed"), show_default=True,
              help="Generation seed (same seed = same data).")
@click.option("--force", is_flag=True, help="Rebuild datasets that already exist.")
@click.option("--policies", default=None, type=click.Path(file_okay=False),
              help="Locomotion behaviour-policy directory. [default: $BENCH_POLICIES_DIR or envs/policies]")
@click.option("--maze-expert", type=click.Choice(["waypoint", "planner"]),
              default=_default(api.generate_data, "maze_expert"), show_default=True,
              help="maze2d expert: D4RL's waypoint controller (as the paper's data) or the faster grid planner.")
def data_generate(envs: str, profile: str | None, seed: int, force: bool, policies: str | None,
                  maze_expert: str) -> None:
    """Generate datasets locally and deterministically (no network needed)."""
    api.generate_data(envs, profile, seed=seed, force=force, policies=policies, maze_expert=maze_expert)


@data_group.command("fetch")
@click.option("--envs", default=_default(api.fetch_data, "envs"), show_default=True,
              help="Locomotion tasks or aliases, comma-separated.")
@click.option("--profile", default=None,
              help="Store under this profile's dataset ids (default: quick); remote data keep their full size.")
@click.option("--force", is_flag=True, help="Replace datasets that already exist.")
def data_fetch(envs: str, profile: str | None, force: bool) -> None:
    """Download Minari's mujoco/<robot>/{expert,medium}-v0 (needs network; offline it fails in seconds)."""
    api.fetch_data(envs, profile, force=force)


@data_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--task", "task_name", required=True,
              help="The task the file is for, e.g. hopper-medium or maze2d-umaze-sparse.")
@click.option("--kind", type=click.Choice(["expert", "supplementary"]), required=True,
              help="expert: D^E's dataset (the first 5 episodes are used); supplementary: D^S's "
                   "(locomotion: medium or medium-expert).")
@click.option("--profile", default=None, help="Store under this profile's dataset ids (default: quick).")
@click.option("--force", is_flag=True, help="Replace a dataset that already exists.")
def data_import(file: str, task_name: str, kind: str, profile: str | None, force: bool) -> None:
    """Import a D4RL file: HDF5 as D4RL ships them, or the official SRA code's .npz (observations, actions, rewards,
    terminals, timeouts[, next_observations]).

    Locomotion rows are taken as they are. Maze2d files hold (x, y, vx, vy) rows in D4RL's frame for the
    task's maze: they are converted to Gymnasium's frame, their first episodes replayed in the env (a file
    that diverges is refused) and their rewards recomputed with D4RL's geometry; an expert import also
    measures the map's reference returns."""
    api.import_data(file, task_name, kind, profile, force=force)


@data_group.command("train-policies")
@click.option("--envs", default=_default(api.train_policies, "envs"), show_default=True,
              help="Locomotion tasks or aliases (one run per robot).")
@click.option("--steps", default=_default(api.train_policies, "steps"), show_default=True,
              type=click.IntRange(min=1), help="SAC environment steps per robot (one update each).")
@click.option("--seed", default=_default(api.train_policies, "seed"), show_default=True)
@click.option("--work-dir", default=_default(api.train_policies, "work_dir"), show_default=True,
              type=click.Path(file_okay=False), help="Checkpoints (re-running the same command resumes from them).")
@click.option("--policies", default=None, type=click.Path(file_okay=False),
              help="Where the policy files go. [default: $BENCH_POLICIES_DIR or envs/policies]")
@click.option("--start-steps", default=_default(api.train_policies, "start_steps"), show_default=True,
              type=click.IntRange(min=0), help="Uniform-random steps before SAC acts and updates.")
@click.option("--eval-every", default=_default(api.train_policies, "eval_every"), show_default=True,
              type=click.IntRange(min=1), help="Evaluate (10 episodes) and keep a snapshot every this many steps.")
@click.option("--threads", default=_default(api.train_policies, "threads"), show_default=True,
              type=click.IntRange(min=1), help="Torch threads.")
def data_train_policies(envs: str, steps: int, seed: int, work_dir: str, policies: str | None, start_steps: int,
                        eval_every: int, threads: int) -> None:
    """Train the locomotion behaviour policies (SAC; about 1.5-3 h per robot for 1M steps on a 2-core CPU)."""
    api.train_policies(envs, steps, seed, work_dir, policies, start_steps, eval_every, threads)


@data_group.command("list")
def data_list() -> None:
    """Show the bench datasets present locally, checking each one's content (damaged ones say why)."""
    from envs.storage import datasets_root
    rows = api.list_datasets()
    click.echo(f"datasets root: {datasets_root()}")
    if not rows:
        click.echo("no bench datasets yet; build them with `bench data generate --envs maze2d`")
    for r in rows:
        click.echo(f"{r['id']:<46} {r['status']:<8} {r.get('episodes', '?'):>6} episodes {r.get('steps', '?'):>9} steps "
                   f"[{r.get('source', '?')}, {r.get('scale', '?')}]")
        if "problem" in r:
            click.echo(f"  {r['problem']}")
    if damaged := [r["id"] for r in rows if r["status"] != "ok"]:
        click.echo(f"{len(damaged)} dataset(s) unusable; rebuild them as the line under each says "
                   f"(partial: an interrupted generation, rebuild with --force)")


# -------------------------------------------------------------------------------------------------- run
@main.command("run")
@click.option("--methods", default=None,
              help=f"Methods, comma-separated (see `bench methods`). [default: {','.join(api.DEFAULT_METHODS)}]")
@click.option("--envs", default=None,
              help=f"Tasks or aliases, comma-separated (see `bench tasks`). [default: {api.DEFAULT_ENVS}]")
@click.option("--seeds", default=None, help=f"A count (4 = seeds 0-3) or a list (0,2). [default: {api.DEFAULT_SEEDS}]")
@click.option("--profile", default=None, help="Budget profile: smoke, quick, paper. [default: quick]")
@click.option("--expert-draw", default=None,
              help="Which expert episodes form D^E: first (the first 5, the paper's protocol) or seeded (5 distinct "
                   "episodes drawn per seed). Non-default draws get their own run keys. [default: first]")
@click.option("--set", "set_items", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Override a hyper-parameter (repeatable), e.g. --set bc-exp.lr=1e-3.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML/TOML grid file: methods, envs, seeds, profile, expert_draw, overrides. The CLI flags win.")
@click.option("--grid", "grid_name", default=None,
              help="A named grid: paper-table1, paper-table4 (the paper's experiments). The CLI flags win.")
@click.option("--out", default=_default(api.run, "out"), show_default=True, type=click.Path(file_okay=False),
              help="Results directory.")
@click.option("--dry-run", is_flag=True, help="Print the grid, what is done and the estimated cost; run nothing.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=_default(api.run, "executor"),
              show_default=True,
              help="local: a process pool on this machine; ray: Ray tasks (pip install -e '.[ray]').")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Parallel runs (local). [default: CPU cores]")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Torch threads per run (local), e.g. 1 beside other work: more threads than free cores "
                   "slow every run down several times. [default: cores / workers]")
@click.option("--address", default=None, help="Ray: 'auto' or HOST:PORT of a running cluster. [default: a local Ray]")
@click.option("--cpus-per-run", default=_default(api.run, "cpus_per_run"), show_default=True,
              type=click.FloatRange(min=0.01), help="Ray: CPUs reserved per run (also its torch threads).")
@click.option("--gpus-per-run", default=_default(api.run, "gpus_per_run"), show_default=True,
              type=click.FloatRange(min=0),
              help="Ray: GPUs per run, fractional to share a card (0.25 = four runs per GPU).")
@click.option("--max-retries", default=_default(api.run, "max_retries"), show_default=True, type=click.IntRange(min=0),
              help="Ray: retries of a run that raised or lost its worker, before it is marked failed.")
@click.option("--ray-results", type=click.Choice(["shared", "driver"]), default=_default(api.run, "ray_results"),
              show_default=True,
              help="Ray: workers write into --out (a shared filesystem), or return files for the driver to write.")
@click.option("--device", default=_default(api.run, "device"), show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--force", is_flag=True, help="Redo runs that are already finished.")
@click.option("--retry-failed", is_flag=True, help="Redo runs that failed earlier.")
@click.option("--generate-missing", is_flag=True, help="Build missing datasets instead of stopping.")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default=DEFAULT_PRECISION, show_default=True,
              help="bf16: learner updates under bf16 autocast, opt-in (fast only on bf16 matmul hardware: AMX, "
                   "recent GPUs); its runs are separate runs.")
@click.option("--compile", "compile_", is_flag=True,
              help="Learner updates as one torch.compile'd graph where the learner has that path (IQL: SRA, UDS, "
                   "OTIL, ROMI; SAC-N: CLARE, MILO, sra-sacn, uds-sacn; AWAC and TD3+BC: the sra-/uds- variants; "
                   "DemoDICE's own update; BC-exp and DWBC run eagerly); runs ~1.3x faster on the CPU measured "
                   "(docs/performance.md), the same maths to float rounding; compiles once per run (seconds); its "
                   "runs are separate runs.")
@click.option("--no-shared-training", is_flag=True,
              help="Train maze2d sparse and dense runs separately (by default each pair trains once: same data, "
                   "same dynamics, only the evaluation reward differs).")
def run_cmd(methods, envs, seeds, profile, expert_draw, set_items, config_file, grid_name, out, dry_run, executor,
            workers, threads, address, cpus_per_run, gpus_per_run, max_retries, ray_results, device, force,
            retry_failed, generate_missing, tensorboard, no_progress, precision, compile_, no_shared_training) -> None:
    """Run a grid of methods x tasks x seeds; re-running skips finished runs and resumes interrupted ones.

    Exit status: 0 every run done; 2 a usage error (nothing run); 3 the grid finished but a run failed."""
    grid = dict(methods=_given("--methods", methods), envs=_given("--envs", envs), seeds=seeds, profile=profile,
                expert_draw=expert_draw, overrides=set_items, config=config_file, grid=grid_name, out=out,
                executor=executor, workers=workers, address=address, cpus_per_run=cpus_per_run,
                gpus_per_run=gpus_per_run, max_retries=max_retries, ray_results=ray_results, device=device,
                force=force, retry_failed=retry_failed, shared_training=not no_shared_training, precision=precision,
                threads=threads, compile=compile_)
    if compile_ and _onednn_linear_on():
        click.echo("note: --compile: compiled updates run their matmuls on PyTorch's stock path, not on the "
                   "oneDNN path the eager updates take on this CPU (methods/nets.py), which can be the faster one; "
                   "compare `bench perf` with `bench perf --compile` here first (docs/performance.md)", err=True)
    if dry_run:
        _print_plan(api.plan(**grid))
        return
    outcome = api.run(**grid, generate_missing=generate_missing, tensorboard=tensorboard, progress=not no_progress)
    summary = outcome.summary
    _print_scores(summary.results, outcome.grid.profile.name)
    for result in summary.busy:
        click.echo(f"skipped {result['run_key']}: {result['error']}")
    click.echo(f"results in {out}/; next: bench report --results {out}")
    if summary.failed:
        click.echo(f"{len(summary.failed)} run(s) failed; their errors are in their result.json files "
                   f"(exit code {EXIT_RUNS_FAILED})", err=True)
        sys.exit(EXIT_RUNS_FAILED)


def _onednn_linear_on() -> bool:
    from methods import nets
    return nets.ONEDNN_LINEAR


def _print_plan(plan: api.Plan) -> None:
    """The expanded grid, what is already done, and what the rest will cost."""
    from benchmark.estimate import format_hours
    grid, summary, cost = plan.grid, plan.summary, plan.cost
    click.echo(f"grid: {len(grid.specs)} runs = {len(grid.methods)} methods x {len(grid.tasks)} tasks x "
               f"{len(grid.seeds)} seeds, profile {grid.profile.name}; {len(summary.skipped)} done, "
               f"{len(summary.failed_earlier)} failed earlier, {plan.todo} to run in {len(plan.jobs)} trainings")
    click.echo(f"\n{'method':<12} {'runs':>5} {'to run':>6} {'trainings':>9} {'steps/run':>13} {'ms/update':>9} "
               f"{'run-hours':>10} {'wall':>9}  rates from")
    for row in cost.rows:
        ms = f"{row['s_per_update'] * 1e3:.2f}" if "s_per_update" in row else "-"
        wall = format_hours(row["hours"] / cost.parallel) if cost.parallel else "-"
        click.echo(f"{row['method']:<12} {row['runs']:>5} {row['todo']:>6} {row['trainings']:>9} {row['steps']:>13} "
                   f"{ms:>9} {row['hours']:>10.2f} {wall:>9}  {row.get('source', '-')}")
    click.echo(f"\ntotal: {format_hours(cost.total_core_hours)} of single-run time on this machine ({plan.device})")
    if cost.wall_hours is not None:
        where = f", {plan.share} sharing each GPU" if plan.share > 1 else ""
        click.echo(f"with {cost.parallel} runs at a time ({plan.executor} executor{where}): about "
                   f"{format_hours(cost.wall_hours)} wall time")
    else:
        click.echo("divide by the number of runs your cluster holds at once for the wall time")
    for note in cost.notes:
        click.echo(f"note: {note}")


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _given(flag: str, value: str | None) -> list[str] | None:
    """The comma-separated names of a flag; None when it was not given. Given but empty is a mistake
    (``--methods ""`` from an unset shell variable), not a request for the defaults."""
    if value is None:
        return None
    if not (names := _split(value)):
        listing = "bench tasks" if flag == "--envs" else "bench methods"
        raise BenchError(f"{flag} is empty; name at least one (see `{listing}`) or leave the flag out for the default")
    return names


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


# ------------------------------------------------------------------------------------------------- plot
@main.group("plot")
def plot_group() -> None:
    """Figures that need more than the report (e.g. SRA's augmented states)."""


@plot_group.command("augmentation")
@click.option("--task", required=True, help="A maze2d task, e.g. maze2d-medium-sparse.")
@click.option("--run", "run_path", required=True, type=click.Path(file_okay=False),
              help="An SRA run directory, or a results directory holding SRA runs of the task.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="PNG path [default: RUN/augmentation.png].")
def plot_augmentation(task: str, run_path: str, out: str | None) -> None:
    """SRA's augmented states after successive rounds, over the maze layout."""
    png, run_dir, rounds = api.plot_augmentation(task, run_path, out)
    click.echo(f"wrote {png} and .svg ({rounds} rounds from {run_dir})")


# ----------------------------------------------------------------------------------------------- report
@main.command("report")
@click.option("--results", "results", multiple=True, default=[_default(api.report, "results")], show_default=True,
              type=click.Path(file_okay=False),
              help="Results directory; repeat to combine grids (e.g. new methods beside bc-exp from an earlier run).")
@click.option("--out", default=_default(api.report, "out"), show_default=True, type=click.Path(file_okay=False))
@click.option("--profile", default=None, help="Which profile's results (needed when several are present).")
@click.option("--methods", default=None, help="Only these method variants, comma-separated (default: all found).")
@click.option("--reps", default=None, type=click.IntRange(min=100), help="Bootstrap repetitions for the CIs.")
@click.option("--table", default=None, type=click.Choice(["paper-table4"]),
              help="Print only this table of the paper (paper-table4: W/T/L of SRA+X over UDS+X); write nothing.")
def report_cmd(results: tuple[str, ...], out: str, profile: str | None, methods: str | None, reps: int | None,
               table: str | None) -> None:
    """Tables (Markdown, CSV, LaTeX), rliable statistics and an HTML page with plots."""
    variants = _given("--methods", methods)
    if table:
        click.echo(api.report_table(table, results, profile))
        return
    for line in report_summary_lines(api.report(results, out, profile=profile, methods=variants, reps=reps)):
        click.echo(line)


def report_summary_lines(summary) -> list[str]:
    """A few lines for the terminal: what is complete, what is not and why, where the files are."""
    lines = [f"report ({summary.profile} profile): {len(summary.complete)} complete variant(s)"
             + (f": {', '.join(summary.complete)}" if summary.complete else "")]
    if summary.expert_draw:
        lines.append(f"  {summary.expert_draw}")
    lines += [f"  incomplete, left out of the aggregates: {variant} ({why})" for variant, why in summary.incomplete.items()]
    if summary.failed:
        lines.append(f"  {len(summary.failed)} failed run(s), listed under 'Failed runs'")
    if summary.warnings:
        lines.append(f"  {len(summary.warnings)} warning(s), listed under 'Warnings'")
    plots = [p for p in summary.paths if p.parent.name == "plots"]
    tables = [p.name for p in summary.paths if p not in plots and p.suffix != ".html"]
    lines.append(f"open {summary.out_dir / 'report.html'} (tables, statistics and plots on one page)")
    lines.append(f"also in {summary.out_dir}/: {', '.join(tables)}"
                 + (f", plots/ ({len(plots)} files)" if plots else ""))
    return lines


# ------------------------------------------------------------------------------------------------- perf
@main.group("perf", invoke_without_command=True)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--learners", default="iql,td3bc,awac,sacn", show_default=True,
              help="Learners, comma-separated; sacn = SAC-N with 25 critics (maze2d), sacnN = N critics.")
@click.option("--seconds", default=2.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Wall time of each timed run.")
@click.option("--repeats", default=2, show_default=True, type=click.IntRange(min=1),
              help="Timed runs per measurement; the best counts.")
@click.option("--obs-dim", default=17, show_default=True, type=click.IntRange(min=1))
@click.option("--act-dim", default=6, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--compile/--no-compile", "compile_", default=False, show_default=True,
              help="Our learners' updates compiled, as `bench run --compile` runs them: one graph where the "
                   "learner has that path (every learner here: methods/compiled_step.py), else torch.compile of its "
                   "update. The reference stays eager; compiled code uses the stock matmuls.")
@click.option("--threads", default=None,
              help="Torch thread counts to time, comma-separated. [default: 1 and torch's default]")
@click.option("--onednn/--no-onednn", default=None,
              help="Our nets' CPU matmuls through oneDNN, or stock PyTorch matmuls, to compare. "
                   "[default: this CPU's rule, methods/nets.py]")
@click.option("--bf16", is_flag=True,
              help="Our learners' updates under bf16 autocast (opt-in; fast only with AMX or a recent GPU). The "
                   "reference and the matmul peak stay fp32.")
@click.pass_context
def perf_cmd(ctx, device, learners, seconds, repeats, obs_dim, act_dim, batch_size, compile_, threads,
             onednn, bf16) -> None:
    """Training steps (sample a batch + one update) per second of each learner, vs CORL's IQL with its replay
    buffer, and as a share of the limit this machine's matmul peak sets.

    `bench perf sra` instead times SRA's phases at a profile's budgets (see its --help)."""
    if ctx.invoked_subcommand is not None:
        return
    from benchmark.perf import (IQL_TARGET, REFERENCE, SACN_DEFAULT_CRITICS, SACN_TARGET, measure, parse_learners,
                                parse_threads)
    from benchmark.precision import bf16_native
    chosen = parse_learners(learners)
    report = measure(chosen, device=device, seconds=seconds, obs_dim=obs_dim, act_dim=act_dim,
                     batch_size=batch_size, compile=compile_, threads=parse_threads(threads) if threads else None,
                     repeats=repeats, onednn=onednn, bf16=bf16)
    click.echo(f"device: {report.device} ({report.device_name}), torch {report.torch_version}, "
               f"threads {' and '.join(map(str, report.thread_counts))} (default {report.default_threads}, "
               f"{report.logical_cpus} logical CPUs), compile {'on' if report.compiled else 'off'}, "
               f"oneDNN matmuls {'on' if report.onednn else 'off'}"
               + (f", bf16 autocast on (bf16 hardware: {'yes' if bf16_native(report.device) else 'no, emulated'})"
                  if report.bf16 else ""))
    click.echo(f"batch {batch_size}, obs {obs_dim}, act {act_dim}; about {seconds:g} s per timed run, "
               f"best of {repeats}; a step = sample a batch + update; {REFERENCE} = CORL's IQL and replay buffer "
               "(benchmark/perf_reference.py)\n")
    peaks = ", ".join(f"{peak / 1e9:.0f} GFLOP/s at {t} thread{'s' if t > 1 else ''}"
                      for t, peak in report.peak_flops.items())
    click.echo(f"fp32 matmul peak at the nets' shape (256x256x256): {peaks}\n")
    click.echo(f"{'learner':<10} {'threads':>7} {'steps/s':>10} {'GFLOP/upd':>9} {'limit/s':>8} {'of limit':>8}")
    for m in report.measurements:
        flops, peak = report.flops.get(m.learner), report.peak_flops.get(m.threads)
        limit = f"{peak / flops:8.0f}" if flops and peak else f"{'-':>8}"
        share = report.fraction_of_limit(m.learner, m.threads)
        click.echo(f"{m.learner:<10} {m.threads:>7} {m.rate:>10.1f} {(flops or 0) / 1e9:>9.3f} {limit} "
                   f"{'-' if share is None else f'{share:.0%}':>8}")

    def ratios(numerator: str, denominator: str, target: float, fmt: str) -> str:
        parts = []
        for threads in report.thread_counts:
            value = report.ratio(numerator, denominator, threads)
            parts.append("n/a" if value is None else
                         f"{value:{fmt}} at {threads} thread{'s' if threads > 1 else ''} "
                         f"({'ok' if value >= target else 'below target'})")
        return "; ".join(parts)

    sacn = f"sacn-{SACN_DEFAULT_CRITICS}"
    click.echo(f"\nIQL / reference IQL:  {ratios('iql', REFERENCE, IQL_TARGET, '.2f')}  [target >= {IQL_TARGET:g}x]")
    ceiling = report.zero_overhead_ratio("iql", REFERENCE)
    if ceiling is not None:
        mm = report.matmul_seconds
        click.echo(f"  ceiling: IQL's matmuls alone, replayed without anything else, take {mm['iql'] * 1e3:.1f} "
                   f"ms/update (reference's {mm[REFERENCE] * 1e3:.1f} ms); with no other cost at all IQL would be "
                   f"{ceiling:.2f}x the reference at {report.matmul_threads} thread"
                   f"{'s' if report.matmul_threads > 1 else ''}")
    click.echo(f"SAC-N({SACN_DEFAULT_CRITICS}) / IQL:      {ratios(sacn, 'iql', SACN_TARGET, '.3f')}  "
               f"[target >= {SACN_TARGET:.3f}]")
    for note in report.notes:
        click.echo(f"note: {note}")


@perf_cmd.command("profile")
@click.option("--methods", default=None, help="Methods, comma-separated. [default: every registered method]")
@click.option("--task", default="maze2d-umaze-sparse", show_default=True, help="The task whose shapes the data take.")
@click.option("--profile", "profile_name", default="paper", show_default=True, help="Whose method configs to use.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--updates", default=20, show_default=True, type=click.IntRange(min=1),
              help="Updates timed, then as many profiled.")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="Torch threads [default: torch's].")
def perf_profile_cmd(methods, task, profile_name, device, updates, threads) -> None:
    """Per method: kernel launches, GPU busy time and host-device syncs of one learner update (torch profiler)."""
    import torch

    from benchmark.perf import device_name
    from benchmark.perf_profile import format_profiles, profile_method
    from benchmark.profiles import get_profile
    from benchmark.runner import resolve_device
    from envs.tasks import get_task
    from methods.registry import available, get_method
    names = _split(methods) if methods else sorted(available())
    for name in names:
        get_method(name)
    get_task(task)
    get_profile(profile_name)
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    rows = []
    for name in names:
        click.echo(f"profiling {name} ...", err=True)
        rows.append(profile_method(name, task, profile_name, str(dev), updates))
    click.echo(format_profiles(rows, str(dev), device_name(dev), updates))


@perf_cmd.command("loop")
@click.option("--methods", default="bc-exp,uds,sra", show_default=True, help="Methods, comma-separated.")
@click.option("--task", default="maze2d-umaze-sparse", show_default=True)
@click.option("--profile", default="quick", show_default=True, help="Budgets, data scale and evaluation protocol.")
@click.option("--steps", default=None, type=click.IntRange(min=1),
              help="Cut each run at this many steps and project to the profile's. [default: the profile's]")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="Torch threads per run (bench run gives each worker cores / workers).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--generate-missing", is_flag=True, help="Generate the task's data first if it is missing.")
@click.option("--compile", "compile_", is_flag=True,
              help="Run as `bench run --compile` does (learner updates as one compiled graph); the one-off "
                   "compilation is shown apart.")
def perf_loop_cmd(methods, task, profile, steps, device, threads, seed, generate_missing, compile_) -> None:
    """A whole run's steps/s (sampling, updates, logging, evaluations and pretraining amortized), each method run
    as `bench run` runs it in a scratch directory: the numbers a grid's wall time follows from."""
    from benchmark import api
    from benchmark.perf import device_name, resolve_device
    from benchmark.perf_loop import format_loop, time_loop
    grid = api.resolve_grid(methods=methods, envs=task, seeds=[seed], profile=profile)  # names checked here
    tasks = grid.tasks
    if len(tasks) != 1:
        raise BenchError(f"--task names {len(tasks)} tasks ({', '.join(tasks)}); give one, e.g. maze2d-umaze-sparse")
    api.ensure_datasets(tasks, grid.profile.data, generate_missing)
    rows = []
    for name in grid.methods:
        click.echo(f"timing {name} on {tasks[0]} ...", err=True)
        rows.append(time_loop(name, tasks[0], profile, steps, seed, device, threads, show_progress=True,
                              compile=compile_))
    click.echo(format_loop(rows, profile, threads, device_name(resolve_device(device)), compile=compile_))


@perf_cmd.command("sra")
@click.option("--method", default="sra", show_default=True, help="sra, sra-iql, sra-td3bc, sra-awac or sra-sacn.")
@click.option("--task", default="maze2d-umaze-sparse", show_default=True)
@click.option("--profile", default="paper", show_default=True, help="Budgets to project to (and data scale).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model-steps", default=50, show_default=True, type=click.IntRange(min=1),
              help="Dynamics-model gradient steps to time.")
@click.option("--cvae-steps", default=200, show_default=True, type=click.IntRange(min=1),
              help="CVAE reverse-policy steps to time (locomotion).")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(min=1),
              help="Augmentation rounds to run in full (their mean stands for every round).")
@click.option("--learner-updates", default=200, show_default=True, type=click.IntRange(min=1),
              help="Learner updates to time (after the rounds, so batches include augmented data).")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="Torch threads [default: torch's].")
@click.option("--set", "sets", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Override a setting as `bench run` does, e.g. --set sra.model.hidden_dims=[256,256].")
def perf_sra_cmd(method, task, profile, device, seed, model_steps, cvae_steps, rounds, learner_updates, threads,
                 sets) -> None:
    """SRA's model training + augmentation vs its learner time, projected to a whole run from timed samples
    (issue target: <= 25% in the paper profile). Needs the task's data at the profile's scale."""
    import torch
    from benchmark.perf_sra import format_cost, measure_sra
    if threads:
        torch.set_num_threads(threads)
    from benchmark.config import parse_set_options
    overrides = parse_set_options(sets, [method]).get(method)
    cost = measure_sra(method, task, profile, device, seed, model_steps, cvae_steps, rounds, learner_updates,
                       overrides, log=lambda message: click.echo(message, err=True))
    click.echo(format_cost(cost))


if __name__ == "__main__":
    main()
