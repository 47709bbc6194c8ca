"""The results store: one directory per run, one atomically written ``result.json`` marking it done.

Layout under the results root (``--out``, default ``./results``)::

    runs/<method>/<task>/seed<k>-<config hash>/
        result.json      # written last, atomically: its presence means the run is finished (or failed)
        checkpoint.pt    # latest checkpoint (atomic), removed once the run is done
        log.csv          # training scalars and evaluations
        config.json      # the resolved run config (written at start)
        artifacts.npz    # optional: arrays a method exposes through ``artifacts()`` (SRA's augmented states)
        run.lock         # the per-run OS file lock of the process training it (benchmark/locks.py)

A result file that cannot be parsed is moved aside to ``result.json.corrupt-<n>`` (never deleted) and
the run counts as not done, so the next ``bench run`` redoes it; until then reports count it as a missing
seed (``iter_set_aside``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "log.csv"
CONFIG_FILE = "config.json"
ARTIFACTS_FILE = "artifacts.npz"  # optional method data for plots (e.g. SRA's augmented states)
RESULT_SCHEMA = 1


class CorruptResultError(ValueError):
    """A result file exists but is not a valid result."""


def run_dir(root: Path, run_key: str) -> Path:
    return Path(root) / "runs" / run_key


def read_result(path: Path) -> dict:
    """Parse one result file; raise CorruptResultError naming the file if it is not a valid result."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptResultError(f"corrupt result file {path}: {e}") from e
    required = {"run_key", "method", "task", "seed", "profile", "status"}
    if not isinstance(result, dict) or not required <= result.keys():
        missing = sorted(required - set(result)) if isinstance(result, dict) else sorted(required)
        raise CorruptResultError(f"corrupt result file {path}: missing keys {missing}")
    return result


def set_aside(path: Path) -> Path:
    """Move a corrupt file out of the way (never delete a user's file) and return its new name."""
    n = 0
    while (target := path.with_name(f"{path.name}.corrupt-{n}")).exists():
        n += 1
    os.replace(path, target)
    return target


def load_result(root: Path, run_key: str, warn=print) -> dict | None:
    """The run's result if it finished (done or failed); None if absent or corrupt (set aside)."""
    path = run_dir(root, run_key) / RESULT_FILE
    if not path.exists():
        return None
    try:
        return read_result(path)
    except CorruptResultError as e:
        moved = set_aside(path)
        warn(f"warning: {e}; moved it to {moved.name} and will redo the run")
        return None


def iter_results(root: Path, warn=print) -> Iterator[dict]:
    """Every parseable result under ``root``; corrupt ones are set aside with a warning naming them."""
    for path in sorted(Path(root).glob(f"runs/**/{RESULT_FILE}")):
        try:
            yield read_result(path)
        except CorruptResultError as e:
            moved = set_aside(path)
            warn(f"warning: {e}; moved it to {moved}")


def iter_set_aside(root: Path) -> Iterator[dict]:
    """Runs whose result file was set aside as corrupt and that have not been redone yet: their run key,
    variant, task, seed and profile (from ``config.json``, written when the run started; else from the path,
    with variant = method and profile None = unknown). Reports count those of their profile as missing seeds."""
    directories = sorted({p.parent for p in Path(root).glob(f"runs/**/{RESULT_FILE}.corrupt-*")})
    for directory in directories:
        if (directory / RESULT_FILE).exists():
            continue
        method, task, name = directory.relative_to(Path(root) / "runs").parts[-3:]
        info = {"run_key": f"{method}/{task}/{name}", "method": method, "variant": method, "task": task,
                "seed": int(name[4:].split("-")[0]) if name.startswith("seed") else None, "profile": None}
        try:
            config = json.loads((directory / CONFIG_FILE).read_text())
            info.update({k: config[k] for k in ("run_key", "method", "variant", "task", "seed", "profile")})
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if info["seed"] is not None:
            yield info
