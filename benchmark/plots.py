"""Figures for ``bench report``: each function takes tidy data and returns a matplotlib Figure.

The caller saves and closes the figures (``benchmark.report``). One colour per variant across all
figures: ``variant_colors`` maps the sorted variant names onto seaborn's colour-blind palette.
"""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from rliable import plot_utils  # noqa: E402

from envs.tasks import task_order  # noqa: E402

PANEL_COLUMNS = 4


def variant_colors(variants) -> dict[str, tuple]:
    """A stable colour per variant (sorted names → colour-blind palette)."""
    names = sorted(set(variants))
    return dict(zip(names, sns.color_palette("colorblind", n_colors=max(len(names), 1))))


def _panels(n: int, width: float = 3.6, height: float = 2.8, sharey: bool = False) -> tuple[Figure, list]:
    """A grid of ``n`` axes, ``PANEL_COLUMNS`` per row; unused cells are hidden. ``sharey``: one y scale for
    all panels (per-task scores side by side must not each get their own axis range)."""
    cols = min(PANEL_COLUMNS, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=sharey)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend_below(fig: Figure, colors: dict[str, tuple]) -> None:
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, list(colors), loc="lower center", ncol=min(len(colors), 5), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    legend_inches = 0.3 * math.ceil(len(colors) / 5) + 0.2
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))


def score_bars(per_task: pd.DataFrame, mean: str = "mean", err: str = "se",
               title: str = "Normalized score, last evaluation (mean ± SE over seeds)") -> Figure:
    """One panel per task, one bar per variant: ``per_task[mean]`` ± ``per_task[err]`` (NaN SE: no bar)."""
    tasks = task_order(per_task["task"])
    colors = variant_colors(per_task["variant"])
    fig, axes = _panels(len(tasks), sharey=True)
    for ax, task in zip(axes, tasks):
        rows = per_task[per_task["task"] == task].sort_values("variant")
        x = np.arange(len(rows))
        ax.bar(x, rows[mean], yerr=rows[err].fillna(0.0), capsize=3,
               color=[colors[v] for v in rows["variant"]])
        ax.set_xticks(x, rows["variant"], rotation=45, ha="right", fontsize="small")
        ax.set_title(task, fontsize="medium")
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.yaxis.set_tick_params(labelleft=True)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def interval_estimates(aggregates: pd.DataFrame) -> Figure:
    """One panel per metric: point estimate (tick) and 95% bootstrap CI (bar) per variant."""
    metrics = list(dict.fromkeys(aggregates["metric"]))
    variants = sorted(aggregates["variant"].unique())
    colors = variant_colors(variants)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 0.9 + 0.45 * len(variants)),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes.flat, metrics):
        rows = aggregates[aggregates["metric"] == metric].set_index("variant")
        for y, variant in enumerate(variants):
            point, lo, hi = rows.loc[variant, ["point", "lower", "upper"]]
            ax.barh(y, hi - lo, left=lo, height=0.6, color=colors[variant], alpha=0.75)
            ax.vlines(point, y - 0.3, y + 0.3, color="k")
        ax.set_yticks(range(len(variants)), variants)
        ax.set_title(metric)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel("normalized score")
    axes[0, 0].invert_yaxis()  # first variant on top (shared y axis)
    fig.tight_layout()
    return fig


def performance_profiles(taus: np.ndarray, profiles: dict[str, np.ndarray],
                         cis: dict[str, np.ndarray] | None = None) -> Figure:
    """Score distributions (fraction of runs with score > tau) with their 95% CI bands (rliable)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(
        profiles, taus, performance_profile_cis=cis, ax=ax, colors=variant_colors(profiles),
        xlabel=r"normalized score $\tau$", ylabel=r"fraction of runs with score $> \tau$",
        labelsize="medium", ticklabelsize="medium")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    fig.tight_layout()
    return fig


def learning_curves(curves: pd.DataFrame) -> Figure:
    """One panel per task, a line per variant: mean evaluation score vs step, band = ± SE."""
    tasks = task_order(curves["task"])
    colors = variant_colors(curves["variant"])
    fig, axes = _panels(len(tasks), sharey=True)
    for ax, task in zip(axes, tasks):
        for variant, rows in curves[curves["task"] == task].groupby("variant", sort=True):
            se = rows["se"].fillna(0.0)
            ax.plot(rows["step"], rows["mean"], color=colors[variant], linewidth=1.5)
            ax.fill_between(rows["step"], rows["mean"] - se, rows["mean"] + se, color=colors[variant],
                            alpha=0.2, linewidth=0)
        ax.set_title(task, fontsize="medium")
        ax.set_xlabel("step", fontsize="small")
        ax.set_ylabel("normalized score", fontsize="small")
        ax.yaxis.set_tick_params(labelleft=True)  # shared scale, but every panel readable on its own
    _legend_below(fig, colors)
    return fig


def save(fig: Figure, stem) -> bytes:
    """Write ``stem``.png and ``stem``.svg, close the figure, return the PNG bytes (for embedding)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    png = buffer.getvalue()
    with open(f"{stem}.png", "wb") as f:
        f.write(png)
    fig.savefig(f"{stem}.svg", bbox_inches="tight")
    plt.close(fig)
    return png


def augmentation_rounds(walls: np.ndarray, rounds: list[np.ndarray], expert: np.ndarray | None = None,
                        title: str = "", goals: list[np.ndarray] | None = None,
                        coverage: list[dict] | None = None) -> plt.Figure:
    """SRA's picture: per round (one panel each), the newest goals and the augmented states over the maze layout,
    titled with the fraction of free cells each covers (``coverage``: the run's per-round ``aug/coverage_*``)."""
    rows, cols = walls.shape
    count = max(len(rounds), 1)
    fig, axes = plt.subplots(1, count, figsize=(2.6 * count, 2.6 * rows / cols + 0.6), squeeze=False)
    for i, ax in enumerate(axes[0]):
        for r, c in np.argwhere(walls):  # cell (r, c) spans x in [c - cols/2, +1], y in [rows/2 - r - 1, +1]
            ax.add_patch(plt.Rectangle((c - cols / 2, rows / 2 - r - 1), 1, 1, color="0.35"))
        if expert is not None:
            ax.scatter(expert[:, 0], expert[:, 1], s=1, c="black", alpha=0.3, label="expert states")
        if i < len(rounds):
            ax.scatter(rounds[i][:, 0], rounds[i][:, 1], s=2, c="tab:orange", alpha=0.4, label="augmented states")
        if goals is not None and i < len(goals) and len(goals[i]):
            ax.scatter(goals[i][:, 0], goals[i][:, 1], s=2, c="tab:blue", alpha=0.6, label="new D^S goals")
        ax.set_xlim(-cols / 2, cols / 2)
        ax.set_ylim(-rows / 2, rows / 2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        label = f"round {i + 1}"
        if coverage is not None and i < len(coverage) and "aug/coverage_states" in coverage[i]:
            label += (f"\ncells: goals {coverage[i]['aug/coverage_goals']:.0%}, "
                      f"aug {coverage[i]['aug/coverage_states']:.0%}")
        ax.set_title(label, fontsize=8)
    if goals is not None:
        handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=l)
                   for c, l in (("tab:blue", "new D^S goals"), ("tab:orange", "augmented states"))]
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 if goals is not None else 0, 1, 0.9 if title else 1))
    return fig
