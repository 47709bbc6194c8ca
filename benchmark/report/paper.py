"""Comparison with the paper's tables (reports/paper/*.csv): its numbers beside ours per task, and Table 4's
W/T/L of SRA+X over UDS+X per learner."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmark.report.stats import per_task_stats
from benchmark.report.tables import num, pm
from envs.tasks import task_order

DEFAULT_PAPER_DIR = Path(__file__).resolve().parents[2] / "reports" / "paper"
PAPER_FILES = ("table1_main.csv", "table4_learners.csv")
PAPER_ALIASES = {"sra": "sra-iql", "uds": "uds-iql", "sra-iql": "sra", "uds-iql": "uds"}
LEARNERS = ("iql", "td3bc", "awac", "sacn")

MAZE_NOTE = ("Maze2d runs evaluated with D4RL's protocol (resets, target, reward radius 0.5, reference returns) "
             "are on the paper's scale, with the same physics on Gymnasium-Robotics' PointMaze; their data come from "
             "D4RL's waypoint-controller recipe (generated here) or the official files (imported). D4RL's maze2d "
             "'expert' reference is not an expert: a real expert scores ~150-200 on it. Maze2d runs from before "
             "this protocol (data v0) are on another scale: no difference is shown for them.")
LOCOMOTION_NOTE = ("Locomotion paper numbers come from D4RL's -v2 datasets; only tasks whose data source is "
                   "imported-d4rl (see Provenance) ran on those data, the others on datasets of other behaviour "
                   "policies (generated here, or Minari's v5 datasets).")


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
    out = per_task_stats(scores)
    index = _paper_index(paper)
    entries = [paper_entry(index, v, t) for v, t in zip(out["variant"], out["task"])]
    out["paper_mean"] = [e[0] for e in entries]
    out["paper_pm"] = [e[1] for e in entries]
    out["diff"] = out["mean"] - out["paper_mean"]
    return out


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
    rows = [{"learner": r["learner"], "task": r["task"], "SRA": pm(tuple(r["sra"])), "UDS": pm(tuple(r["uds"])),
             "ours": r["ours"], "paper SRA": pm(r["paper_sra"]), "paper UDS": pm(r["paper_uds"]),
             "paper": r["paper"] or "—"} for r in table4_pairs(per_task, paper)]
    return pd.DataFrame(rows, columns=["learner", "task", "SRA", "UDS", "ours", "paper SRA", "paper UDS", "paper"])


def paper_table(per_task: pd.DataFrame, same_scale: Sequence[str] = ()) -> pd.DataFrame:
    """Ours beside the paper's, tasks in registry order. "ours - paper" only for ``same_scale`` tasks (data and
    references as the paper's: imported D4RL data); elsewhere a difference would compare different scales."""
    rows = per_task[per_task["paper_mean"].notna()]
    order = {task: i for i, task in enumerate(task_order(rows["task"]))}
    rows = rows.assign(order=rows["task"].map(order)).sort_values(["order", "variant"])
    table = pd.DataFrame({"task": rows["task"], "variant": rows["variant"],
                          "ours (last)": [f"{num(m)} ± {num(e)}" for m, e in zip(rows["mean"], rows["se"])],
                          "paper": [f"{num(m)} ± {num(e)}" for m, e in zip(rows["paper_mean"], rows["paper_pm"])]})
    if rows["task"].isin(list(same_scale)).any():
        table["ours - paper"] = [num(d) if t in same_scale else "—" for t, d in zip(rows["task"], rows["diff"])]
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
