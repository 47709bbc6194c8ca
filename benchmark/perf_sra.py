"""``bench perf sra``: what SRA's model training and augmentation cost next to its learner, at a profile's budgets.

A ``paper``-profile SRA run is hours of work, so this times samples of each phase on the task's real data with
the real SRA object and projects each to the profile's step counts:

- the dynamics model: ``model_steps`` gradient steps of the run's ensemble, x the steps of a full fit
  (its epochs over D^E u D^S; a model with a holdout may stop sooner, so that projection is an upper bound);
- the CVAE reverse policy (locomotion): ``cvae_steps`` steps, x its configured steps;
- augmentation: the run's first ``rounds`` rounds in full (goals, h' reverse steps, resampling, mixing), their
  mean x the run's number of rounds;
- the learner: ``learner_updates`` of ``SRA.update`` after those rounds (the mixture batch then includes
  augmented data), x the run's updates.

Evaluation counts on neither side, and the model and CVAE are timed as trained from scratch (a run that finds
them in the model cache skips that cost). Issue 5's target: model + reverse policy + augmentation <= 25% of the
learner.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import torch

from core.errors import BenchError
from methods.base import synchronize

TARGET = 0.25  # (model + reverse policy + augmentation) / learner


@dataclass(frozen=True)
class Phase:
    name: str
    timed: int          # steps (updates, rounds) timed
    seconds: float      # their wall time
    total: int          # steps of this phase in a whole run
    setup_s: float = 0  # one-off time before the first step (data to the device, shuffles), counted once

    @property
    def projected_s(self) -> float:
        return self.setup_s + self.seconds / max(self.timed, 1) * self.total


@dataclass
class SRACost:
    method: str
    task: str
    profile: str
    device: str
    device_name: str
    threads: int
    data_rows: int                        # |D^E| + |D^S| (after SRA's drop_last)
    phases: list[Phase] = field(default_factory=list)
    peak_memory_mb: float | None = None   # peak CUDA memory allocated (None on CPU)

    @property
    def learner_s(self) -> float:
        return sum(p.projected_s for p in self.phases if p.name == "learner")

    @property
    def overhead_s(self) -> float:
        return sum(p.projected_s for p in self.phases if p.name != "learner")

    @property
    def ratio(self) -> float:
        return self.overhead_s / self.learner_s


class StepClock:
    """A ``progress`` stand-in for a training loop: notes when step ``skip`` starts (the earlier steps are
    warm-up) and counts the steps; the caller reads the clock once the loop has returned."""

    def __init__(self, device: torch.device, skip: int = 3):
        self.device, self.skip, self.steps, self.started_at = device, skip, 0, None

    def __call__(self, iterable: Iterable, **_) -> Iterable:
        for self.steps, item in enumerate(iterable, start=1):
            if self.steps == self.skip + 1:
                synchronize(self.device)
                self.started_at = time.perf_counter()
            yield item


def time_loop(fit: Callable[[Callable], object], device: torch.device, name: str, total: int,
              skip: int = 3) -> Phase:
    """Run ``fit(progress)`` (a loop of a few steps) and time its steps after the first ``skip``; the time
    before step ``skip`` beyond ``skip`` steps' worth is the phase's setup."""
    clock = StepClock(device, skip)
    synchronize(device)
    called = time.perf_counter()
    fit(clock)
    synchronize(device)
    ended = time.perf_counter()
    if clock.started_at is None:
        raise BenchError(f"time {name} over more than {skip} steps")
    timed = clock.steps - skip
    seconds = ended - clock.started_at
    setup = max(0.0, clock.started_at - called - skip * seconds / max(timed, 1))
    return Phase(name, timed, seconds, total, setup)


def measure_sra(method: str = "sra", task: str = "maze2d-umaze-sparse", profile: str = "paper",
                device: str = "auto", seed: int = 0, model_steps: int = 50, cvae_steps: int = 200, rounds: int = 1,
                learner_updates: int = 200, overrides: dict | None = None,
                log: Callable[[str], None] = lambda _: None) -> SRACost:
    """Time SRA's phases for one (method, task, profile) and project them to a whole run (see module doc)."""
    from benchmark.config import resolve_config
    from benchmark.grid import expand_grid
    from benchmark.profiles import get_profile
    from benchmark.runner import load_imitation_data, resolve_device
    from methods.data import Transitions
    from methods.registry import available, get_method
    from methods.sra import SRA
    from envs.tasks import get_task
    from benchmark.perf import device_name

    sra_methods = [name for name, cls in available().items() if issubclass(cls, SRA) and cls.Config().augment]
    if method not in sra_methods:
        raise BenchError(f"bench perf sra times SRA's phases; valid methods: {', '.join(sra_methods)}")
    chosen = get_profile(profile)
    spec = expand_grid([method], [task], [seed], chosen, {method: overrides} if overrides else None)[0]
    cls, spec_task, dev = get_method(method), get_task(task), resolve_device(device)
    config = resolve_config(cls, spec.config)
    log(f"loading {task} ({chosen.data} data)")
    data = load_imitation_data(spec_task, chosen.data, chosen.expert_episodes)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    num_steps = spec.settings["num_steps"]
    sra = cls(spec_task, data, config, seed, dev, num_steps)
    both = Transitions.concat(sra.expert, sra.supplementary)
    cost = SRACost(method, task, profile, str(dev), device_name(dev), torch.get_num_threads(), len(both))

    model_total = sra.model.planned_steps(len(both))[1]
    log(f"model: {model_steps} of {model_total} gradient steps")
    model = type(sra.model)(spec_task.obs_dim, spec_task.act_dim, replace(config.model, max_steps=model_steps + 3),
                            data.normalizer, config.direction).to(dev)
    cost.phases.append(time_loop(lambda clock: model.fit(both, seed, clock), dev, "model", model_total))
    if sra.cvae is not None:
        log(f"reverse policy: {cvae_steps} of {config.cvae.num_steps} CVAE steps")
        cvae = type(sra.cvae)(spec_task.obs_dim, spec_task.act_dim, replace(config.cvae, num_steps=cvae_steps + 3))
        cvae.to(dev)
        cond = data.normalizer(torch.as_tensor(both.next_observations, device=dev))
        act = torch.as_tensor(both.actions, device=dev)
        cost.phases.append(time_loop(lambda clock: cvae.fit(cond, act, sra.generator, clock), dev,
                                     "reverse policy", config.cvae.num_steps))

    timed_rounds = min(rounds, len(sra.round_steps))
    seconds = 0.0
    for i in range(timed_rounds):
        log(f"augmentation: round {i + 1} of {len(sra.round_steps)}")
        synchronize(dev)
        start = time.perf_counter()
        sra.augmentation_round()
        synchronize(dev)
        seconds += time.perf_counter() - start
    if sra.round_steps:
        cost.phases.append(Phase("augmentation", timed_rounds, seconds, len(sra.round_steps)))

    log(f"learner: {learner_updates} of {num_steps} updates")
    cost.phases.append(time_loop(lambda clock: [sra.update(-1) for _ in clock(range(learner_updates + 3))], dev,
                                 "learner", num_steps))
    if dev.type == "cuda":
        cost.peak_memory_mb = torch.cuda.max_memory_allocated(dev) / 2**20
    return cost


def _duration(seconds: float) -> str:
    return (f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60
            else f"{seconds:.1f} s")


def format_cost(cost: SRACost) -> str:
    """The table ``bench perf sra`` prints."""
    lines = [f"{cost.method} on {cost.task}, {cost.profile} profile: {cost.data_rows:,} rows of D^E u D^S; "
             f"device {cost.device} ({cost.device_name}), {cost.threads} torch thread(s)"
             + (f", peak CUDA memory {cost.peak_memory_mb:,.0f} MB" if cost.peak_memory_mb is not None else ""),
             "",
             f"{'phase':<16} {'timed':>14} {'per step':>11} {'whole run':>12} {'projected':>11}"]
    for p in cost.phases:
        unit = "rounds" if p.name == "augmentation" else "steps"
        each = p.seconds / max(p.timed, 1)
        each_text = f"{each:>8.1f} s " if each >= 1 else f"{each * 1e3:>8.2f} ms"
        lines.append(f"{p.name:<16} {p.timed:>7} {unit:<6} {each_text} {p.total:>12,} {_duration(p.projected_s):>11}")
    verdict = "ok" if cost.ratio <= TARGET else "above target"
    overhead = " + ".join(p.name for p in cost.phases if p.name != "learner")
    lines += ["", f"{overhead} = {_duration(cost.overhead_s)} = {cost.ratio:.1%} of the learner's "
                  f"{_duration(cost.learner_s)}  [target <= {TARGET:.0%}: {verdict}]",
              "projected from the timed steps; evaluation is not counted"]
    return "\n".join(lines)
