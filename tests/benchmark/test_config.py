"""benchmark/config.py as a library: ``--set`` parsing and fan-out, override layers, type checks with one-line
errors, stable hashes, seeds and grid files (the CLI's own error lines are in test_cli.py)."""
from __future__ import annotations

import pytest

from benchmark.config import (config_dict, load_grid_file, merge_overrides, parse_seeds, parse_set_options,
                              resolve_config, stable_hash)
from core.errors import BenchError
from methods.registry import get_method


def test_an_unprefixed_key_goes_to_every_selected_method_that_has_it():
    overrides = parse_set_options(["batch_size=128", "uds.learner.expectile=0.9", "bc-exp.policy=gaussian"],
                                  ["bc-exp", "demodice", "uds"])
    assert overrides == {"bc-exp": {"batch_size": 128, "policy": "gaussian"}, "demodice": {"batch_size": 128},
                         "uds": {"learner.expectile": 0.9}}  # uds has no top-level batch_size
    with pytest.raises(BenchError, match=r"--set alpha: none of the selected methods \(bc-exp\) has a hyper-parameter"):
        parse_set_options(["alpha=1"], ["bc-exp"])
    with pytest.raises(BenchError, match="unknown method 'nope'"):
        parse_set_options(["nope.lr=1"], ["bc-exp"])
    with pytest.raises(BenchError, match="--set expects key=value"):
        parse_set_options(["=3"], ["bc-exp"])


@pytest.mark.parametrize("raw, value", [("[64, 64]", [64, 64]), ("true", True), ("null", None), ("gaussian", "gaussian"),
                                        ("1e-3", "1e-3"), ("", "")])
def test_values_are_yaml_scalars(raw, value):
    """YAML 1.1 leaves 1e-3 a string; the config's type (float) converts it at resolve time."""
    assert parse_set_options([f"bc-exp.hidden_dims={raw}"], ["bc-exp"])["bc-exp"]["hidden_dims"] == value


def test_later_layers_win_and_nested_groups_keep_their_other_defaults():
    merged = merge_overrides({"uds": {"learner.expectile": 0.8, "expert_reward": 2.0}}, {"uds": {"expert_reward": 3}})
    assert merged == {"uds": {"learner.expectile": 0.8, "expert_reward": 3}}
    uds = get_method("uds")
    config = resolve_config(uds, merged["uds"], {"learner": {"tau": 0.01}})
    default = uds.Config()
    assert config.expert_reward == 3.0 and isinstance(config.expert_reward, float)  # int -> float
    assert config.learner.expectile == 0.8 and config.learner.tau == 0.01
    assert config.learner.gamma == default.learner.gamma  # untouched fields keep the method's default
    bc = resolve_config(get_method("bc-exp"), {"hidden_dims": [32, 32], "lr": "1e-3", "batch_size": 1e2})
    assert bc.hidden_dims == (32, 32) and bc.lr == 1e-3 and bc.batch_size == 100


@pytest.mark.parametrize("layer, message", [
    ({"lrr": 1}, "bc-exp has no hyper-parameter 'lrr'; valid keys: policy, hidden_dims"),
    ({"policy": "stochastic"}, "bc-exp.policy=stochastic is not a valid choice: use one of deterministic, gaussian"),
    ({"batch_size": 2.5}, "bc-exp.batch_size: expected int, got 2.5 (float)"),
    ({"batch_size": True}, "bc-exp.batch_size: expected int, got True (bool)"),
    ({"hidden_dims": 256}, "bc-exp.hidden_dims: expected a list like [256, 256], got 256"),
])
def test_bad_values_are_one_line_errors_naming_the_key(layer, message):
    with pytest.raises(BenchError) as error:
        resolve_config(get_method("bc-exp"), layer)
    assert str(error.value) == message or str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_a_group_set_as_a_scalar_says_how_to_set_its_fields():
    with pytest.raises(BenchError, match=r"uds.learner is a group of settings; set its fields, e.g. uds.learner\.\w+=..."):
        resolve_config(get_method("uds"), {"learner": 0.5})


def test_config_hash_depends_on_values_not_key_order():
    a = config_dict(resolve_config(get_method("bc-exp"), {"lr": 1e-3}))
    assert stable_hash(a) == stable_hash(dict(reversed(list(a.items()))))
    assert stable_hash(a) != stable_hash({**a, "lr": 2e-3})
    assert len(stable_hash(a)) == 8 and a["hidden_dims"] == [256, 256]  # the JSON view: lists, not tuples


@pytest.mark.parametrize("value, seeds", [(3, [0, 1, 2]), ("2", [0, 1]), ("0,2,5", [0, 2, 5]), ([4, 1], [4, 1])])
def test_seeds_are_a_count_or_a_list(value, seeds):
    assert parse_seeds(value) == seeds


@pytest.mark.parametrize("value", ["a,b", "0", "-1,2", [], [1.5]])
def test_bad_seeds_are_refused(value):
    with pytest.raises(BenchError, match="--seeds expects"):
        parse_seeds(value)


def test_grid_files_in_yaml_and_toml_say_the_same(tmp_path):
    (tmp_path / "g.yaml").write_text("methods: bc-exp,uds\nseeds: 2\noverrides:\n  uds: {learner.expectile: 0.9}\n")
    (tmp_path / "g.toml").write_text('methods = ["bc-exp", "uds"]\nseeds = 2\n[overrides.uds]\n"learner.expectile" = 0.9\n')
    yaml_grid, toml_grid = load_grid_file(tmp_path / "g.yaml"), load_grid_file(tmp_path / "g.toml")
    assert yaml_grid == toml_grid
    assert yaml_grid.methods == ["bc-exp", "uds"] and yaml_grid.overrides == {"uds": {"learner.expectile": 0.9}}
    (tmp_path / "bad.yaml").write_text("overrides:\n  uds: 0.9\n")
    with pytest.raises(BenchError, match="'overrides' must map method -> {key: value}"):
        load_grid_file(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- bc-exp\n")
    with pytest.raises(BenchError, match="must hold a mapping"):
        load_grid_file(tmp_path / "list.yaml")
