"""Method configs: CLI ``--set method.key=value`` overrides, grid files, validation and hashing."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any

import yaml

from core.errors import BenchError

Overrides = dict[str, dict[str, Any]]  # method name -> {field: value}


def parse_set_options(items: list[str] | tuple[str, ...], methods: list[str]) -> Overrides:
    """``["sra.model_ratio=0.3", "lr=1e-3"]`` -> {"sra": {"model_ratio": 0.3}, <each method>: {"lr": 1e-3}}.

    A key without a ``method.`` prefix applies to every selected method whose Config has that field.
    Values are parsed as YAML scalars (``1e-3`` -> float, ``true`` -> bool, ``[256, 256]`` -> list).
    """
    from methods.registry import get_method
    out: Overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--set expects key=value (e.g. --set bc-exp.lr=1e-3), got {item!r}")
        key = key.strip()
        value = _parse_scalar(raw.strip())
        if "." in key:
            method, field_name = key.split(".", 1)
            get_method(method)  # validates the method name
            if method not in methods:
                raise BenchError(f"--set {key}: {method} is not among the selected methods ({', '.join(methods)}); "
                                 f"add it to --methods or drop this --set")
            out.setdefault(method, {})[field_name] = value
            continue
        if key == "num_steps":
            raise BenchError("--set num_steps: num_steps is the run length, set by the profile; pick another --profile")
        targets = [m for m in methods if key in _field_types(get_method(m).Config)]
        if not targets:
            raise BenchError(f"--set {key}: none of the selected methods ({', '.join(methods)}) has a "
                             f"hyper-parameter {key!r}; use method.key to target one")
        for method in targets:
            out.setdefault(method, {})[key] = value
    return out


def _parse_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        return raw


def merge_overrides(*layers: Overrides) -> Overrides:
    out: Overrides = {}
    for layer in layers:
        for method, values in (layer or {}).items():
            out.setdefault(method, {}).update(values)
    return out


def _field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a (simple) type annotation; convert lists to tuples, ints to floats."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if origin is typing.Literal:
        if value in args:
            return value
        raise BenchError(f"{where}={value} is not a valid choice: use one of {', '.join(map(str, args))}")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except BenchError:
                pass
        raise BenchError(f"{where}: expected {annotation}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise BenchError(f"{where}: expected a list like [256, 256], got {value!r}")
        inner = args[0] if args else typing.Any
        return tuple(_coerce(v, inner, where) for v in value)
    if annotation in (int, float) and isinstance(value, str):
        value = _number(value, annotation, where)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)  # 1e3
    if annotation in (int, float, str, bool):
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise BenchError(f"{where}: expected {annotation.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _number(raw: str, annotation: type, where: str) -> Any:
    """A number in any spelling Python accepts (YAML 1.1 reads ``1e-3`` and ``1_000.5`` as strings)."""
    try:
        return int(raw) if annotation is int and raw.strip().lstrip("+-").isdigit() else float(raw)
    except ValueError:
        raise BenchError(f"{where}: expected {annotation.__name__}, got {raw!r} (str)") from None


def resolve_config(method_cls: type, *override_layers: dict[str, Any]):
    """The method's Config with the override layers applied (later wins), each key type-checked.

    Nested learner configs take dotted keys (``learner.expectile``) or nested mappings."""
    values: dict[str, Any] = {}
    for layer in override_layers:
        for key, value in (layer or {}).items():
            _set_path(values, key.split("."), value)
    return _build(method_cls.Config, values, method_cls.name)


def method_config(method_cls: type, task, profile: str, user: dict[str, Any] | None = None):
    """The Config of a run of ``method_cls`` on ``task`` (a TaskSpec) under the profile named ``profile``, later
    winning: the Config defaults <- the method's ``task_defaults(task)`` <- its ``budgets[profile]`` <- ``user``
    (the CLI's / grid file's overrides). Every value the task decides is concrete here, before the run."""
    return resolve_config(method_cls, method_cls.task_defaults(task), method_cls.budgets.get(profile, {}), user or {})


def _set_path(tree: dict, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    if isinstance(value, dict) and isinstance(tree.get(path[-1]), dict):
        for key, inner in value.items():
            _set_path(tree[path[-1]], key.split("."), inner)
    else:  # a copy: a later layer merges into this dict, and must not edit the caller's (e.g. a profile's)
        tree[path[-1]] = copy.deepcopy(value)


def _build(config_cls: type, values: dict[str, Any], where: str, base: Any = None):
    """``base`` (default: ``config_cls()``) with ``values`` set; a nested group starts from the parent's default
    for that field (e.g. MILO's twin-critic SAC config), not from its class's defaults."""
    base = config_cls() if base is None else base
    types = _field_types(config_cls)
    kwargs = {}
    for key, value in values.items():
        if key not in types:
            raise BenchError(f"{where} has no hyper-parameter {key!r}; valid keys: {', '.join(types)}")
        annotation = types[key]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise BenchError(f"{where}.{key} is a group of settings; set its fields, e.g. "
                                 f"{where}.{key}.{next(iter(_field_types(annotation)))}=...")
            kwargs[key] = _build(annotation, value, f"{where}.{key}", getattr(base, key))
        else:
            kwargs[key] = _coerce(value, annotation, f"{where}.{key}")
    return dataclasses.replace(base, **kwargs)


def config_dict(config) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists: the JSON view


def stable_hash(obj: Any, length: int = 8) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


@dataclasses.dataclass
class GridFile:
    """What a ``--config grid.yaml|toml`` may hold; each key is optional and the CLI overrides it."""
    methods: list[str] | None = None
    envs: list[str] | None = None
    seeds: int | list[int] | None = None
    profile: str | None = None
    expert_draw: str | None = None  # benchmark.grid.EXPERT_DRAWS
    overrides: Overrides = dataclasses.field(default_factory=dict)


def load_grid_file(path: str | Path) -> GridFile:
    path = Path(path)
    try:
        text = path.read_text()
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except FileNotFoundError:
        raise BenchError(f"config file {path} not found") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"config file {path} is not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: "
                         f"{str(e).splitlines()[0]}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise BenchError(f"config file {path} must hold a mapping (methods, envs, seeds, profile, expert_draw, "
                         f"overrides)")
    known = {f.name for f in dataclasses.fields(GridFile)}
    unknown = set(raw) - known
    if unknown:
        raise BenchError(f"config file {path}: unknown keys {sorted(unknown)}; valid keys: {sorted(known)}")

    def as_list(value):
        return value.split(",") if isinstance(value, str) else value

    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise BenchError(f"config file {path}: 'overrides' must map method -> {{key: value}}")
    return GridFile(methods=as_list(raw.get("methods")), envs=as_list(raw.get("envs")), seeds=raw.get("seeds"),
                    profile=raw.get("profile"), expert_draw=raw.get("expert_draw"), overrides=overrides)


def parse_seeds(value: int | str | list[int]) -> list[int]:
    """``4`` -> [0, 1, 2, 3] (the paper's seeds); ``"0,2"`` or ``[0, 2]`` -> explicit seeds."""
    if isinstance(value, list):
        seeds = value
    elif isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        seeds = list(range(int(value)))
    else:
        try:
            seeds = [int(s) for s in str(value).split(",") if s.strip()]
        except ValueError:
            raise BenchError(f"--seeds expects a count (4) or a list (0,2,5), got {value!r}") from None
    if not seeds or any((not isinstance(s, int)) or s < 0 for s in seeds):
        raise BenchError(f"--seeds expects a positive count or non-negative integers, got {value!r}")
    return seeds
