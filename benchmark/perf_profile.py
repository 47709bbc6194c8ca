"""``bench perf profile``: where each method's learner update spends its time, from torch's profiler.

A GPU runs a small-network update fast only when the host keeps it fed: few, large kernels and no waits for
the device. For each method (built as the dry run's calibration builds it: the profile's config on synthetic
data of the task's shape) this times ``updates`` updates without the profiler, then profiles as many and
reports per update: the kernels launched, the GPU's busy time (the kernels' own time) against the wall
time, and the host-device synchronizations (``.item()``-style reads and explicit stream/device syncs), with
the ops that take the most host time. On a CPU the kernel columns are empty and the host ops are the story.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from methods.base import synchronize

LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
SCALAR_READS = ("aten::_local_scalar_dense",)  # .item(), float(t), bool(t), if t: ...
WARMUP = 10


@dataclass
class UpdateProfile:
    method: str
    wall_ms: float                 # per update, timed without the profiler
    launches: float = 0.0          # kernel launches per update
    gpu_ms: float = 0.0            # the device's kernel time per update
    syncs: float = 0.0             # explicit stream/device/event syncs per update
    scalar_reads: float = 0.0      # device-to-host scalar reads per update (each one waits for the device)
    top_ops: list[tuple[str, float]] = field(default_factory=list)  # (op, host ms per update), most first
    error: str | None = None

    @property
    def gpu_busy(self) -> float:
        """Share of the wall time the device spends in kernels (1.0 = never idle)."""
        return self.gpu_ms / self.wall_ms if self.wall_ms else 0.0


def profile_method(method_name: str, task: str = "maze2d-umaze-sparse", profile_name: str = "paper",
                   device: str = "cpu", updates: int = 20, top: int = 3) -> UpdateProfile:
    """Profile ``updates`` learner updates of ``method_name``; a method that fails to build is a row with
    its error, not a crash (one bad method must not cost the others their numbers)."""
    from benchmark.estimate import build_for_timing
    from benchmark.grid import expand_grid
    from benchmark.profiles import get_profile
    spec = expand_grid([method_name], [task], [0], get_profile(profile_name))[0]
    try:
        method = build_for_timing(spec, device)
        step = 1
        for _ in range(WARMUP):
            method.update(step)
            step += 1
        synchronize(device)
        start = time.perf_counter()
        for _ in range(updates):
            method.update(step)
            step += 1
        synchronize(device)
        wall_ms = (time.perf_counter() - start) / updates * 1e3
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.device(device).type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(updates):
                method.update(step)
                step += 1
            synchronize(device)
    except Exception as e:  # noqa: BLE001 - reported in the row
        return UpdateProfile(method_name, float("nan"), error=f"{type(e).__name__}: {str(e).strip()[:160]}")
    return summarize(method_name, prof.key_averages(), wall_ms, updates, top)


def summarize(method_name: str, averages, wall_ms: float, updates: int, top: int = 3) -> UpdateProfile:
    """Per-update counts from the profiler's per-op averages."""
    row = UpdateProfile(method_name, wall_ms)
    host = []
    for event in averages:
        if event.device_type == DeviceType.CUDA:  # kernels, memcpys and memsets on the device
            row.gpu_ms += event.self_device_time_total / 1e3 / updates
        elif event.key in LAUNCHES:
            row.launches += event.count / updates
        elif event.key in SYNCS:
            row.syncs += event.count / updates
        elif event.key in SCALAR_READS:
            row.scalar_reads += event.count / updates
        if event.device_type == DeviceType.CPU and event.key.startswith("aten::"):
            host.append((event.key, event.self_cpu_time_total / 1e3 / updates))
    row.top_ops = sorted(host, key=lambda item: -item[1])[:top]
    return row


def format_profiles(rows: list[UpdateProfile], device: str, device_name: str, updates: int) -> str:
    lines = [f"device: {device} ({device_name}), {updates} profiled updates per method (after {WARMUP} warm-up)",
             "", f"{'method':<12} {'ms/update':>9} {'launches':>8} {'GPU ms':>7} {'GPU busy':>8} {'syncs':>6} "
                 f"{'item()':>6}  top host ops (ms/update)"]
    for r in rows:
        if r.error:
            lines.append(f"{r.method:<12} failed: {r.error}")
            continue
        ops = ", ".join(f"{name.removeprefix('aten::')} {ms:.2f}" for name, ms in r.top_ops)
        lines.append(f"{r.method:<12} {r.wall_ms:>9.2f} {r.launches:>8.0f} {r.gpu_ms:>7.2f} {r.gpu_busy:>8.0%} "
                     f"{r.syncs:>6.1f} {r.scalar_reads:>6.1f}  {ops}")
    lines += ["", "launches: kernels per update; GPU busy: kernel time / wall time (low = the host cannot feed "
                  "the device: too many small kernels, or waits); syncs, item(): host waits for the device"]
    return "\n".join(lines)
