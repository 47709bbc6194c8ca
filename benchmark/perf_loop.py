"""``bench perf loop``: a whole run's speed, not only the update's.

``bench perf`` times sample + update on synthetic data; a run also pretrains, logs, checkpoints and evaluates.
This runs each method exactly as ``bench run`` does (the runner, the profile's data, budgets and evaluation
protocol) in a scratch results directory, and reads the phases the runner records. With ``steps`` below the
profile's, the run is cut short and the phases are projected to a full run: pretraining as measured, the
training loop at its measured steps/s, evaluations at their measured cost, and (``--compile``) the one-off
compilation once, as measured (the runner's ``compile`` phase, not in steps/s). (A cut run has fewer of SRA's
augmentation rounds, so its projection leaves out the missing rounds' cost; run the full budget to see it.)
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from benchmark.estimate import evaluations


@dataclass(frozen=True)
class LoopTiming:
    method: str
    task: str
    steps: int                 # training steps run
    full_steps: int            # the profile's
    pretrain_s: float
    update_s: float            # the training loop: sampling, updates, logging (evaluations and pretraining apart)
    eval_s: float
    evaluations: int           # run
    full_evaluations: int      # in a full run
    compile_s: float = 0.0     # the compiled updates' one-off compilation (``--compile``), apart from update_s

    @property
    def steps_per_s(self) -> float:
        """Training-loop steps per second (sampling, update and logging)."""
        return self.steps / self.update_s

    @property
    def eval_each_s(self) -> float:
        return self.eval_s / self.evaluations

    @property
    def full_run_s(self) -> float:
        """A full run's wall time projected from this one."""
        return (self.pretrain_s + self.compile_s + self.full_steps / self.steps_per_s
                + self.full_evaluations * self.eval_each_s)

    @property
    def whole_steps_per_s(self) -> float:
        """The profile's steps over the projected full-run time: everything amortized."""
        return self.full_steps / self.full_run_s


def time_loop(method: str, task: str, profile: str = "quick", steps: int | None = None, seed: int = 0,
              device: str = "cpu", threads: int | None = 1, show_progress: bool = False,
              compile: bool = False) -> LoopTiming:
    """Run ``method`` on ``task`` for ``steps`` (default: the profile's) as ``bench run`` would (``compile``: as
    ``bench run --compile``), in a temporary results directory (removed afterwards), and return its timings.
    The task's data must exist."""
    from benchmark.grid import expand_grid
    from benchmark.profiles import get_profile
    from benchmark.runner import RunOptions, run_one
    from core.errors import BenchError
    full = get_profile(profile)
    budget = replace(full, num_steps=min(steps, full.num_steps)) if steps else full
    spec = expand_grid([method], [task], [seed], budget, compile=compile)[0]
    full_spec = expand_grid([method], [task], [seed], full, compile=compile)[0]
    with tempfile.TemporaryDirectory(prefix="bench-perf-loop-") as scratch:
        options = RunOptions(root=Path(scratch), device=device, threads=threads, show_progress=show_progress,
                             share_training=False)
        result = run_one(spec, options)
    if result.get("status") != "done":
        raise BenchError(f"{method} on {task} failed while timing: {result.get('error')}")
    phases = result["phase_times_s"]
    return LoopTiming(method, task, spec.settings["num_steps"], full_spec.settings["num_steps"], phases["pretrain"],
                      phases["update"], phases["eval"], len(result["curve"]["step"]), evaluations(full_spec),
                      phases.get("compile", 0.0))


def format_loop(rows: list[LoopTiming], profile: str, threads: int | None, device_name: str,
                compile: bool = False) -> str:
    """The table ``bench perf loop`` prints; ``compile``: the runs took ``--compile`` (a compile s column)."""
    lines = [f"whole runs at the {profile} profile, {threads or 'default'} torch thread(s), {device_name}"
             f"{', compiled updates' if compile else ''}; a run trains one task (bench run trains maze2d's "
             "sparse/dense twins once and evaluates both)", "",
             f"{'method':<10} {'task':<22} {'steps':>6} {'steps/s':>8} {'pretrain s':>10} "
             + (f"{'compile s':>9} " if compile else "") + f"{'eval s':>7} {'full run':>9} {'whole steps/s':>13}"]
    for r in rows:
        lines.append(f"{r.method:<10} {r.task:<22} {r.steps:>6} {r.steps_per_s:>8.1f} {r.pretrain_s:>10.1f} "
                     + (f"{r.compile_s:>9.1f} " if compile else "")
                     + f"{r.eval_each_s:>7.1f} {_duration(r.full_run_s):>9} {r.whole_steps_per_s:>13.1f}")
    lines += ["", "steps/s: the training loop (sampling, update, logging); eval s: one evaluation (the profile's "
                  "episodes); full run: pretraining + the profile's steps + its evaluations, projected from this "
                  "run; whole steps/s: the profile's steps over that time"]
    if compile:
        lines.append("compile s: the first compiled update of each learner (one-off, in the full run; a few s "
                     "once torch.compile's on-disk cache holds the graph); steps/s leaves it out")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
