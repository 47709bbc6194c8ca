"""Opt-in bf16 for the learner updates (``bench run --precision bf16``, ``bench perf --bf16``).

fp32 is the default and the only precision results are compared in. bf16 runs each ``method.update`` under
``torch.autocast(dtype=torch.bfloat16)``: matmuls in bf16, everything autocast keeps in fp32 (losses'
reductions, optimizers, evaluation, pretraining) stays fp32. It pays off only where the hardware has bf16
matmul units (CPU: AMX; GPU: Ampere or newer); elsewhere bf16 is slower (emulated, or AVX512-BF16's dot
products, which lost to fp32 on the one such CPU measured).
A bf16 run is its own run (``precision`` enters the run's settings and key) since its numbers differ.
"""
from __future__ import annotations

import contextlib

PRECISIONS = {"fp32": "float32 everywhere (the default)",
              "bf16": "learner updates under bf16 autocast (opt-in; fast only with bf16 hardware)"}
DEFAULT_PRECISION = "fp32"
# AMX only: on an Intel Xeon with AVX512-BF16 but no AMX (Emerald Rapids VM, 2026-12-07) bf16 ran IQL's updates
# at 0.6x fp32 (its matmuls alone: 7.3 vs 3.8 ms per update; docs/performance.md)
BF16_CPU_FLAGS = ("amx_bf16",)


def bf16_native(device: torch.device | str) -> bool:
    """Whether ``device`` has bf16 matmul hardware that beats fp32 (CPU: AMX in /proc/cpuinfo)."""
    import torch
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    from methods.nets import cpu_flags
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def update_precision(device: torch.device | str, precision: str = DEFAULT_PRECISION):
    """The context each learner update runs in: nothing for fp32, bf16 autocast for bf16."""
    if precision == DEFAULT_PRECISION:
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    import torch  # here, not at import: the CLI reads PRECISIONS without loading torch
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
