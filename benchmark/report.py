"""``bench report``: per-task tables, the paper comparison and rliable statistics from the results store.

Data contract (rliable's): ``{variant: array(runs, tasks)}`` of normalized scores on the 0-100 scale,
built only from *done* runs of one budget profile. A variant enters the aggregate statistics only if
its matrix is a full rectangle (every task, the same seeds on every task); anything else is named
with the reason, never averaged silently.

Conventions:
- SE = sample std (ddof=1) / sqrt(n). With n = 1 std and SE are undefined: NaN in the CSVs, "—" in tables.
- "last" (the final evaluation) is the headline; "best" (best evaluation over training) is optimistic
  and labelled so. Aggregate statistics use "last".
- 95% stratified-bootstrap percentile CIs with ``BOOTSTRAP_REPS`` replications. rliable draws from
  numpy's global state and ignores its own seed, so ``np.random.seed(seed)`` precedes every rliable
  call, and there is one call per variant (per pair), so a variant's CIs do not depend on the others.
- Probability of improvement: rliable's definition (Mann-Whitney U / (n_x n_y) per task, averaged
  over tasks), vectorized in ``improvement_probability``. P(Y > X) = 1 - P(X > Y) on the same
  resamples, so each unordered pair is bootstrapped once and mirrored.
- Learning curves: per (variant, task), the step grid most seeds share; seeds on another grid are
  skipped and named.
"""
from __future__ import annotations

import base64
import html
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics

from benchmark import plots
from benchmark.store import iter_results, iter_set_aside
from envs.tasks import task_order

BOOTSTRAP_REPS = 5000  # measured: 10 variants x 14 tasks x 4 seeds, whole report ~16 s on 2 cores (10000: ~28 s)
GAMMA = 100.0  # optimality-gap threshold: scores are on the 0-100 scale
METRICS = ("IQM", "Mean", "Median", "Optimality gap")
DEFAULT_PAPER_DIR = Path(__file__).resolve().parents[1] / "reports" / "paper"
PAPER_FILES = ("table1_main.csv", "table4_learners.csv")
PAPER_ALIASES = {"sra": "sra-iql", "uds": "uds-iql", "sra-iql": "sra", "uds-iql": "uds"}
LEARNERS = ("iql", "td3bc", "awac", "sacn")
SCORE_COLUMNS = ["variant", "task", "seed", "last", "best", "profile"]


class ReportError(ValueError):
    """A user error; the one-line message says what to do."""


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
class Section:
    title: str
    text: str = ""
    table: pd.DataFrame | None = None  # display strings, rendered without index


# ---------------------------------------------------------------- loading and score matrices

ResultsDirs = Union[Path, str, Sequence[Union[Path, str]]]


def _dirs(results_dirs: ResultsDirs) -> list[Path]:
    return [Path(results_dirs)] if isinstance(results_dirs, (str, Path)) else [Path(d) for d in results_dirs]


def load_results(results_dirs: ResultsDirs, profile: str | None = None, warn: Callable[[str], None] = print,
                 variants: Sequence[str] | None = None, set_aside: list[dict] | None = None) -> tuple[str, list[dict], list[dict]]:
    """(profile, done results, failed results) of one profile from one or more results directories.

    ``set_aside``, when given, receives the runs of that profile whose result file was set aside as corrupt
    (now or by an earlier command) and not redone: missing seeds, not absent runs.

    ``variants`` keeps only those method variants (e.g. to put bc-exp from another grid beside new methods).
    A run found in two directories is ambiguous and refused. ReportError on user errors.
    """
    dirs = _dirs(results_dirs)
    where = ", ".join(map(str, dirs))
    results, seen = [], {}
    for directory in dirs:
        for result in (iter_results(directory, warn) if directory.is_dir() else []):
            if (key := result["run_key"]) in seen:
                raise ReportError(f"run {key} is in both {seen[key]} and {directory}; pass only one of them")
            seen[key] = directory
            results.append(result)
    if not results:
        raise ReportError(f"no results under {where}; run `bench run ...` first")
    if variants is not None:
        wanted, present = set(variants), sorted({variant_of(r) for r in results})
        if unknown := sorted(wanted - set(present)):
            raise ReportError(f"no results for {', '.join(unknown)} under {where}; present: {', '.join(present)}")
        results = [r for r in results if variant_of(r) in wanted]
    profiles = sorted({str(r["profile"]) for r in results})
    if profile is None and len(profiles) > 1:
        raise ReportError(f"results hold profiles {', '.join(profiles)}: pass --profile NAME")
    if profile is not None and profile not in profiles:
        raise ReportError(f"no results for profile {profile!r} under {where}; "
                          f"profiles present: {', '.join(profiles)}")
    profile = profile or profiles[0]
    chosen = [r for r in results if r["profile"] == profile]
    if set_aside is not None:
        set_aside += [r for d in dirs if d.is_dir() for r in iter_set_aside(d)
                      if r["profile"] == profile and (variants is None or r["variant"] in variants)]
    return profile, [r for r in chosen if r["status"] == "done"], [r for r in chosen if r["status"] != "done"]


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def variant_of(result: dict) -> str:
    return str(result.get("variant") or result["method"])


def scores_frame(done: list[dict]) -> pd.DataFrame:
    """Long format, one row per done run: variant, task, seed, last, best, profile."""
    rows = [{"variant": variant_of(r), "task": r["task"], "seed": int(r["seed"]),
             "last": float(r["final_score"]), "best": float(r["best_score"]), "profile": r["profile"]}
            for r in done]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS).sort_values(["variant", "task", "seed"], ignore_index=True)


def incomplete_reasons(scores: pd.DataFrame, set_aside: Sequence[dict] = ()) -> dict[str, str]:
    """Why each non-rectangular variant cannot enter the statistics (complete variants are absent).
    ``set_aside``: runs whose result was set aside as corrupt; each is a missing seed until it is redone."""
    tasks = sorted(scores["task"].unique())
    reasons = {}
    lost: dict[str, list[str]] = defaultdict(list)
    for r in sorted(set_aside, key=lambda r: (r["task"], r["seed"])):
        lost[r["variant"]].append(f"{r['task']} seed {r['seed']}")
    for variant, rows in scores.groupby("variant", sort=True):
        seeds = {task: sorted(g["seed"]) for task, g in rows.groupby("task", sort=True)}
        counts = [len(s) for s in seeds.values()]
        why = []
        if variant in lost:
            why.append(f"result set aside as corrupt, not redone yet (`bench run` with the same arguments redoes "
                       f"it): {', '.join(lost[variant])}")
        if missing := [t for t in tasks if t not in seeds]:
            why.append("missing " + ", ".join(missing))
        if dup := [t for t, s in seeds.items() if len(s) != len(set(s))]:
            why.append("several runs of one seed (different configs?) on " + ", ".join(dup))
        if len(set(counts)) > 1:
            short = [f"{t} ({len(s)})" for t, s in seeds.items() if len(s) < max(counts)]
            why.append(f"seeds per task {'/'.join(map(str, counts))}: fewer on {', '.join(short)}")
        elif len({tuple(s) for s in seeds.values()}) > 1:
            why.append("seed sets differ across tasks: " + "; ".join(f"{t} {s}" for t, s in seeds.items()))
        if why:
            reasons[variant] = "; ".join(why)
    return reasons


def score_matrices(scores: pd.DataFrame, column: str = "last", set_aside: Sequence[dict] = ()) -> dict[str, np.ndarray]:
    """rliable's ``{variant: array(runs, tasks)}`` for the complete variants; runs by seed, tasks sorted."""
    tasks = sorted(scores["task"].unique())
    skip = incomplete_reasons(scores, set_aside)
    return {variant: rows.pivot(index="seed", columns="task", values=column).sort_index()[tasks].to_numpy(float)
            for variant, rows in scores.groupby("variant", sort=True) if variant not in skip}


# ---------------------------------------------------------------- per-task table and the paper

def load_paper(paper_dir: Path | None) -> pd.DataFrame | None:
    """The paper's numbers (task, method, mean, plus_minus), or None when the tables are absent."""
    files = [Path(paper_dir) / name for name in PAPER_FILES] if paper_dir is not None else []
    frames = [pd.read_csv(f) for f in files if f.is_file()]
    return pd.concat(frames).drop_duplicates(["task", "method"]) if frames else None


def _paper_index(paper: pd.DataFrame | None) -> dict[tuple[str, str], tuple[float, float]]:
    if paper is None:
        return {}
    return {(t, m): (float(mu), float(pm)) for t, m, mu, pm in paper[["task", "method", "mean", "plus_minus"]].itertuples(index=False)}


def paper_entry(index: dict, variant: str, task: str) -> tuple[float, float]:
    """(paper mean, paper ±) for a variant named like a paper method (or its alias); NaNs if none."""
    for name in (variant, PAPER_ALIASES.get(variant)):
        if (task, name) in index:
            return index[(task, name)]
    return math.nan, math.nan


def per_task_table(scores: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (variant, task): n, mean/std/se of last and best, the paper's mean and ± and ours - paper."""
    groups = scores.groupby(["variant", "task"], sort=True)
    out = pd.DataFrame({"n": groups["last"].count(), "mean": groups["last"].mean(),
                        "std": groups["last"].std(ddof=1), "best_mean": groups["best"].mean(),
                        "best_std": groups["best"].std(ddof=1)}).reset_index()
    out["se"] = out["std"] / np.sqrt(out["n"])
    out["best_se"] = out["best_std"] / np.sqrt(out["n"])
    index = _paper_index(paper)
    entries = [paper_entry(index, v, t) for v, t in zip(out["variant"], out["task"])]
    out["paper_mean"] = [e[0] for e in entries]
    out["paper_pm"] = [e[1] for e in entries]
    out["diff"] = out["mean"] - out["paper_mean"]
    return out[["variant", "task", "n", "mean", "std", "se", "best_mean", "best_std", "best_se",
                "paper_mean", "paper_pm", "diff"]]


def _outcome(a: float, a_err: float, b: float, b_err: float) -> str:
    """W/T/L of a over b; a tie when the intervals a ± a_err and b ± b_err overlap."""
    a_err, b_err = np.nan_to_num(a_err), np.nan_to_num(b_err)
    return "W" if a - a_err > b + b_err else "L" if a + a_err < b - b_err else "T"


def _wtl(outcomes: list[str]) -> str:
    count = Counter(outcomes)
    return f"{count['W']}/{count['T']}/{count['L']}"


def table4_pairs(per_task: pd.DataFrame, paper: pd.DataFrame | None = None) -> list[dict]:
    """Per learner and task present for both SRA+X and UDS+X: their stats, our outcome and the paper's."""
    index, present, rows = _paper_index(paper), set(per_task["variant"]), []
    stats = per_task.set_index(["variant", "task"])
    for learner in LEARNERS:
        names = [[f"{m}-{learner}"] + ([m] if learner == "iql" else []) for m in ("sra", "uds")]
        sra, uds = (next((n for n in options if n in present), None) for options in names)
        if sra is None or uds is None:
            continue
        for task in sorted(set(stats.loc[sra].index) & set(stats.loc[uds].index)):
            a, b = stats.loc[(sra, task), ["mean", "se"]], stats.loc[(uds, task), ["mean", "se"]]
            keys = [(task, f"sra-{learner}"), (task, f"uds-{learner}")]
            rows.append({"learner": learner, "pair": f"{sra} vs {uds}", "task": task, "sra": a, "uds": b,
                         "ours": _outcome(*a, *b), "paper_sra": index.get(keys[0]), "paper_uds": index.get(keys[1]),
                         "paper": _outcome(*index[keys[0]], *index[keys[1]]) if all(k in index for k in keys)
                         else None})
    return rows


def win_tie_loss(per_task: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 4 style: SRA vs UDS on each learner, per-task W/T/L of SRA (tie: mean ± SE intervals
    overlap), beside the paper's W/T/L (its ± intervals) on the same tasks."""
    pairs, rows = pd.DataFrame(table4_pairs(per_task, paper)), []
    for (learner, pair), group in (pairs.groupby(["learner", "pair"], sort=False) if len(pairs) else []):
        theirs = [o for o in group["paper"] if o is not None]
        rows.append({"learner": learner, "pair": pair, "tasks": len(group), "ours W/T/L": _wtl(list(group["ours"])),
                     "paper W/T/L": _wtl(theirs) if theirs else "—"})
    return pd.DataFrame(rows, columns=["learner", "pair", "tasks", "ours W/T/L", "paper W/T/L"])


def win_tie_loss_detail(per_task: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per learner and task: SRA+X and UDS+X (mean ± SE), our outcome, and the paper's."""
    rows = [{"learner": r["learner"], "task": r["task"], "SRA": _pm(tuple(r["sra"])), "UDS": _pm(tuple(r["uds"])),
             "ours": r["ours"], "paper SRA": _pm(r["paper_sra"]), "paper UDS": _pm(r["paper_uds"]),
             "paper": r["paper"] or "—"} for r in table4_pairs(per_task, paper)]
    return pd.DataFrame(rows, columns=["learner", "task", "SRA", "UDS", "ours", "paper SRA", "paper UDS", "paper"])


def _pm(entry: tuple[float, float] | None) -> str:
    return "—" if entry is None else f"{_num(entry[0])} ± {_num(entry[1])}"


def table_markdown(table: str, results_dir: ResultsDirs, profile: str | None = None,
                   paper_dir: Path | None = DEFAULT_PAPER_DIR) -> str:
    """One named table of the paper from the results (``bench report --table``): ``paper-table4``."""
    if table != "paper-table4":
        raise ReportError(f"unknown table {table!r}; tables: paper-table4")
    profile, done, _ = load_results(results_dir, profile, warn=lambda message: None)
    paper = load_paper(paper_dir)
    per_task = per_task_table(scores_frame(done), paper)
    summary, detail = win_tie_loss(per_task, paper), win_tie_loss_detail(per_task, paper)
    if summary.empty:
        raise ReportError(f"no SRA/UDS pairs on a shared learner under {', '.join(map(str, _dirs(results_dir)))} "
                          f"(profile {profile}); run e.g. "
                          f"`bench run --grid paper-table4 --profile {profile}`")
    text = ("W/T/L of SRA+X over UDS+X per task (tie: the mean ± SE intervals overlap; the paper's outcome "
            "uses its ± intervals)")
    sections = [Section("Summary", text, summary), Section("Per task", None, detail)]
    return render_markdown(f"Table 4 style: SRA vs UDS per learner (profile {profile})", sections, {})


# ---------------------------------------------------------------- rliable statistics

def _aggregate(scores: np.ndarray) -> np.ndarray:
    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores),
                     metrics.aggregate_median(scores), metrics.aggregate_optimality_gap(scores, GAMMA)])


def _bootstrap(key: str, scores, func, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One rliable interval estimate: (points, CIs of shape (2, k))."""
    np.random.seed(seed)  # rliable resamples with numpy's global state and ignores its seed argument
    point, ci = rly.get_interval_estimates({key: scores}, func, reps=reps)
    return np.atleast_1d(point[key]).astype(float), np.asarray(ci[key], float).reshape(2, -1)


def aggregate_estimates(matrices: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> pd.DataFrame:
    """IQM, mean, median, optimality gap (gamma 100) with 95% stratified-bootstrap CIs per variant."""
    rows = []
    for variant, scores in matrices.items():
        try:
            point, ci, note = *_bootstrap(variant, scores, _aggregate, reps, seed), ""
        except Exception as e:  # an rliable/arch edge case must not sink the whole report
            point, ci, note = np.full(4, np.nan), np.full((2, 4), np.nan), f"n/a ({type(e).__name__}: {e})"
        rows += [{"variant": variant, "metric": m, "point": point[i], "lower": ci[0, i], "upper": ci[1, i],
                  "note": note} for i, m in enumerate(METRICS)]
    return pd.DataFrame(rows, columns=["variant", "metric", "point", "lower", "upper", "note"])


def improvement_probability(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): ``rliable.metrics.probability_of_improvement`` (ties count 1/2), vectorized."""
    diff = x[:, None, :] - y[None, :, :]
    return float(np.mean((diff > 0).mean(axis=(0, 1)) + 0.5 * (diff == 0).mean(axis=(0, 1))))


def improvement_estimates(matrices: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> pd.DataFrame:
    """P(X > Y) with 95% CIs for every ordered pair of variants; ``pair`` is "X,Y"."""
    rows = []
    for x, y in itertools.combinations(sorted(matrices), 2):
        try:
            (p,), ((lo,), (hi,)) = _bootstrap(f"{x},{y}", [matrices[x], matrices[y]], improvement_probability, reps, seed)
            note = ""
        except Exception as e:
            p = lo = hi = math.nan
            note = f"n/a ({type(e).__name__}: {e})"
        rows.append({"pair": f"{x},{y}", "x": x, "y": y, "point": p, "lower": lo, "upper": hi, "note": note})
        rows.append({"pair": f"{y},{x}", "x": y, "y": x, "point": 1 - p, "lower": 1 - hi, "upper": 1 - lo, "note": note})
    return pd.DataFrame(rows, columns=["pair", "x", "y", "point", "lower", "upper", "note"])


def _score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's run score distribution (fraction of all runs with score > tau), vectorized over tau."""
    return (scores.reshape(-1, 1) > taus).mean(axis=0)


def performance_profiles(matrices: dict[str, np.ndarray], reps: int = BOOTSTRAP_REPS, seed: int = 0):
    """(taus on [0, max score], {variant: profile}, {variant: CI (2, len(taus))})."""
    top = max((float(m.max()) for m in matrices.values()), default=0.0)
    taus = np.linspace(0.0, top if top > 0 else GAMMA, 101)
    profiles, cis = {}, {}
    for variant, scores in matrices.items():
        np.random.seed(seed)
        p, ci = rly.create_performance_profile({variant: scores}, taus, custom_profile_func=_score_distribution, reps=reps)
        profiles[variant], cis[variant] = p[variant], ci[variant]
    return taus, profiles, cis


# ---------------------------------------------------------------- learning curves

def curve_frame(done: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """Mean ± SE of the curve score per (variant, task, step) and the run keys skipped (other step grid)."""
    groups = defaultdict(list)
    for r in done:
        if (r.get("curve") or {}).get("step"):
            groups[(variant_of(r), r["task"])].append(r)
    rows, skipped = [], []
    for (variant, task), runs in sorted(groups.items()):
        grid = Counter(tuple(r["curve"]["step"]) for r in runs).most_common(1)[0][0]
        keep = [r for r in runs if tuple(r["curve"]["step"]) == grid]
        skipped += [r["run_key"] for r in runs if tuple(r["curve"]["step"]) != grid]
        s = np.array([r["curve"]["score"] for r in keep], float)
        se = s.std(axis=0, ddof=1) / np.sqrt(len(s)) if len(s) > 1 else np.full(len(grid), np.nan)
        rows += [{"variant": variant, "task": task, "step": step, "mean": m, "se": e, "n": len(s)}
                 for step, m, e in zip(grid, s.mean(axis=0), se)]
    return pd.DataFrame(rows, columns=["variant", "task", "step", "mean", "se", "n"]), skipped


# ---------------------------------------------------------------- display tables

def _num(x: float, digits: int = 1) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _ci(point: float, lower: float, upper: float, digits: int = 1) -> str:
    return f"{_num(point, digits)} [{_num(lower, digits)}, {_num(upper, digits)}]"


def score_table(per_task: pd.DataFrame, complete: list[str], mean: str = "mean", err: str = "se") -> pd.DataFrame:
    """Rows = tasks, a column per variant: "mean ± SE" ("(n=k)" where the variant has fewer seeds than
    on its other tasks, "missing" where it has none), plus a mean-over-tasks row for complete variants."""
    most = per_task.groupby("variant")["n"].transform("max")
    cells = [f"{_num(m)} ± {_num(e)}" + (f" (n={n})" if n < k else "")
             for m, e, n, k in zip(per_task[mean], per_task[err], per_task["n"], most)]
    table = per_task.assign(cell=cells).pivot(index="task", columns="variant", values="cell").fillna("missing")
    table = table.reindex(task_order(table.index))
    overall = per_task.groupby("variant")[mean].mean()
    table.loc["mean over tasks"] = [_num(overall[v]) if v in complete else "—" for v in table.columns]
    return table.reset_index().rename_axis(columns=None)


def aggregate_table(aggregates: pd.DataFrame) -> pd.DataFrame:
    cells = [r.note or _ci(r.point, r.lower, r.upper) for r in aggregates.itertuples()]
    table = aggregates.assign(cell=cells).pivot(index="variant", columns="metric", values="cell")
    return table[list(METRICS)].reset_index().rename_axis(columns=None)


def improvement_table(improvement: pd.DataFrame) -> pd.DataFrame:
    cells = [r.note or _ci(r.point, r.lower, r.upper, 2) for r in improvement.itertuples()]
    table = improvement.assign(cell=cells).pivot(index="x", columns="y", values="cell").fillna("—")
    return table.reset_index().rename(columns={"x": "P(row > column)"}).rename_axis(columns=None)


def paper_table(per_task: pd.DataFrame, same_scale: Sequence[str] = ()) -> pd.DataFrame:
    """Ours beside the paper's, tasks in registry order. "ours - paper" only for ``same_scale`` tasks (data and
    references as the paper's: imported D4RL data); elsewhere a difference would compare different scales."""
    rows = per_task[per_task["paper_mean"].notna()]
    order = {task: i for i, task in enumerate(task_order(rows["task"]))}
    rows = rows.assign(order=rows["task"].map(order)).sort_values(["order", "variant"])
    table = pd.DataFrame({"task": rows["task"], "variant": rows["variant"],
                          "ours (last)": [f"{_num(m)} ± {_num(e)}" for m, e in zip(rows["mean"], rows["se"])],
                          "paper": [f"{_num(m)} ± {_num(e)}" for m, e in zip(rows["paper_mean"], rows["paper_pm"])]})
    if rows["task"].isin(list(same_scale)).any():
        table["ours - paper"] = [_num(d) if t in same_scale else "—" for t, d in zip(rows["task"], rows["diff"])]
    return table


def same_scale_tasks(done: list[dict]) -> list[str]:
    """Tasks whose scores are on the paper's scale in every run: imported D4RL data, or maze2d evaluated with
    D4RL's protocol and references (``evaluation.protocol``)."""
    def same(r: dict) -> bool:
        return ((r.get("data") or {}).get("source") == "imported-d4rl"
                or (r.get("evaluation") or {}).get("protocol") == "d4rl-maze2d")
    verdicts: dict[str, set] = defaultdict(set)
    for r in done:
        verdicts[r["task"]].add(same(r))
    return [task for task, found in verdicts.items() if found == {True}]


def own_expert_table(done: list[dict]) -> pd.DataFrame:
    """Maze2d, secondary scale: last and best evaluation as % of the data's own expert (100) over a random policy
    (0), mean over seeds."""
    rows = [(variant_of(r), r["task"], r["final_own_expert_pct"], r["best_own_expert_pct"]) for r in done
            if "final_own_expert_pct" in r]
    frame = pd.DataFrame(rows, columns=["variant", "task", "last", "best"])
    if not len(frame):
        return frame
    frame = frame.groupby(["variant", "task"], as_index=False).agg(last=("last", "mean"), best=("best", "mean"),
                                                                  n=("last", "size"))
    order = {task: i for i, task in enumerate(task_order(frame["task"]))}
    frame = frame.assign(order=frame["task"].map(order)).sort_values(["order", "variant"]).drop(columns="order")
    frame["last"], frame["best"] = frame["last"].map(_num), frame["best"].map(_num)
    return frame.rename(columns={"last": "% of our expert (last)", "best": "% of our expert (best)"})


def expert_draws(runs: list[dict]) -> dict[str, set[str]]:
    """{D^E draw: variants run under it}; results from before ``data.expert_draw`` existed used "first"."""
    draws: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        draws[(r.get("data") or {}).get("expert_draw", "first")].add(variant_of(r))
    return dict(draws)


def expert_draw_line(runs: list[dict]) -> str:
    """Which D^E the runs used, one line; "MIXED" with the variants under each draw when they differ."""
    counts = sorted({c for r in runs if (c := (r.get("data") or {}).get("expert_episodes")) is not None})
    n = "/".join(map(str, counts)) + " " if counts else ""
    labels = {"first": f"first {n}expert episodes (paper protocol)", "seeded": f"{n}episodes drawn per seed"}
    draws = expert_draws(runs) or {"first": set()}
    if len(draws) == 1:
        draw = next(iter(draws))
        return f"D^E: {labels.get(draw, draw)}."
    parts = [f"{labels.get(draw, draw)} for {', '.join(sorted(names))}" for draw, names in sorted(draws.items())]
    return f"D^E: MIXED draws, {'; '.join(parts)}."


# ---------------------------------------------------------------- the report

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


MAZE_NOTE = ("Maze2d runs evaluated with D4RL's protocol (resets, target, reward radius 0.5, reference returns) "
             "are on the paper's scale, with the same physics on Gymnasium-Robotics' PointMaze; their data come from "
             "D4RL's waypoint-controller recipe (generated here) or the official files (imported). D4RL's maze2d "
             "'expert' reference is not an expert: a real expert scores ~150-200 on it. Maze2d runs from before "
             "this protocol (data v0) are on another scale: no difference is shown for them.")
LOCOMOTION_NOTE = ("Locomotion paper numbers come from D4RL's -v2 datasets; only tasks whose data source is "
                   "imported-d4rl (see Provenance) ran on those data, the others on datasets of other behaviour "
                   "policies (generated here, or Minari's v5 datasets).")


def model_error_table(done: list[dict]) -> pd.DataFrame:
    """Per variant and task, the reverse/forward model's one-step holdout error beside predicting "no change"
    (z-scored state units; mean over seeds), from the runs' ``method_info`` (SRA, ROMI)."""
    rows = [(variant_of(r), r["task"], m["model/one_step_mse"], m["model/no_change_mse"]) for r in done
            if "model/one_step_mse" in (m := (r.get("method_info") or {}).get("model") or {})]
    frame = pd.DataFrame(rows, columns=["variant", "task", "model_mse", "no_change_mse"])
    if not len(frame):
        return frame
    frame = frame.groupby(["variant", "task"], as_index=False).mean()
    frame["ratio"] = frame["model_mse"] / frame["no_change_mse"]
    frame["model_mse"], frame["no_change_mse"] = (frame[k].map(lambda x: f"{x:.3g}") for k in ("model_mse",
                                                                                                "no_change_mse"))
    frame["ratio"] = frame["ratio"].map(lambda x: f"{x:.2f}")
    return frame


def coverage_table(done: list[dict]) -> pd.DataFrame:
    """Per variant and task, SRA's per-round share of the maze's free cells covered by the round's augmented
    states (and, after the slash, by its newest D^S goals), mean over seeds."""
    rows = [(variant_of(r), r["task"], i + 1, x["aug/coverage_states"], x["aug/coverage_goals"])
            for r in done for i, x in enumerate((r.get("method_info") or {}).get("rounds") or [])
            if "aug/coverage_states" in x]
    frame = pd.DataFrame(rows, columns=["variant", "task", "round", "states", "goals"])
    if not len(frame):
        return frame
    frame = frame.groupby(["variant", "task", "round"], as_index=False).mean()
    frame["cell"] = [f"{a:.0%} / {g:.0%}" for a, g in zip(frame["states"], frame["goals"])]
    wide = frame.pivot(index=["variant", "task"], columns="round", values="cell").reset_index()
    wide.columns = [c if isinstance(c, str) else f"round {c}" for c in wide.columns]
    return wide.fillna("—")


def build_sections(d: ReportData) -> list[Section]:
    """The report's sections, in order; an empty section says why it is empty."""
    variants = sorted(d.per_task["variant"].unique())
    has_table = bool(variants)
    setup = (f"Profile `{d.profile}`: {len(d.done)} done runs of {len(variants)} variant(s), {len(d.failed)} failed. "
             "Scores are D4RL-normalized, 100 * (R - min) / (max - min) with D4RL's reference returns (maze2d: "
             "D4RL's maze2d-v1 figures, rewards under D4RL's geometry); cells are mean ± SE over seeds "
             "(SE = std/sqrt(n), std with ddof 1; — when n = 1). Aggregates: rliable, 95% stratified-bootstrap "
             f"percentile CIs over runs, {d.reps} bootstrap reps, numpy seed {d.seed}; only complete variants. "
             + expert_draw_line(d.done))
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


# ---------------------------------------------------------------- renderers

TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               "±": r"$\pm$", "—": "--", "−": "-"}
CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}th,td{border:1px solid #ccc;"
       "padding:.25em .5em;text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}"
       "code{background:#f4f4f4;padding:0 .2em}img{max-width:100%}figcaption{color:#555;font-size:.9em}")


def tex_escape(text) -> str:
    return "".join(TEX_ESCAPES.get(c, c) for c in str(text))


def render_markdown(title: str, sections: list[Section], figures: dict[str, str]) -> str:
    """Markdown; figures ({stem: caption}) are linked from plots/."""
    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""] + ([s.text, ""] if s.text else [])
        if s.table is not None:
            t = s.table
            lines += [row(t.columns), "|" + "---|" * len(t.columns), *map(row, t.itertuples(index=False)), ""]
    if figures:
        lines += ["## Plots", ""] + [f"![{caption}](plots/{stem}.png)\n" for stem, caption in figures.items()]
    return "\n".join(lines)


def render_latex(sections: list[Section]) -> str:
    """A LaTeX fragment (\\input-able): one tabular per table section."""
    out = ["% generated by `bench report`; needs no package beyond LaTeX itself"]
    for s in sections:
        if s.table is None:
            continue
        t = s.table
        out += [r"\begin{table}[ht]", r"\centering\small", f"\\caption{{{tex_escape(s.title)}}}",
                r"\begin{tabular}{l" + "r" * (len(t.columns) - 1) + "}", r"\hline",
                " & ".join(map(tex_escape, t.columns)) + r" \\", r"\hline",
                *(" & ".join(map(tex_escape, r)) + r" \\" for r in t.itertuples(index=False)),
                r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def markdown_html(text: str) -> str:
    """A section's Markdown (backticks, "- " lists) as HTML; raw HTML in it is escaped, not passed through."""
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": False}).render(text)


def render_html(title: str, sections: list[Section], images: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, figures ({caption: PNG bytes}) as base64 data URIs."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{esc(s.title)}</h2>" + (markdown_html(s.text) if s.text else ""))
        if s.table is not None:
            parts.append(s.table.to_html(index=False, border=0, escape=True, na_rep="—"))
    if images:
        parts.append("<h2>Plots</h2>")
    for caption, png in images.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{esc(caption)}\">"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    return "\n".join(parts + ["</body></html>"])


# ---------------------------------------------------------------- entry point

def compute(results_dir: ResultsDirs, profile: str | None = None, reps: int = BOOTSTRAP_REPS, seed: int = 0,
            paper_dir: Path | None = DEFAULT_PAPER_DIR, progress: Callable[[str], None] | None = None,
            variants: Sequence[str] | None = None) -> ReportData:
    """Load one profile's results and compute every table and statistic of the report."""
    say = progress or (lambda message: None)
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        say(message)

    set_aside: list[dict] = []
    profile, done, failed = load_results(results_dir, profile, warn, variants, set_aside)
    if unscored := [r["run_key"] for r in done if not _finite(r.get("final_score"), r.get("best_score"))]:
        warn(f"left out {len(unscored)} done run(s) without finite final/best scores: {', '.join(unscored)}")
        done = [r for r in done if r["run_key"] not in unscored]
    scores = scores_frame(done)
    paper = load_paper(paper_dir)
    incomplete = incomplete_reasons(scores, set_aside)
    matrices = score_matrices(scores, "last", set_aside)
    say(f"bootstrapping {len(matrices)} complete variant(s) with {reps} reps")
    curves, skipped = curve_frame(done)
    if skipped:
        warn(f"learning curves skip {len(skipped)} run(s) on a minority step grid: {', '.join(skipped)}")
    if len(draws := expert_draws(done)) > 1:
        both = sorted(v for v in set.union(*draws.values()) if sum(v in names for names in draws.values()) > 1)
        warn(expert_draw_line(done) + (f" Under several draws (several runs per seed): {', '.join(both)}."
                                       if both else ""))
    per_task = per_task_table(scores, paper)
    return ReportData(profile, reps, seed, done, failed, warnings, scores, per_task, incomplete, sorted(matrices),
                      aggregate_estimates(matrices, reps, seed), improvement_estimates(matrices, reps, seed),
                      win_tie_loss(per_task, paper), performance_profiles(matrices, reps, seed), curves,
                      paper is not None)


def write_report(results_dir: ResultsDirs, out_dir: Path, profile: str | None = None, reps: int = BOOTSTRAP_REPS,
                 seed: int = 0, paper_dir: Path | None = DEFAULT_PAPER_DIR,
                 progress: Callable[[str], None] | None = None, variants: Sequence[str] | None = None) -> ReportSummary:
    """Write report.md/.html/.tex, scores.csv, per_task.csv, aggregates.csv and plots/ under ``out_dir``.

    ``progress(message)`` receives status lines and warnings (e.g. ``click.echo``). ReportError on user errors.
    """
    d = compute(results_dir, profile, reps, seed, paper_dir, progress, variants)
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
