"""Range and choice checks of method Configs, done when a grid is expanded (never first when a run starts).

The checks come from the dataclass itself: ``Literal[...]`` annotations give choices, and the project's one
vocabulary (STYLE: ``lr``, ``batch_size``, ``gamma``, ``tau``, ``num_*``, ``*_every`` ...) gives ranges by field
name, so a new method's Config is checked without writing anything. ``CHOICES`` covers the string fields of
files that still annotate them as plain ``str`` (methods/sra.py and methods/dynamics.py, owned by other work).
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from core.errors import BenchError

# string fields annotated ``str`` whose choices live in the method's code; a Literal annotation makes these redundant
CHOICES: dict[str, tuple[str, ...]] = {
    "activation": ("relu", "swish"),
    "optimizer": ("sgd", "adam"),
    "direction": ("reverse", "forward"),
    "resampling": ("confidence", "uniform"),
    "reverse_policy": ("uniform", "cvae"),
}
UNIT_INTERVAL = {"gamma", "expectile", "eta", "d_min", "d_max"}                     # [0, 1]
UNIT_SUFFIXES = ("_quantile", "_ratio", "_fraction")                                # [0, 1]
POSITIVE_INT_NAMES = {"batch_size", "hidden_dims", "horizon", "epochs", "feature_dim", "rollout_batch", "goal_batch",
                      "max_iterations", "reward_steps", "bandwidth_pairs", "policy_delay", "latent_factor"}
POSITIVE_INT_AFFIXES = (("num_",), ("_batch_size", "_size", "_every", "_dims", "_factor"))  # prefixes, suffixes
NON_NEGATIVE_FLOAT_SUFFIXES = ("weight_decay", "_weight", "_penalty", "_clip", "temperature", "epsilon", "noise")


def validate_config(config: Any, where: str) -> None:
    """Raise BenchError naming the first field of ``config`` (a Config dataclass, nested ones included) that is
    out of range or not one of its choices; ``where`` names it for the message (e.g. "bc-exp")."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{where}.{f.name}"
        if dataclasses.is_dataclass(value):
            validate_config(value, name)
            continue
        if value is None:
            continue
        if problem := _problem(f.name, value, hints[f.name]):
            raise BenchError(f"{name}={_show(value)} {problem}; fix the --set option or the grid file")


def _problem(field: str, value: Any, annotation: Any) -> str | None:
    choices = literal_choices(annotation) or CHOICES.get(field)
    if choices and isinstance(value, str):
        return None if value in choices else f"is not a valid choice: use one of {', '.join(choices)}"
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            return "must be a finite number"
        if isinstance(v, int) and not isinstance(value, float) and (bound := _int_bound(field)) is not None and v < bound:
            return f"is out of range: must be >= {bound}"
        if isinstance(v, float) and (problem := _float_problem(field, v)):
            return problem
    return None


def _int_bound(field: str) -> int:
    prefixes, suffixes = POSITIVE_INT_AFFIXES
    positive = field in POSITIVE_INT_NAMES or field.startswith(prefixes) or field.endswith(suffixes)
    return 1 if positive else 0  # counts and step numbers are never negative


def _float_problem(field: str, v: float) -> str | None:
    if (field == "lr" or field.endswith("_lr")) and v < 0:  # 0 freezes a part (MILO's fixed temperature)
        return "is out of range: a learning rate must be >= 0"
    if field == "tau" and not 0 < v <= 1:
        return "is out of range: must be in (0, 1]"
    if (field in UNIT_INTERVAL or field.endswith(UNIT_SUFFIXES)) and not 0 <= v <= 1:
        return "is out of range: must be in [0, 1]"
    if field.endswith(NON_NEGATIVE_FLOAT_SUFFIXES) and v < 0:
        return "is out of range: must be >= 0"
    return None


def literal_choices(annotation: Any) -> tuple | None:
    """The choices of ``Literal[...]`` (also inside ``Literal[...] | None``), else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            return typing.get_args(arg)
    return None


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(list(value) if isinstance(value, tuple) else value)
