"""``bench perf``: training steps (sample a batch, update on it) per second of each learner.

Pure functions, no printing: ``measure`` builds each learner on a synthetic task, warms it up, times steps
under one thread and under the default thread count -- our samplers over a synthetic dataset -- and times the
CORL-style reference IQL (``benchmark/perf_reference.py``, with CORL's replay buffer over the same arrays) the
same way, so the ratios say how our hot loop compares to a plain one.
Targets: our IQL at least 1.6x the reference, SAC-N (N=25, maze2d's count) at least 1/3 of our IQL.
Against the machine: each update's FLOPs (torch's FLOP counter) and the fp32 matmul peak at the nets' main
shape (256 x 256 x 256, the faster of oneDNN and the stock matmul, per thread count) give a limit in updates/s;
the report gives each learner's share of it. For IQL and the reference it also replays each update's matmuls
alone (``matmul_replay``), timed in the same rounds: how fast IQL would be if nothing but its matmuls took time.
On CPU our nets run their matmuls through oneDNN where that wins (``methods.nets.ONEDNN_LINEAR``, a per-CPU
rule); ``onednn=True/False`` times either path, to see what it buys on a given machine.
"""
from __future__ import annotations


import os
import platform
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode  # private, but what torch's FlopCounterMode builds on

from benchmark.precision import DEFAULT_PRECISION, update_precision
from core.errors import BenchError
from methods.base import synchronize

REFERENCE = "iql-corl"     # the row of the CORL-style reference IQL
MATMULS = ":matmuls"       # suffix of the timed rows that replay a learner's matmuls alone (matmul_replay)
IQL_TARGET = 1.6           # ours / reference (sampling included on both sides)
SACN_TARGET = 1 / 3        # SAC-N(25) / ours IQL
SACN_DEFAULT_CRITICS = 25  # maze2d's N (CORL's per-dataset table)
DEFAULT_LEARNERS = "iql,td3bc,awac,sacn"


@dataclass(frozen=True)
class Measurement:
    learner: str
    threads: int
    updates: int
    seconds: float

    @property
    def rate(self) -> float:
        """Updates per second."""
        return self.updates / self.seconds


@dataclass
class PerfReport:
    device: str
    device_name: str
    torch_version: str
    thread_counts: list[int]
    default_threads: int
    logical_cpus: int | None
    compiled: bool
    onednn: bool
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flops: dict[str, float] = field(default_factory=dict)        # per update, per learner row
    peak_flops: dict[int, float] = field(default_factory=dict)   # FLOP/s of the nets' matmul shape, per thread count
    bf16: bool = False  # our learners' updates under bf16 autocast (the reference stays fp32)
    matmul_seconds: dict[str, float] = field(default_factory=dict)  # per update: its matmuls replayed alone
    matmul_threads: int | None = None                                 # the thread count those were measured at

    def zero_overhead_ratio(self, learner: str, reference: str) -> float | None:
        """How many times the reference's rate ``learner`` would run if everything but its matmuls took no time:
        the most any overhead cut can give without fewer FLOPs or faster matmuls."""
        matmul, rate = self.matmul_seconds.get(learner), self.rate(reference, self.matmul_threads or 0)
        return 1 / (rate * matmul) if matmul and rate else None

    def fraction_of_limit(self, learner: str, threads: int) -> float | None:
        """Updates/s over the limit the matmul peak sets (peak FLOP/s / FLOPs per update)."""
        rate, flops, peak = self.rate(learner, threads), self.flops.get(learner), self.peak_flops.get(threads)
        return rate * flops / peak if rate and flops and peak else None

    def rate(self, learner: str, threads: int) -> float | None:
        for m in self.measurements:
            if m.learner == learner and m.threads == threads:
                return m.rate
        return None

    def ratio(self, numerator: str, denominator: str, threads: int) -> float | None:
        a, b = self.rate(numerator, threads), self.rate(denominator, threads)
        return a / b if a is not None and b is not None else None


# ------------------------------------------------------------------------------------------------ inputs
def parse_learners(value: str) -> list[tuple[str, int | None]]:
    """'iql,sacn,sacn10' -> [('iql', None), ('sacn', 25), ('sacn', 10)]; SAC-N takes its critic count as suffix."""
    from methods.learners import LEARNERS
    out = []
    for raw in value.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name.startswith("sacn"):
            suffix = name[4:].lstrip("-=:")
            if suffix and not (suffix.isdigit() and int(suffix) >= 1):
                raise BenchError(f"bad SAC-N critic count in {raw!r}; e.g. sacn (N=25) or sacn10")
            out.append(("sacn", int(suffix) if suffix else SACN_DEFAULT_CRITICS))
        elif name in LEARNERS:
            out.append((name, None))
        else:
            raise BenchError(f"unknown learner {raw!r}; valid: {', '.join(LEARNERS)} "
                             "(SAC-N: sacn or sacnN, e.g. sacn10)")
    if not out:
        raise BenchError(f"no learners given; e.g. --learners {DEFAULT_LEARNERS}")
    return out


def parse_threads(value: str) -> list[int]:
    """'1,2' -> [1, 2]."""
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise BenchError(f"bad --threads {value!r}; give positive thread counts, e.g. 1,2")
    return list(dict.fromkeys(counts))


def label(name: str, critics: int | None) -> str:
    return f"sacn-{critics}" if name == "sacn" else name


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda asked for, but torch sees no CUDA device; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise BenchError(f"bad device {device!r}; use auto, cpu or cuda") from None


def synthetic_task(obs_dim: int, act_dim: int):
    """A locomotion-like task spec (obs 17, act 6 by default): only the sizes matter here."""
    from envs.tasks import TaskSpec
    return TaskSpec(name="perf-synthetic", family="locomotion", env_id="none", dataset_prefix="bench/perf",
                    max_episode_steps=1000, obs_dim=obs_dim, act_dim=act_dim)


DATASET_ROWS = 100_000  # transitions the timed updates sample from (maze2d's D^S at quick)


def synthetic_dataset(obs_dim: int, act_dim: int, rows: int = DATASET_ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """D4RL-style arrays (observations, actions, rewards, next_observations, terminals) of ``rows`` transitions:
    normal observations, actions in (-1, 1), 1% terminals."""
    rng = np.random.default_rng(seed)
    return {"observations": rng.standard_normal((rows, obs_dim), dtype=np.float32),
            "actions": rng.uniform(-0.99, 0.99, (rows, act_dim)).astype(np.float32),
            "rewards": rng.standard_normal(rows, dtype=np.float32),
            "next_observations": rng.standard_normal((rows, obs_dim), dtype=np.float32),
            "terminals": rng.random(rows) < 0.01}


def our_sampler(data: dict[str, np.ndarray], batch_size: int, device: torch.device, seed: int = 0):
    """The sampler our methods use (``methods.sampling.MixtureSampler``), one source with per-row rewards."""
    from methods.data import Normalizer, Transitions
    from methods.sampling import MixtureSampler, Source
    rows = len(data["observations"])
    transitions = Transitions(data["observations"], data["actions"], data["next_observations"], data["terminals"],
                              np.zeros(rows, bool), np.zeros(1, np.int64))
    identity = Normalizer(np.zeros(data["observations"].shape[1], np.float32),
                          np.ones(data["observations"].shape[1], np.float32))
    return MixtureSampler({"data": Source(transitions, batch_size, data["rewards"])}, identity, seed, device)


def reference_buffer(data: dict[str, np.ndarray], device: torch.device):
    """CORL's replay buffer over the same arrays."""
    from benchmark.perf_reference import ReplayBuffer
    return ReplayBuffer(data["observations"], data["actions"], data["rewards"], data["next_observations"],
                        data["terminals"], device)


# ------------------------------------------------------------------------------------------------ the limit
PEAK_SHAPE = (256, 256, 256)  # batch x hidden x hidden: the nets' main matmul


def flops_per_update(update: Callable[[], object]) -> float:
    """FLOPs of one call of ``update`` by torch's FLOP counter (our oneDNN matmuls are counted on the stock
    path: same math, and the counter knows only stock ops)."""
    from torch.utils.flop_counter import FlopCounterMode

    from methods import nets
    with nets.use_onednn(False), FlopCounterMode(display=False) as counter:
        update()
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, seconds: float = 0.5, shape: tuple[int, int, int] = PEAK_SHAPE) -> float:
    """fp32 FLOP/s of one (m x k) @ (k x n) product at the current thread count: the faster of the stock matmul
    and (on CPU) oneDNN's, best of three timed bursts each."""
    from methods import nets
    m, k, n = shape
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g).to(device), torch.randn(n, k, generator=g).to(device)
    products = [lambda: a @ b.t()]
    if device.type == "cpu" and nets.onednn_available():
        products.append(lambda: nets._onednn(a, b))
    best = float("inf")
    for product in products:
        count = calibrate(product, device, seconds / 4, warmup=10)
        best = min(best, *(time_updates(product, device, count) / count for _ in range(3)))
    return 2 * m * k * n / best


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation",
              "mkldnn::_linear_pointwise")


@dataclass(frozen=True)
class TensorSpec:
    """What a replay needs of a recorded operand: its layout, not its values."""
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device

    @classmethod
    def of(cls, value):
        """A tensor's spec; anything else (scalars such as addmm's beta) as it is."""
        if isinstance(value, torch.Tensor):
            return cls(tuple(value.shape), tuple(value.stride()), value.dtype, value.device)
        return value

    def make(self, generator: torch.Generator) -> torch.Tensor:
        """A tensor of this layout (broadcast strides kept) with values in [-1, 1)."""
        size = 1 + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        values = torch.rand(size, generator=generator, dtype=torch.float32) * 2 - 1
        return values.to(self.device, self.dtype).as_strided(self.shape, self.stride)


class _MatmulRecorder(TorchDispatchMode):
    """Records every matmul kernel call (forward and backward: the mode sits under autograd, as torch's own
    FlopCounterMode) with the layout of its tensor operands."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[object, tuple, dict]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func._schema.name in MATMUL_OPS:
            self.calls.append((func, tuple(map(TensorSpec.of, args)), {k: TensorSpec.of(v) for k, v in kwargs.items()}))
        return func(*args, **kwargs)


def matmul_replay(update: Callable[[], object], seed: int = 0) -> Callable[[], None]:
    """The matmul kernels one call of ``update`` runs (after a warm-up call), as a function that runs just
    those: the same ops on operands of the same shapes and strides, and nothing else -- no autograd, no
    elementwise ops, no optimizer, no Python around them. Its time is what an update cannot go below without
    fewer FLOPs or faster matmuls, measured without the per-op cost a profiler adds."""
    update()
    with _MatmulRecorder() as recorder:
        update()
    generator = torch.Generator().manual_seed(seed)

    def materialize(a):
        return a.make(generator) if isinstance(a, TensorSpec) else a
    calls = [(func, tuple(materialize(a) for a in args), {k: materialize(v) for k, v in kwargs.items()})
             for func, args, kwargs in recorder.calls]

    def replay() -> None:
        for func, args, kwargs in calls:
            func(*args, **kwargs)
    return replay


# ------------------------------------------------------------------------------------------------ timing
def calibrate(update: Callable[[], object], device: torch.device, seconds: float, warmup: int = 20) -> int:
    """Warm up (``warmup`` updates; fewer, at least 3, if they take longer than ``seconds``), then probe
    briefly: how many updates take about ``seconds``."""
    start, done = time.perf_counter(), 0
    while done < max(warmup, 3) and (done < 3 or time.perf_counter() - start < seconds):
        update()
        done += 1
    synchronize(device)
    start, probe = time.perf_counter(), 0
    while probe < 3 or time.perf_counter() - start < min(0.2, seconds / 4):
        update()
        probe += 1
        if probe % 8 == 0:
            synchronize(device)
    synchronize(device)
    return max(3, int(seconds * probe / (time.perf_counter() - start)))


def time_updates(update: Callable[[], object], device: torch.device, count: int) -> float:
    """Wall seconds of ``count`` updates (the device synchronized before reading the clock)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(count):
        update()
    synchronize(device)
    return time.perf_counter() - start


def _ours(name: str, critics: int | None, task, device: torch.device, compile_update: bool):
    from methods.learners import LEARNERS, build_learner, learner_task_defaults
    _, config_cls = LEARNERS[name]
    config = config_cls(num_critics=critics) if name == "sacn" else config_cls()
    config = replace(config, **learner_task_defaults(config, task, f"bench perf {name}"))
    learner = build_learner(config, task, device)
    if compile_update and not learner.compile_update():  # no one-graph path: compile the eager update
        return torch.compile(learner.update)
    return learner.update


def _reference(task, device: torch.device):
    from benchmark.perf_reference import ReferenceIQL
    return ReferenceIQL(task.obs_dim, task.act_dim, device).train


def measure(learners: str | list[tuple[str, int | None]] = DEFAULT_LEARNERS, device: str = "auto",
            seconds: float = 2.0, obs_dim: int = 17, act_dim: int = 6, batch_size: int = 256,
            compile: bool = False, threads: list[int] | None = None, repeats: int = 2, warmup: int = 20,
            seed: int = 0, onednn: bool | None = None, bf16: bool = False) -> PerfReport:
    """Updates/s of each learner, and of the reference IQL when IQL is asked for, per thread count.

    ``threads`` defaults to [1, the default count]; the torch thread count is restored afterwards.
    ``compile`` compiles our learners' updates as ``bench run --compile`` does (``LearnerBase.compile_update``;
    a learner without that path: ``torch.compile`` of its ``update``); the reference stays eager. A learner
    that fails to compile is timed eagerly and the report notes it. ``onednn`` switches our nets' oneDNN
    matmuls on or off for the call (None: this CPU's default; restored afterwards). ``bf16`` runs our learners'
    updates under bf16 autocast (benchmark/precision.py); the reference and the matmul peak stay fp32."""
    from methods import nets
    onednn = nets.ONEDNN_LINEAR if onednn is None else onednn and nets.onednn_available()
    chosen = parse_learners(learners) if isinstance(learners, str) else list(learners)
    dev = resolve_device(device)
    default_threads = torch.get_num_threads()
    thread_counts = threads or sorted({1, default_threads})
    report = PerfReport(device=str(dev), device_name=device_name(dev), torch_version=torch.__version__,
                        thread_counts=thread_counts, default_threads=default_threads,
                        logical_cpus=os.cpu_count(), compiled=compile,
                        onednn=bool(onednn and dev.type == "cpu" and not compile and not bf16), bf16=bf16)
    task = synthetic_task(obs_dim, act_dim)
    data = synthetic_dataset(obs_dim, act_dim, seed=seed)
    sampler, buffer = our_sampler(data, batch_size, dev, seed), reference_buffer(data, dev)
    np.random.seed(seed)  # CORL's sampling draws from numpy's global RNG
    # each timed call is one step of a training loop: sample a batch, update on it
    rows: list[tuple[str, Callable[[bool], Callable[[], object]]]] = []
    for name, critics in chosen:
        rows.append((label(name, critics),
                     lambda c, n=name, k=critics: _with_sampling(_ours(n, k, task, dev, c), sampler.sample,
                                                                 "bf16" if bf16 else DEFAULT_PRECISION, dev)))
        if name == "iql":
            rows.append((REFERENCE, lambda c: _with_sampling(_reference(task, dev), lambda: buffer.sample(batch_size))))
    with nets.use_onednn(onednn):  # restored afterwards
        try:
            for row, make in rows:
                torch.manual_seed(seed)
                report.flops[row] = flops_per_update(make(False))
            for count in thread_counts:
                torch.set_num_threads(count)
                report.peak_flops[count] = matmul_peak(dev, seconds)
                timed = list(rows)
                if report.matmul_threads is None:  # the IQL rows' matmuls alone, timed in the same rounds
                    report.matmul_threads = count
                    timed += [(row + MATMULS, lambda c, make=make: matmul_replay(make(False), seed))
                              for row, make in rows if row in ("iql", REFERENCE)]
                for row, (updates, taken) in _time_interleaved(timed, report, dev, seconds, compile, warmup, repeats,
                                                               seed):
                    if row.endswith(MATMULS):
                        report.matmul_seconds[row.removesuffix(MATMULS)] = taken / updates
                    else:
                        report.measurements.append(Measurement(row, count, updates, taken))
        finally:
            torch.set_num_threads(default_threads)
    return report


def _time_interleaved(rows, report: PerfReport, device: torch.device, seconds: float, compile: bool, warmup: int,
                      repeats: int, seed: int) -> list[tuple[str, tuple[int, float]]]:
    """Build and calibrate every row, then ``repeats`` rounds that time each row once, in turn: a burst of
    load from elsewhere on the machine hits one round of every row rather than all runs of one. Best round."""
    updates, counts = {}, {}
    for row, make in rows:
        torch.manual_seed(seed)
        try:
            updates[row] = make(compile)
            counts[row] = calibrate(updates[row], device, seconds, warmup)
        except Exception as e:  # noqa: BLE001 - a compile failure is a result to report, not a crash
            if not compile:
                raise
            note = f"{row}: torch.compile failed ({type(e).__name__}: {str(e).strip()[:120]!r}); timed eagerly"
            if note not in report.notes:
                report.notes.append(note)
            torch.manual_seed(seed)
            updates[row] = make(False)
            counts[row] = calibrate(updates[row], device, seconds, warmup)
    best = {row: float("inf") for row in updates}
    for _ in range(max(1, repeats)):
        for row, update in updates.items():
            best[row] = min(best[row], time_updates(update, device, counts[row]))
    return [(row, (counts[row], best[row])) for row in updates]


def _with_sampling(update: Callable, sample: Callable[[], object], precision: str = DEFAULT_PRECISION,
                   device: torch.device | str = "cpu") -> Callable[[], object]:
    """One training step: sample a batch, then update on it (under ``precision``, as the runner does)."""
    context = update_precision(device, precision)

    def step():
        batch = sample()
        with context:
            return update(batch)
    return step


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from methods.nets import cpu_info
    return cpu_info().get("model name") or platform.processor() or platform.machine() or "unknown CPU"

