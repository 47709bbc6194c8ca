"""The state a method declares once (``parts()``, ``state_values``) and its phase timer, through
``Method.state_dict`` / ``load_state_dict``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from methods import base
from methods.base import Method, PhaseTimer
from methods.data import synthetic_data
from methods.nets import adam

from helpers import roundtrip, toy_task


class Toy(Method):
    """Every kind of part and value the base class saves."""
    name = "toy-state"
    state_values = ("count", "table", "weights", "info", "history")
    phases = ("model",)

    def __init__(self, seed: int, with_extra: bool = True):
        super().__init__(toy_task(), synthetic_data(), None, seed, torch.device("cpu"), num_steps=10)
        torch.manual_seed(seed)
        self.net = torch.nn.Linear(3, 2)
        self.optimizer = adam(self.net.parameters(), 1e-3)
        self.generator = torch.Generator().manual_seed(seed)
        self.extra = torch.nn.Linear(2, 2) if with_extra else None
        self.count, self.table = seed, np.full(3, float(seed))
        self.weights, self.info, self.history = torch.full((2,), float(seed)), {"seed": seed}, [np.arange(seed)]

    def parts(self):
        return {"net": self.net, "optimizer": self.optimizer, "generator": self.generator,
                "pair": {"extra": self.extra, "again": self.generator}}

    def step(self):
        loss = self.net(torch.randn(4, 3, generator=self.generator)).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.count += 1
        self.table[0] += 1
        self.info["seen"] = self.count
        self.history.append(self.table.copy())


def test_state_dict_round_trips_parts_and_values():
    original = Toy(0)
    original.step()
    state = original.state_dict()
    assert set(state) == {"net", "optimizer", "generator", "pair", "count", "table", "weights", "info", "history",
                          "phase_times"}
    restored = Toy(1)
    restored.load_state_dict(roundtrip(state))
    for name in ("net", "extra"):
        for key, value in getattr(original, name).state_dict().items():
            torch.testing.assert_close(getattr(restored, name).state_dict()[key], value, rtol=0, atol=0)
    assert torch.equal(restored.generator.get_state(), original.generator.get_state())
    assert restored.count == 1 and restored.info == {"seed": 0, "seen": 1} and len(restored.history) == 2
    np.testing.assert_array_equal(restored.table, original.table)
    assert torch.equal(restored.weights, original.weights)
    original.step(), restored.step()  # the optimizer's moments came along: the same next step
    torch.testing.assert_close(restored.net.weight, original.net.weight, rtol=0, atol=0)


def test_values_are_saved_as_copies():
    """A checkpoint holds the values at save time, not references training goes on to change."""
    method = Toy(0)
    state = method.state_dict()
    method.step()
    method.weights += 1
    assert state["count"] == 0 and state["table"][0] == 0.0 and state["info"] == {"seed": 0}
    assert len(state["history"]) == 1 and torch.equal(state["weights"], torch.zeros(2))


def test_an_absent_optional_part_saves_none_and_refuses_a_state_for_it():
    without = Toy(0, with_extra=False)
    assert without.state_dict()["pair"]["extra"] is None
    Toy(1, with_extra=False).load_state_dict(roundtrip(without.state_dict()))
    with pytest.raises(ValueError, match="pair.extra"):
        Toy(1, with_extra=False).load_state_dict(Toy(0).state_dict())


def test_a_name_declared_twice_is_an_error():
    class Twice(Toy):
        state_values = ("net",)

    with pytest.raises(ValueError, match="net"):
        Twice(0).state_dict()


def test_the_timer_accumulates_syncs_and_survives_the_state_dict(monkeypatch):
    clock, synced = iter([1.0, 3.0, 10.0, 10.5]), []
    monkeypatch.setattr(base.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(base, "synchronize", synced.append)
    method = Toy(0)
    assert method.timer.seconds == {"model": 0.0}  # declared phases are reported from the start
    with method.timer("model"):
        pass
    with method.timer("model"):
        pass
    assert method.timer.seconds == {"model": 2.5}
    assert synced == [torch.device("cpu")] * 4  # before reading the clock, at both ends
    resumed = Toy(1)
    resumed.load_state_dict(roundtrip(method.state_dict()))
    assert resumed.timer.seconds == {"model": 2.5}


def test_the_timer_reports_undeclared_phases_once_used_and_loads_old_checkpoints():
    timer = PhaseTimer("cpu", ("a",))
    with timer("b"):
        pass
    assert set(timer.seconds) == {"a", "b"} and timer.seconds["a"] == 0.0 and timer.seconds["b"] >= 0.0
    method = Toy(0)
    state = method.state_dict()
    del state["phase_times"]  # a checkpoint from before every method's state held its phase times
    Toy(1).load_state_dict(state)
