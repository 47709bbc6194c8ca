"""Dataset content checks, run when a dataset is loaded, generated, fetched or imported.

NaN or garbage in a dataset otherwise trains to a confident wrong number (the normalizer turns NaN, the loss
stays finite), so every array is checked: finite values, shapes against the task, actions inside the action
space, and episode boundaries (one terminal or timeout flag, on each episode's last transition). The first
problem is reported in one line naming the dataset, the field and the first bad row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import BenchError
from envs.tasks import TaskSpec

ACTION_TOLERANCE = 1e-6  # float32 rounding of actions clipped to the bounds


class DatasetDamaged(BenchError):
    """A dataset's content is invalid; the message names the dataset, the field and the first bad row."""


@dataclass(frozen=True)
class Arrays:
    """A dataset as flat transitions (the view methods get) plus where each episode starts."""
    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_starts: np.ndarray


def first_problem(data: Arrays, task: TaskSpec) -> str | None:
    """What is wrong with ``data`` for ``task`` ("observations row 12 (episode 0, step 12) holds nan"), or None."""
    n = len(data.actions)
    if n == 0:
        return "holds no transitions"
    for field, width in (("observations", task.obs_dim), ("actions", task.act_dim), ("next_observations", task.obs_dim)):
        array = getattr(data, field)
        if array.ndim != 2 or array.shape != (n, width):
            return f"{field} have shape {array.shape}, {task.name} expects ({n}, {width})"
    for field in ("terminals", "timeouts"):
        if getattr(data, field).shape != (n,):
            return f"{field} have shape {getattr(data, field).shape}, expected ({n},)"
    for field in ("observations", "actions", "next_observations"):
        array = getattr(data, field)
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            return f"{field} {_where(row, data.episode_starts)} holds {array[row][~np.isfinite(array[row])][0]}"
    low, high = task.action_bounds()
    outside = ((data.actions < low - ACTION_TOLERANCE) | (data.actions > high + ACTION_TOLERANCE)).any(axis=1)
    if outside.any():
        row = int(np.argmax(outside))
        return (f"actions {_where(row, data.episode_starts)} leave the action space [{task.action_low:g}, "
                f"{task.action_high:g}]: {np.round(data.actions[row], 4).tolist()}")
    starts = data.episode_starts
    if not (len(starts) and starts[0] == 0 and (np.diff(starts) > 0).all() and starts[-1] < n):
        return f"episode boundaries are not increasing row indices within [0, {n}): {starts[:5].tolist()}..."
    ends = np.append(starts[1:], n) - 1
    flags = data.terminals.astype(bool) | data.timeouts.astype(bool)
    if not flags[ends].all():
        row = int(ends[np.argmax(~flags[ends])])
        return f"episode boundaries: {_where(row, starts)} ends an episode without a terminal or timeout flag"
    inner = flags.copy()
    inner[ends] = False
    if inner.any():
        row = int(np.argmax(inner))
        return f"episode boundaries: {_where(row, starts)} is flagged terminal/timeout inside an episode"
    return None


def check(data: Arrays, task: TaskSpec, ds_id: str, fix: str) -> None:
    """Raise DatasetDamaged naming ``ds_id``, the field and the first bad row, and ``fix`` (what to do)."""
    if problem := first_problem(data, task):
        raise DatasetDamaged(f"dataset {ds_id} is damaged: {problem}; {fix}")


def _where(row: int, episode_starts: np.ndarray) -> str:
    if not len(episode_starts) or row < episode_starts[0]:
        return f"row {row}"
    episode = int(np.searchsorted(episode_starts, row, side="right") - 1)
    return f"row {row} (episode {episode}, step {row - int(episode_starts[episode])})"
