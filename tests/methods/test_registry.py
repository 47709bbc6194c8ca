"""The registry: in-tree methods and third-party methods through the ``bench.methods`` entry point."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from methods import registry

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_loaded", False)


def test_builtin_methods_are_registered():
    assert "bc-exp" in registry.available()
    assert registry.get_method("bc-exp").description


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch, fresh_registry):
    """A real installed-distribution layout on sys.path: importlib.metadata finds its entry point."""
    (tmp_path / "toy_plugin.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from methods.bc_exp import BCExp

        @dataclass(frozen=True)
        class Config(BCExp.Config):
            lr: float = 1e-3

        class ToyBC(BCExp):
            name = "toy-bc"
            description = "a plugin method"
            Config = Config
    '''))
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.methods]\ntoy-bc = toy_plugin:ToyBC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    methods = registry.available()
    assert methods["toy-bc"].description == "a plugin method"
    assert methods["toy-bc"].Config().lr == 1e-3


def test_broken_plugin_warns_and_the_rest_still_load(tmp_path, monkeypatch, fresh_registry):
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.methods]\nbroken = no_such_module:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match="method plugin 'broken'"):
        methods = registry.available()
    assert "bc-exp" in methods


def test_readme_example_method_runs(fresh_registry, umaze_smoke, tmp_path):
    """The README's 'adding a method' example is real code: it registers and passes a short run."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "@register" in b)
    namespace: dict = {}
    exec(compile(example, "README-example", "exec"), namespace)
    from benchmark.grid import expand_grid
    from benchmark.profiles import get_profile
    from benchmark.runner import RunOptions, run_one
    assert registry.get_method("my-bc").description
    spec = expand_grid(["my-bc"], ["maze2d-umaze-sparse"], [0], get_profile("smoke"))[0]
    result = run_one(spec, RunOptions(root=tmp_path, device="cpu", show_progress=False))
    assert result["status"] == "done"
