"""The method interface: the runner owns the loop, evaluation, logging, checkpoints and seeding;
a method owns learning."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch

from core.errors import BenchError
from core.tasks import TaskInfo
from methods.data import ImitationData
from methods.state import load_part, part_state, restored_value, saved_value

Progress = Callable[..., Any]  # tqdm-like: progress(iterable, desc=..., total=...) -> iterable


class Method:
    """Subclass, set ``name``, ``description`` and ``Config`` (a dataclass, every field defaulted), implement
    ``update`` / ``act`` and list what a checkpoint must hold once: ``parts()`` (networks, optimizers, learners,
    samplers, generators) and ``state_values`` (plain attributes); ``state_dict`` / ``load_state_dict`` follow
    from them. ``pretrain`` is optional; time phases with ``self.timer``.

    The method's file declares everything about it: ``budgets`` and ``run_steps`` (what each profile gives it),
    ``task_defaults`` (hyper-parameters that depend on the task). A run's config is, later winning: the Config
    defaults <- ``task_defaults(task)`` <- ``budgets[profile]`` <- the user's overrides
    (``benchmark.config.method_config``), so every stored config holds concrete values."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type]
    # Config overrides per profile name, e.g. {"smoke": {"model": {"max_steps": 50}}, "quick": {...}}: shrunk
    # phases (dynamics models, CVAE, ...) for the cheaper profiles; a profile not named runs the Config defaults.
    # A method with heavy phases (a ``pretrain``) needs a "smoke" entry, {} if it has nothing to shrink
    # (tests/methods/test_method_contract.py checks it), so CI never runs them full-size.
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Learner updates per run where the method has its own, profile name -> task family -> updates (SRA's
    # 200k / 500k at paper); elsewhere the profile's ``num_steps``. The runner owns the number (``num_steps``).
    run_steps: ClassVar[dict[str, dict[str, int]]] = {}
    # Plain attributes the state dict saves by value under their own names (counters, tensors, numpy arrays,
    # dicts, lists): copied on save, restored before the parts load (a subclass may rebuild from them).
    state_values: ClassVar[tuple[str, ...]] = ()
    # The phases ``self.timer`` reports from the start (0 s until timed), so every run lists the same ones.
    phases: ClassVar[tuple[str, ...]] = ()
    _compiled = None  # its own compiled update (a methods.compiled_step.CompiledUpdate), set by compile_update

    def __init__(self, task: TaskInfo, data: ImitationData, config: Any, seed: int, device: torch.device,
                 num_steps: int):
        """``num_steps``: the run's learner updates, as the runner will call ``update``; schedules that span the
        run (SRA's rounds and lr drop, OTIL's cosine) read it."""
        self.task, self.data, self.config, self.seed, self.device = task, data, config, seed, torch.device(device)
        self.num_steps = num_steps
        self.timer = PhaseTimer(self.device, self.phases)

    @classmethod
    def task_defaults(cls, task: TaskInfo) -> dict[str, Any]:
        """Config values that depend on the task (e.g. SRA's model ratio per maze size), as overrides (nested
        groups as dicts); resolved before the run, so the stored config holds them. Default: none."""
        return {}

    def pretrain(self, progress: Progress) -> dict[str, float] | None:
        """Optional phases before the learner loop (dynamics models, CVAE, discriminators). Returns scalars
        about them (e.g. a model's fit) or None; the runner logs them as ``pretrain/<name>`` at step 0 and
        stores them in result.json as ``pretrain_metrics``."""
        return None

    def update(self, step: int) -> dict[str, float]:
        """One learner step; returns scalars to log (tensors are fine: the runner syncs them rarely)."""
        raise NotImplementedError

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for a batch of raw (unnormalized) observations, shape (B, act_dim)."""
        raise NotImplementedError

    def compile_update(self) -> bool:
        """A method with its own losses (no learner among its parts) runs its later updates as one compiled graph
        (``bench run --compile``): it keeps a ``methods.compiled_step.CompiledUpdate`` as ``self._compiled``, calls
        it in ``update`` and returns True. The default, False, leaves the compiling to its learners
        (``methods.learners.compile_method``)."""
        return False

    @property
    def compile_s(self) -> float:
        """Seconds its own compiled update has spent compiling (0 where there is none)."""
        return self._compiled.compile_s if self._compiled is not None else 0.0

    def parts(self) -> dict[str, Any]:
        """name -> stateful object: anything with ``state_dict`` / ``load_state_dict``, a ``torch.Generator``, a
        dict of such objects, or None for an optional part this configuration lacks (``methods.state``)."""
        return {}

    def artifacts(self) -> dict[str, np.ndarray]:
        """Arrays the runner saves beside the result as artifacts.npz when the run is done (e.g. SRA's augmented
        states for ``bench plot``); {} writes no file."""
        return {}

    def result_info(self) -> dict[str, Any]:
        """JSON-ready facts about the finished run that the runner stores in result.json as ``method_info``
        (e.g. a model's fit, SRA's rounds); {} stores nothing."""
        return {}

    def state_dict(self) -> dict:
        """Everything needed to resume exactly: each part's state, each of ``state_values``, the phase times."""
        state = {name: part_state(part) for name, part in self.parts().items()}
        if clash := set(state) & {*self.state_values, PHASE_TIMES}:
            raise ValueError(f"{self.name}: {sorted(clash)} named twice in parts() / state_values / the timer")
        state.update({name: saved_value(getattr(self, name)) for name in self.state_values})
        state[PHASE_TIMES] = self.timer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        for name in self.state_values:
            setattr(self, name, restored_value(state[name], self.device))
        # a checkpoint from before the timer was part of every method's state holds no phase times
        self.timer.load_state_dict(state.get(PHASE_TIMES, {}))
        for name, part in self.parts().items():
            load_part(part, state[name], name)


PHASE_TIMES = "phase_times"  # the timer's key in a method's state dict


class PhaseTimer:
    """Seconds per named phase of a method (``with self.timer("model"): ...``), summed over its uses; the
    runner reports them as ``method/<phase>`` in result.json. Queued GPU work is waited for at both ends, so a
    phase is charged with its own device time. Part of the method's state: a resumed run keeps the totals."""

    def __init__(self, device: torch.device | str, phases: tuple[str, ...] = ()):
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {phase: 0.0 for phase in phases}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        yield
        synchronize(self.device)
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def state_dict(self) -> dict[str, float]:
        return dict(self.seconds)

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.seconds = {**self.seconds, **state}


FAMILIES = ("maze2d", "locomotion")  # the task families methods keep per-task defaults for


def task_kind(task: TaskInfo, method: str) -> str:
    """What per-task defaults are keyed by: "maze2d", or a locomotion task's robot ("hopper", ...). A task of
    another family is an error naming ``method``, not silently given locomotion's defaults."""
    if task.family == "maze2d":
        return "maze2d"
    if task.family == "locomotion":
        return task.name.split("-")[0]
    raise BenchError(f"{method} keeps per-task defaults for {' and '.join(FAMILIES)} tasks only; {task.name} is a "
                     f"{task.family!r} task")


def maze_value(table: dict[str, Any], task: TaskInfo, method: str, field: str) -> Any:
    """``table``'s value for a maze2d task's maze size; a maze the table lacks is an error naming ``field``."""
    if task.maze_map not in table:
        raise BenchError(f"{method} has {field} defaults for the {', '.join(table)} mazes; {task.name} has maze "
                         f"{task.maze_map!r}: set {method}.{field}")
    return table[task.maze_map]


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work (a no-op on CPU): call before reading a clock that times device work."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def act_numpy(actor: torch.nn.Module, normalizer, obs: np.ndarray, device: torch.device) -> np.ndarray:
    """Run ``actor.act`` on raw observations: normalize, batch on ``device``, return float32 numpy."""
    obs_t = torch.as_tensor(normalizer(np.asarray(obs, np.float32)), device=device)
    return actor.act(obs_t).cpu().numpy().astype(np.float32)
