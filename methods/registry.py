"""The method registry: in-tree methods plus any package exposing the ``bench.methods`` entry-point group.

In-tree methods are found by importing every module of the ``methods`` package (a module registers its methods
with ``@register``; importing the helper modules registers nothing), so adding one is saving its file. An entry
point may name a Method subclass (registered under its ``name``) or a module whose import registers its methods.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings
from importlib.metadata import entry_points

import methods as methods_package
from core.errors import BenchError
from methods.base import Method

ENTRY_POINT_GROUP = "bench.methods"

_REGISTRY: dict[str, type[Method]] = {}
_loaded = False


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add a Method subclass to the registry under ``cls.name``."""
    if not (inspect.isclass(cls) and issubclass(cls, Method)):
        raise TypeError(f"{cls!r} is not a Method subclass")
    for attr in ("name", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"method class {cls.__name__} lacks the class attribute {attr!r}")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice ({existing.__module__} and {cls.__module__})")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(methods_package.__path__, "methods."):
        if not module.ispkg:  # subpackages (learners/) hold building blocks, not methods
            importlib.import_module(module.name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must not take the suite down
            warnings.warn(f"method plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}")
            continue
        if inspect.isclass(obj):
            register(obj)


def available() -> dict[str, type[Method]]:
    """All registered methods, name -> class, sorted by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> type[Method]:
    methods = available()
    if name not in methods:
        raise BenchError(f"unknown method {name!r}; valid methods: {', '.join(methods)}")
    return methods[name]
