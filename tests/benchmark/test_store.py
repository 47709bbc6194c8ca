"""The results store (benchmark/store.py; atomic writes from core/io.py): writes are atomic, a corrupt result
file is a clear error, is set aside (never deleted) and makes the run count as not done."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from benchmark import store
from benchmark.store import CorruptResultError, load_result, read_result, run_dir
from core.io import atomic_write_json

RESULT = {"run_key": "bc-exp/t/seed0-x", "method": "bc-exp", "task": "t", "seed": 0, "profile": "smoke",
          "status": "done"}


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "dir" / "result.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"score": np.float32(0.5), "curve": np.arange(3), "loss": torch.tensor([1.0, 2.0]),
                             "step": torch.tensor(7), "where": tmp_path})
    assert json.loads(path.read_text()) == {"score": 0.5, "curve": [0, 1, 2], "loss": [1.0, 2.0], "step": 7,
                                            "where": str(tmp_path)}
    assert os.listdir(path.parent) == ["result.json"]


@pytest.mark.parametrize("failure", ["serialize", "replace"])
def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch, failure):
    path = tmp_path / "result.json"
    atomic_write_json(path, RESULT)
    if failure == "serialize":  # fails before anything is written
        with pytest.raises(TypeError, match="not JSON serializable: object"):
            atomic_write_json(path, {**RESULT, "bad": object()})
    else:  # the data is on disk in the temporary file, then the rename fails (a kill, a full disk)
        def refuse(*_):
            raise OSError("disk gone")
        monkeypatch.setattr(os, "replace", refuse)
        with pytest.raises(OSError, match="disk gone"):
            atomic_write_json(path, {**RESULT, "status": "failed"})
    assert read_result(path) == RESULT
    assert os.listdir(tmp_path) == ["result.json"]  # the temporary file is cleaned up


@pytest.mark.parametrize("text, fragment", [
    ('{"run_key": "bc-exp/t/seed0-x", "meth', "Unterminated string"),  # a truncated write (not ours: atomic)
    ("", "Expecting value"),
    ('{"run_key": "bc-exp/t/seed0-x", "method": "bc-exp"}', "missing keys ['profile', 'seed', 'status', 'task']"),
    ("[1, 2]", "missing keys ['method', 'profile', 'run_key', 'seed', 'status', 'task']"),
])
def test_reading_a_corrupt_result_names_the_file_and_the_problem(tmp_path, text, fragment):
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(CorruptResultError) as error:
        read_result(path)
    message = str(error.value)
    assert message.startswith(f"corrupt result file {path}: ") and fragment in message and "\n" not in message


def test_a_corrupt_result_is_set_aside_never_deleted_and_the_run_is_not_done(tmp_path):
    path = run_dir(tmp_path, RESULT["run_key"]) / store.RESULT_FILE
    assert load_result(tmp_path, RESULT["run_key"]) is None  # absent: not done, nothing to warn about
    warnings = []
    for n in range(2):  # a second corrupt file does not overwrite the first one set aside
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"garbage {n}")
        assert load_result(tmp_path, RESULT["run_key"], warn=warnings.append) is None
        assert not path.exists() and (path.parent / f"result.json.corrupt-{n}").read_text() == f"garbage {n}"
    assert len(warnings) == 2 and all("will redo the run" in w and "corrupt result file" in w for w in warnings)
    assert [info["run_key"] for info in store.iter_set_aside(tmp_path)] == [RESULT["run_key"]]
    atomic_write_json(path, RESULT)  # redone: found again, no longer counted as set aside
    assert load_result(tmp_path, RESULT["run_key"]) == RESULT and list(store.iter_set_aside(tmp_path)) == []
