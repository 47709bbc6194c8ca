"""BC-exp: the official SRA code's Adam weight decay (coupled L2, not AdamW's decoupled decay)."""
from __future__ import annotations

import pytest
import torch

from benchmark.config import resolve_config
from methods.bc_exp import BCExp
from methods.data import synthetic_data

from helpers import toy_task

TASK = toy_task()


def optimizer_step_with_zero_gradient(weight_decay: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The actor's parameters before and after one optimizer step whose loss gradient is zero."""
    method = BCExp(TASK, synthetic_data(), resolve_config(BCExp, {"weight_decay": weight_decay}), 0,
                   torch.device("cpu"), num_steps=1)
    params = list(method.actor.parameters())
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)
    method.optimizer.step()
    return before, [p.detach() for p in params]


def test_weight_decay_is_adams_l2_on_the_gradient():
    assert BCExp.Config().weight_decay == 5e-3
    before, after = optimizer_step_with_zero_gradient(0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # nothing to learn, no decay: no move
    before, after = optimizer_step_with_zero_gradient(5e-3)
    lr = BCExp.Config().lr
    for b, a in zip(before, after):
        big = b.abs() > 1e-3  # Adam's first step on the gradient wd * p is lr * sign(p) wherever wd * |p| >> eps
        # coupled L2 shrinks |p| by lr (= 3e-4); AdamW's decoupled decay would by lr * wd * |p| (< 1e-5) only
        assert (b.abs() - a.abs())[big] == pytest.approx(torch.full_like(b[big], lr), abs=2e-6)  # float32
