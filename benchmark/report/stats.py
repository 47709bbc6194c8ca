"""Statistics over the score matrices: per-task mean ± SE, rliable aggregates with stratified-bootstrap CIs,
probability of improvement, performance profiles and learning curves.

rliable draws from numpy's global state and ignores its own seed, so ``np.random.seed(seed)`` precedes every
rliable call, and there is one call per variant (per pair), so a variant's CIs do not depend on the others.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics

from benchmark.report.load import variant_of

BOOTSTRAP_REPS = 5000  # measured: 10 variants x 14 tasks x 4 seeds, whole report ~16 s on 2 cores (10000: ~28 s)
GAMMA = 100.0  # optimality-gap threshold: scores are on the 0-100 scale
METRICS = ("IQM", "Mean", "Median", "Optimality gap")


def per_task_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, task): n, mean/std/se of last and best (SE = std with ddof 1 / sqrt(n))."""
    groups = scores.groupby(["variant", "task"], sort=True)
    out = pd.DataFrame({"n": groups["last"].count(), "mean": groups["last"].mean(),
                        "std": groups["last"].std(ddof=1), "best_mean": groups["best"].mean(),
                        "best_std": groups["best"].std(ddof=1)}).reset_index()
    out["se"] = out["std"] / np.sqrt(out["n"])
    out["best_se"] = out["best_std"] / np.sqrt(out["n"])
    return out[["variant", "task", "n", "mean", "std", "se", "best_mean", "best_std", "best_se"]]


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
    """P(X > Y) with 95% CIs for every ordered pair of variants; ``pair`` is "X,Y". P(Y > X) = 1 - P(X > Y) on
    the same resamples, so each unordered pair is bootstrapped once and mirrored."""
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


def curve_frame(done: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """Mean ± SE of the curve score per (variant, task, step) and the run keys skipped: per (variant, task),
    the step grid most seeds share counts; seeds on another grid are skipped."""
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
