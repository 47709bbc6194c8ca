"""Named grids: the paper's experiments behind one flag (``bench run --grid paper-table1``).

A named grid lists the paper's methods and tasks. Those this checkout does not have yet (a method not
registered, a task not defined) are left out with a note, so the same command grows with the suite.
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.config import GridFile
from core.errors import BenchError
from envs.tasks import TASKS
from methods.registry import available

MAZE2D = tuple(f"maze2d-{size}-{reward}" for size in ("umaze", "medium", "large") for reward in ("sparse", "dense"))
LOCOMOTION_ENVS = ("hopper", "halfcheetah", "walker2d", "ant")


@dataclass(frozen=True)
class NamedGrid:
    name: str
    description: str
    methods: tuple[str, ...]
    envs: tuple[str, ...]
    seeds: int = 4
    profile: str = "paper"


NAMED_GRIDS: dict[str, NamedGrid] = {g.name: g for g in [
    NamedGrid("paper-table1", "Table 1: SRA and 8 baselines x 14 tasks (6 maze2d, 8 locomotion) x 4 seeds",
              methods=("bc-exp", "demodice", "dwbc", "otil", "clare", "milo", "romi", "uds", "sra"),
              envs=MAZE2D + tuple(f"{env}-{data}" for env in LOCOMOTION_ENVS for data in ("medium", "medium-expert"))),
    NamedGrid("paper-table4", "Table 4: SRA vs UDS on four offline RL learners x 7 tasks x 4 seeds",
              methods=tuple(f"{m}{suffix}" for suffix in ("", "-td3bc", "-awac", "-sacn") for m in ("uds", "sra")),
              envs=tuple(t for t in MAZE2D if t.endswith("sparse")) + tuple(f"{e}-medium" for e in LOCOMOTION_ENVS)),
]}


def named_grid(name: str) -> tuple[GridFile, list[str]]:
    """The grid as a GridFile restricted to what exists here, and notes naming what was left out."""
    try:
        grid = NAMED_GRIDS[name]
    except KeyError:
        raise BenchError(f"unknown grid {name!r}; named grids: {', '.join(NAMED_GRIDS)}") from None
    registered = available()
    methods = [m for m in grid.methods if m in registered]
    envs = [t for t in grid.envs if t in TASKS]
    notes = []
    if missing := [m for m in grid.methods if m not in registered]:
        notes.append(f"{name}: leaving out methods not in this checkout: {', '.join(missing)}")
    if missing := [t for t in grid.envs if t not in TASKS]:
        notes.append(f"{name}: leaving out tasks not in this checkout: {', '.join(missing)}")
    return GridFile(methods=methods, envs=envs, seeds=grid.seeds, profile=grid.profile), notes
