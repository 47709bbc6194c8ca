"""Display tables: statistics formatted into strings ("mean ± SE", "point [lower, upper]"), one DataFrame per
report section, rendered without index (benchmark.report.render)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report.load import variant_of
from benchmark.report.stats import METRICS
from envs.tasks import task_order


def num(x: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals; "—" for None, NaN and infinities."""
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def ci(point: float, lower: float, upper: float, digits: int = 1) -> str:
    return f"{num(point, digits)} [{num(lower, digits)}, {num(upper, digits)}]"


def pm(entry: tuple[float, float] | None) -> str:
    """"mean ± error" of a (mean, error) pair; "—" for None."""
    return "—" if entry is None else f"{num(entry[0])} ± {num(entry[1])}"


def score_table(per_task: pd.DataFrame, complete: list[str], mean: str = "mean", err: str = "se") -> pd.DataFrame:
    """Rows = tasks, a column per variant: "mean ± SE" ("(n=k)" where the variant has fewer seeds than
    on its other tasks, "missing" where it has none), plus a mean-over-tasks row for complete variants."""
    most = per_task.groupby("variant")["n"].transform("max")
    cells = [f"{num(m)} ± {num(e)}" + (f" (n={n})" if n < k else "")
             for m, e, n, k in zip(per_task[mean], per_task[err], per_task["n"], most)]
    table = per_task.assign(cell=cells).pivot(index="task", columns="variant", values="cell").fillna("missing")
    table = table.reindex(task_order(table.index))
    overall = per_task.groupby("variant")[mean].mean()
    table.loc["mean over tasks"] = [num(overall[v]) if v in complete else "—" for v in table.columns]
    return table.reset_index().rename_axis(columns=None)


def aggregate_table(aggregates: pd.DataFrame) -> pd.DataFrame:
    cells = [r.note or ci(r.point, r.lower, r.upper) for r in aggregates.itertuples()]
    table = aggregates.assign(cell=cells).pivot(index="variant", columns="metric", values="cell")
    return table[list(METRICS)].reset_index().rename_axis(columns=None)


def improvement_table(improvement: pd.DataFrame) -> pd.DataFrame:
    cells = [r.note or ci(r.point, r.lower, r.upper, 2) for r in improvement.itertuples()]
    table = improvement.assign(cell=cells).pivot(index="x", columns="y", values="cell").fillna("—")
    return table.reset_index().rename(columns={"x": "P(row > column)"}).rename_axis(columns=None)


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
    frame["last"], frame["best"] = frame["last"].map(num), frame["best"].map(num)
    return frame.rename(columns={"last": "% of our expert (last)", "best": "% of our expert (best)"})


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
