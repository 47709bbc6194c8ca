"""Loading the results store into the report's data contract: one profile's done runs and score matrices."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import pandas as pd

from benchmark.store import iter_results, iter_set_aside
from core.errors import BenchError

SCORE_COLUMNS = ["variant", "task", "seed", "last", "best", "profile"]

ResultsDirs = Union[Path, str, Sequence[Union[Path, str]]]


class ReportError(BenchError, ValueError):
    """A user error; the one-line message says what to do (the CLI prints it as one line)."""


@dataclass
class Loaded:
    """One profile's results from one or more results directories."""
    profile: str
    done: list[dict]
    failed: list[dict]
    set_aside: list[dict] = field(default_factory=list)  # corrupt results not redone yet: missing seeds
    warnings: list[str] = field(default_factory=list)    # corrupt result files set aside while loading


def results_dirs(dirs: ResultsDirs) -> list[Path]:
    return [Path(dirs)] if isinstance(dirs, (str, Path)) else [Path(d) for d in dirs]


def load_results(dirs: ResultsDirs, profile: str | None = None, variants: Sequence[str] | None = None) -> Loaded:
    """The done and failed results of one profile, the runs of that profile whose result file was set aside as
    corrupt (now or by an earlier command) and not redone, and the warnings about files set aside now.

    ``variants`` keeps only those method variants (e.g. to put bc-exp from another grid beside new methods).
    A run found in two directories is ambiguous and refused. ReportError on user errors.
    """
    dirs = results_dirs(dirs)
    where = ", ".join(map(str, dirs))
    results, seen, warnings = [], {}, []
    for directory in dirs:
        for result in (iter_results(directory, warnings.append) if directory.is_dir() else []):
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
    set_aside = [r for d in dirs if d.is_dir() for r in iter_set_aside(d)
                 if r["profile"] == profile and (variants is None or r["variant"] in variants)]
    return Loaded(profile, [r for r in chosen if r["status"] == "done"], [r for r in chosen if r["status"] != "done"],
                  set_aside, warnings)


def finite(*values) -> bool:
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


def expert_draws(runs: list[dict]) -> dict[str, set[str]]:
    """{D^E draw: variants run under it}; results from before ``data.expert_draw`` existed used "first"."""
    draws: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        draws[(r.get("data") or {}).get("expert_draw", "first")].add(variant_of(r))
    return dict(draws)


def shared_training_line(runs: list[dict]) -> str:
    """A caveat when tasks were scored from one training (maze2d sparse and dense: the runner's ``trained_with``):
    such runs are not independent, and the bootstrap, which resamples runs per task, does not know it."""
    twins = [r for r in runs if r.get("trained_with")]
    if not twins:
        return ""
    trainings = len({frozenset([r["run_key"], *r["trained_with"]]) for r in twins}) + len(runs) - len(twins)
    return (f"{len(twins)} of the {len(runs)} runs share their training with a twin task (one policy scored under "
            f"both maze2d rewards): {trainings} trainings in all, so CIs over tasks are narrower than as many "
            "independent runs would give.")


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
