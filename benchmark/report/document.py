"""The report as a document: compute every table and statistic of one profile's results, lay them out as
sections and figures, and write report.md/.html/.tex, the CSVs and plots/.

Messages (progress, warnings) go to this module's logger; warnings are also listed in the report.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmark import plots
from benchmark.report.load import (ReportError, ResultsDirs, expert_draw_line, expert_draws, finite, load_results,
                                   results_dirs, score_matrices, scores_frame, incomplete_reasons,
                                   shared_training_line)
from benchmark.report.paper import (DEFAULT_PAPER_DIR, LOCOMOTION_NOTE, MAZE_NOTE, load_paper, paper_table,
                                    per_task_table, same_scale_tasks, win_tie_loss, win_tie_loss_detail)
from benchmark.report.render import Section, render_html, render_latex, render_markdown
from benchmark.report.stats import (BOOTSTRAP_REPS, GAMMA, aggregate_estimates, curve_frame, improvement_estimates,
                                    performance_profiles)
from benchmark.report.tables import (aggregate_table, coverage_table, improvement_table, model_error_table,
                                     own_expert_table, score_table)

log = logging.getLogger(__name__)


@dataclass
class ReportSummary:
    out_dir: Path
    profile: str
    paths: list[Path]
    markdown: str
    complete: list[str]
    incomplete: dict[str, str]
    failed: list[str]
    warnings: list[str]
    expert_draw: str = ""  # expert_draw_line of the done runs


@dataclass
class ReportData:
    """Everything computed for one report (input of the sections and figures)."""
    profile: str
    reps: int
    seed: int
    done: list[dict]
    failed: list[dict]
    warnings: list[str]
    scores: pd.DataFrame
    per_task: pd.DataFrame
    incomplete: dict[str, str]
    complete: list[str]
    aggregates: pd.DataFrame
    improvement: pd.DataFrame
    wtl: pd.DataFrame
    perf_profiles: tuple  # (taus, {variant: profile}, {variant: CI})
    curves: pd.DataFrame
    paper_found: bool


def _provenance(done: list[dict], failed: list[dict]) -> str:
    runs = done + failed

    def seen(get) -> str:
        return ", ".join(sorted({str(get(r)) for r in runs})) or "none"

    def source(r) -> str:
        return (r.get("data") or {}).get("source", "unknown")

    by_task: dict[str, set[str]] = {}
    for r in runs:
        by_task.setdefault(r.get("task", "?"), set()).add(source(r))
    labels: dict[str, list[str]] = {}  # source label -> tasks; a task whose runs used several sources says so
    for task, sources in sorted(by_task.items()):
        label = next(iter(sources)) if len(sources) == 1 else "MIXED " + " / ".join(sorted(sources))
        labels.setdefault(label, []).append(task)
    per_task = "; ".join(f"{label}: {', '.join(tasks)}" for label, tasks in sorted(labels.items())) or "none"
    return "\n".join([
        f"- data sources: {seen(source)}",
        f"- data source per task (generated = built here by `bench data generate`, minari = Minari's remote, "
        f"imported-d4rl = a D4RL HDF5 file): {per_task}",
        f"- datasets: {seen(lambda r: (r.get('data') or {}).get('expert'))}; "
        f"{seen(lambda r: (r.get('data') or {}).get('supplementary'))}",
        f"- git commits: {seen(lambda r: r.get('git_commit') or 'unknown')}",
        f"- num_steps: {seen(lambda r: (r.get('settings') or {}).get('num_steps'))}; "
        f"eval_episodes: {seen(lambda r: (r.get('settings') or {}).get('eval_episodes'))}"])


def build_sections(d: ReportData) -> list[Section]:
    """The report's sections, in order; an empty section says why it is empty."""
    variants = sorted(d.per_task["variant"].unique())
    has_table = bool(variants)
    setup = (f"Profile `{d.profile}`: {len(d.done)} done runs of {len(variants)} variant(s), {len(d.failed)} failed. "
             "Scores are D4RL-normalized, 100 * (R - min) / (max - min) with D4RL's reference returns (maze2d: "
             "D4RL's maze2d-v1 figures, rewards under D4RL's geometry); cells are mean ± SE over seeds "
             "(SE = std/sqrt(n), std with ddof 1; — when n = 1). Aggregates: rliable, 95% stratified-bootstrap "
             f"percentile CIs over runs, {d.reps} bootstrap reps, numpy seed {d.seed}; only complete variants. "
             + expert_draw_line(d.done) + (" " + twins if (twins := shared_training_line(d.done)) else ""))
    aggregate = (f"IQM, mean, median and optimality gap (gamma = {GAMMA:g}) over all runs and tasks, point [95% CI]."
                 if d.complete else "no complete variant: " + ("see Incomplete variants" if variants else "no done runs"))
    if d.complete and d.per_task[d.per_task["variant"].isin(d.complete)]["n"].min() == 1:
        aggregate += " With one seed per task there is nothing to resample: those CIs have zero width."
    improvement = ("P(row > column): probability that a run of the row variant scores above a run of the column "
                   "variant on the same task, averaged over tasks, point [95% CI]." if len(d.complete) > 1
                   else "needs at least two complete variants")
    matched = paper_table(d.per_task, same_scale_tasks(d.done))
    paper = ("paper tables not found; comparison skipped" if not d.paper_found
             else "no variant is named like a paper method" if not len(matched)
             else "Our last-evaluation mean ± SE beside the paper's mean ± its reported spread."
             + (" " + MAZE_NOTE if matched["task"].str.startswith("maze2d").any() else "")
             + (" " + LOCOMOTION_NOTE if (~matched["task"].str.startswith("maze2d")).any() else ""))
    failed = pd.DataFrame([(r["run_key"], "—" if r.get("failed_step") is None else r["failed_step"],
                            r.get("error") or "—") for r in d.failed],
                          columns=["run_key", "failed_step", "error"])
    errors, coverage, own = model_error_table(d.done), coverage_table(d.done), own_expert_table(d.done)
    sections = [
        Section("Setup", setup),
        Section("Last evaluation (headline)", "Final evaluation of each run. (n=k): fewer seeds than on the "
                "variant's other tasks. std and n of every cell: per_task.csv.",
                score_table(d.per_task, d.complete) if has_table else None),
        Section("Best over training (optimistic)", "Best evaluation during training, selected on the evaluation "
                "episodes themselves: optimistic, for reference only.",
                score_table(d.per_task, d.complete, "best_mean", "best_se") if has_table else None),
        Section("Aggregate statistics (last evaluation)", aggregate, aggregate_table(d.aggregates) if d.complete else None),
        Section("Probability of improvement", improvement,
                improvement_table(d.improvement) if len(d.complete) > 1 else None),
        Section("Paper comparison", paper, matched if len(matched) else None),
        Section("Maze2d as % of our expert (secondary)", "The same evaluations on a second scale: 100 = the mean "
                "return of the data's own expert episodes, 0 = a uniform-random policy (both measured with the "
                "data); mean over seeds.", own) if len(own) else None,
        Section("SRA vs UDS per learner (Table 4 style)", "Per task, W/T/L of SRA over UDS; a tie when the "
                "mean ± SE intervals (paper: mean ± its spread) overlap.", d.wtl) if len(d.wtl) else None,
        Section("Model one-step error", "Mean squared one-step error on the model's held-out pairs (z-scored "
                "units; mean over seeds) beside predicting \"no change\"; ratio < 1: the model beats no change.",
                errors) if len(errors) else None,
        Section("Augmentation coverage per round", "Share of the maze's free cells holding the round's augmented "
                "states / its newest D^S goals (mean over seeds).",
                coverage) if len(coverage) else None,
        Section("Incomplete variants", "Not rectangular (every task, the same seeds on every task), so left out "
                "of the aggregate statistics:" if d.incomplete else "none",
                pd.DataFrame(list(d.incomplete.items()), columns=["variant", "reason"]) if d.incomplete else None),
        Section("Failed runs", f"{len(d.failed)} failed run(s), in no table:" if d.failed else "none",
                failed if d.failed else None),
        Section("Warnings", "\n".join(f"- {w}" for w in d.warnings)) if d.warnings else None,
        Section("Provenance", _provenance(d.done, d.failed)),
    ]
    return [s for s in sections if s is not None]


def build_figures(d: ReportData) -> dict[str, tuple[str, object]]:
    """{file stem: (caption, Figure)} for the figures there are data for."""
    figures = {}
    if len(d.per_task):
        figures["scores"] = ("Per-task score, last evaluation (mean ± SE)", plots.score_bars(d.per_task))
    shown = d.aggregates[d.aggregates["point"].notna()]
    if len(shown):
        figures["aggregates"] = ("Aggregate metrics with 95% bootstrap CIs", plots.interval_estimates(shown))
    if d.perf_profiles[1]:
        figures["profiles"] = ("Performance profiles (score distributions, 95% CIs)", plots.performance_profiles(*d.perf_profiles))
    if len(d.curves):
        figures["curves"] = ("Learning curves (mean ± SE over seeds)", plots.learning_curves(d.curves))
    return figures


def table_markdown(table: str, results_dir: ResultsDirs, profile: str | None = None,
                   paper_dir: Path | None = DEFAULT_PAPER_DIR) -> str:
    """One named table of the paper from the results (``bench report --table``): ``paper-table4``."""
    if table != "paper-table4":
        raise ReportError(f"unknown table {table!r}; tables: paper-table4")
    loaded = load_results(results_dir, profile)
    paper = load_paper(paper_dir)
    per_task = per_task_table(scores_frame(loaded.done), paper)
    summary, detail = win_tie_loss(per_task, paper), win_tie_loss_detail(per_task, paper)
    if summary.empty:
        raise ReportError(f"no SRA/UDS pairs on a shared learner under {', '.join(map(str, results_dirs(results_dir)))} "
                          f"(profile {loaded.profile}); run e.g. "
                          f"`bench run --grid paper-table4 --profile {loaded.profile}`")
    text = ("W/T/L of SRA+X over UDS+X per task (tie: the mean ± SE intervals overlap; the paper's outcome "
            "uses its ± intervals)")
    sections = [Section("Summary", text, summary), Section("Per task", None, detail)]
    return render_markdown(f"Table 4 style: SRA vs UDS per learner (profile {loaded.profile})", sections, {})


def compute(results_dir: ResultsDirs, profile: str | None = None, reps: int = BOOTSTRAP_REPS, seed: int = 0,
            paper_dir: Path | None = DEFAULT_PAPER_DIR, variants: Sequence[str] | None = None) -> ReportData:
    """Load one profile's results and compute every table and statistic of the report."""
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        log.warning(message)

    loaded = load_results(results_dir, profile, variants)
    for message in loaded.warnings:
        warn(message)
    done, set_aside = loaded.done, loaded.set_aside
    if unscored := [r["run_key"] for r in done if not finite(r.get("final_score"), r.get("best_score"))]:
        warn(f"left out {len(unscored)} done run(s) without finite final/best scores: {', '.join(unscored)}")
        done = [r for r in done if r["run_key"] not in unscored]
    scores = scores_frame(done)
    paper = load_paper(paper_dir)
    incomplete = incomplete_reasons(scores, set_aside)
    matrices = score_matrices(scores, "last", set_aside)
    log.info(f"bootstrapping {len(matrices)} complete variant(s) with {reps} reps")
    curves, skipped = curve_frame(done)
    if skipped:
        warn(f"learning curves skip {len(skipped)} run(s) on a minority step grid: {', '.join(skipped)}")
    if len(draws := expert_draws(done)) > 1:
        both = sorted(v for v in set.union(*draws.values()) if sum(v in names for names in draws.values()) > 1)
        warn(expert_draw_line(done) + (f" Under several draws (several runs per seed): {', '.join(both)}."
                                       if both else ""))
    per_task = per_task_table(scores, paper)
    return ReportData(loaded.profile, reps, seed, done, loaded.failed, warnings, scores, per_task, incomplete,
                      sorted(matrices), aggregate_estimates(matrices, reps, seed),
                      improvement_estimates(matrices, reps, seed), win_tie_loss(per_task, paper),
                      performance_profiles(matrices, reps, seed), curves, paper is not None)


def write_report(results_dir: ResultsDirs, out_dir: Path, profile: str | None = None, reps: int = BOOTSTRAP_REPS,
                 seed: int = 0, paper_dir: Path | None = DEFAULT_PAPER_DIR,
                 variants: Sequence[str] | None = None) -> ReportSummary:
    """Write report.md/.html/.tex, scores.csv, per_task.csv, aggregates.csv and plots/ under ``out_dir``.

    Status lines and warnings go to the ``benchmark.report`` loggers. ReportError on user errors.
    """
    d = compute(results_dir, profile, reps, seed, paper_dir, variants)
    out_dir, title = Path(out_dir), f"Benchmark report: profile {d.profile}"
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    sections = build_sections(d)
    paths, images, captions = [], {}, {}
    for stem, (caption, fig) in build_figures(d).items():
        images[caption], captions[stem] = plots.save(fig, out_dir / "plots" / stem), caption
        paths += [out_dir / "plots" / f"{stem}.png", out_dir / "plots" / f"{stem}.svg"]
    markdown = render_markdown(title, sections, captions)
    improvement = d.improvement.rename(columns={"pair": "variant"}).assign(metric="P(X > Y)")
    outputs = {
        "report.md": markdown,
        "report.html": render_html(title, sections, images),
        "report.tex": render_latex([s for s in sections if s.title.startswith(("Last", "Best", "Aggregate"))]),
        "scores.csv": d.scores.to_csv(index=False),
        "per_task.csv": d.per_task.to_csv(index=False),
        "aggregates.csv": pd.concat([f for f in (d.aggregates, improvement[d.aggregates.columns]) if len(f)]
                                    or [d.aggregates]).assign(reps=d.reps, profile=d.profile).to_csv(index=False),
    }
    for name, text in outputs.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        paths.append(out_dir / name)
    return ReportSummary(out_dir, d.profile, paths, markdown, d.complete, d.incomplete,
                         [r["run_key"] for r in d.failed], d.warnings, expert_draw_line(d.done) if d.done else "")
