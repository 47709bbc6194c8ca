"""The oneDNN linear path (methods/nets.py) against nn.Linear: same values, same gradients to first and second
order, and a silent fallback when the private op is missing or wrong."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from methods import nets

needs_onednn = pytest.mark.skipif(not nets.onednn_available(), reason="oneDNN's fused linear is not available here")


def _inputs(seed: int, rows: int = 32, inputs: int = 17, outputs: int = 64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, inputs, generator=g, requires_grad=True)
    w = (torch.randn(outputs, inputs, generator=g) / inputs ** 0.5).requires_grad_()
    b = torch.randn(outputs, generator=g).requires_grad_()
    return x, w, b


def _reference(x, w, b, relu):
    y = nn.functional.linear(x, w, b)
    return torch.relu(y) if relu else y


@needs_onednn
@pytest.mark.parametrize("create_graph", [False, True], ids=["plain", "create_graph"])  # the backward's two branches
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_first_order_gradients_match_nn_linear(relu, with_bias, create_graph):
    x, w, b = _inputs(0)
    b = b if with_bias else None
    upstream = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    ours = nets.linear(x, w, b, relu)
    assert ours.grad_fn is not None and "OneDNN" in type(ours.grad_fn).__name__  # the path under test
    ref = _reference(x, w, b, relu)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    params = [t for t in (x, w, b) if t is not None]
    ours_grads = torch.autograd.grad(ours, params, upstream, create_graph=create_graph)
    for g_ours, g_ref in zip(ours_grads, torch.autograd.grad(ref, params, upstream)):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-4)


@needs_onednn
@pytest.mark.parametrize("relu", [False, True])
def test_second_order_gradients_match_nn_linear(relu):
    """A gradient penalty (DemoDICE's, CLARE's) differentiates the input gradient again, w.r.t. the weights."""
    def penalty_grads(fn):
        x, w, b = _inputs(2)
        out = fn(fn(x, w, b, relu), w2, b2, False).sum()
        (grad_x,) = torch.autograd.grad(out, x, create_graph=True)
        return torch.autograd.grad((grad_x.norm(dim=1) - 1).pow(2).mean(), (w, w2))  # biases: no second order
    g = torch.Generator().manual_seed(3)
    w2 = (torch.randn(16, 64, generator=g) / 8).requires_grad_()
    b2 = torch.zeros(16, requires_grad=True)
    for g_ours, g_ref in zip(penalty_grads(nets.linear), penalty_grads(_reference)):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-5)


def test_a_torch_without_the_op_falls_back_to_nn_linear(monkeypatch):
    def missing(*_args, **_kwargs):
        raise AttributeError("_OpNamespace 'mkldnn' object has no attribute '_linear_pointwise'")
    monkeypatch.setattr(nets, "_onednn", missing)
    assert not nets.onednn_available()
    monkeypatch.setattr(nets, "_onednn", lambda x, w, b=None, relu=False: nn.functional.linear(x, w, b) + 1)
    assert not nets.onednn_available()  # present but wrong counts as missing
    monkeypatch.setattr(nets, "ONEDNN_LINEAR", False)
    x, w, b = _inputs(4)
    torch.testing.assert_close(nets.linear(x, w, b, relu=True), _reference(x, w, b, True))
