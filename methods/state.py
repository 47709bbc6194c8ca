"""Saving and restoring a method's state from one declaration: its stateful parts and its plain values.

A part is anything with ``state_dict`` / ``load_state_dict`` (networks, optimizers, learners, samplers, buffers),
a ``torch.Generator`` (its ``get_state`` / ``set_state``), a dict of parts (saved as a dict of their states), or
None (an optional part that is absent: saved as None). A value is a plain attribute saved by value: a copy, so a
checkpoint never aliases what training goes on to change; tensors are saved on the CPU and restored on the
method's device.
"""
from __future__ import annotations

import copy
from typing import Any

import torch


def part_state(part: Any) -> Any:
    if part is None:
        return None
    if isinstance(part, torch.Generator):
        return part.get_state()
    if isinstance(part, dict):
        return {name: part_state(p) for name, p in part.items()}
    return part.state_dict()


def load_part(part: Any, state: Any, name: str) -> None:
    if part is None:
        if state is not None:
            raise ValueError(f"the state holds {name!r}, which this method (as configured) does not have")
    elif isinstance(part, torch.Generator):
        part.set_state(state)
    elif isinstance(part, dict):
        for key, p in part.items():
            load_part(p, state[key], f"{name}.{key}")
    else:
        part.load_state_dict(state)


def saved_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    return copy.deepcopy(value)


def restored_value(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, copy=True)
    return copy.deepcopy(value)
