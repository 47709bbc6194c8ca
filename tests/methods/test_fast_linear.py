"""The oneDNN linear path (methods/nets.py) against nn.Linear: one layer and the nets built from it give the same
values and gradients to first and second order (the penalties of DemoDICE differentiate input gradients again),
the hand-written backward passes gradcheck and gradgradcheck, the switch routes every layer through the stock
path, and a torch without the private op (or with a broken one) falls back to it silently.

The op is fp32-only (float64 raises inside oneDNN), so the real op is compared in float32 with tolerances; the
backward's formulas are checked in float64 with the kernel swapped for nn.functional.linear."""
from __future__ import annotations

import importlib.util
import logging
import types
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from methods import nets

@pytest.fixture
def onednn_on():
    """The oneDNN path switched on for the test (whatever this CPU's default), skipped where the op is missing."""
    if not nets.onednn_available():
        pytest.skip("oneDNN's fused linear is not available here")
    with nets.use_onednn(True):
        yield


needs_onednn = pytest.mark.usefixtures("onednn_on")


def _inputs(seed: int, rows: int = 32, inputs: int = 17, outputs: int = 64, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, inputs, generator=g, dtype=dtype, requires_grad=True)
    w = (torch.randn(outputs, inputs, generator=g, dtype=dtype) / inputs ** 0.5).requires_grad_()
    b = torch.randn(outputs, generator=g, dtype=dtype).requires_grad_()
    return x, w, b


def _reference(x, w, b, relu):
    y = nn.functional.linear(x, w, b)
    return torch.relu(y) if relu else y


def _uses_onednn(out: torch.Tensor) -> bool:
    """Whether the graph behind ``out`` holds a oneDNN linear (so a test checks the path it means to)."""
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "OneDNN" in type(node).__name__:
            return True
        stack += [n for n, _ in node.next_functions]
    return False


# ------------------------------------------------------------------------------------------ one layer
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
    """A gradient penalty (DemoDICE's) differentiates the input gradient again, w.r.t. the weights."""
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


def _stock_kernel(x, weight, bias=None, relu=False):
    """nn.functional.linear in the op's signature: any dtype, so the backward's formulas can run in float64."""
    return _reference(x, weight, bias, relu)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_the_hand_written_backward_passes_gradcheck_in_float64(monkeypatch, relu, with_bias):
    """gradcheck runs the backward without a graph (the oneDNN branch), gradgradcheck with one (the
    differentiable branch); both against finite differences in float64."""
    monkeypatch.setattr(nets, "_onednn", _stock_kernel)
    x, w, b = _inputs(5, rows=6, inputs=5, outputs=7, dtype=torch.float64)  # both weight-gradient layouts:
    inputs = (x, w, b if with_bias else None)                                 # 5 < 7 here, 7 > 5 below
    assert torch.autograd.gradcheck(lambda *t: nets._OneDNNLinear.apply(*t, relu), inputs)
    assert torch.autograd.gradgradcheck(lambda *t: nets._OneDNNLinear.apply(*t, relu), inputs)
    x2, w2, _ = _inputs(6, rows=6, inputs=7, outputs=5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *t: nets._OneDNNLinear.apply(*t, None, relu), (x2, w2))


@needs_onednn
@pytest.mark.filterwarnings("ignore:Input #")  # gradcheck's advice to use float64: the op has no float64
@pytest.mark.parametrize("relu", [False, True])
def test_the_real_op_passes_gradcheck_in_float32(relu):
    x, w, b = _inputs(14, rows=4, inputs=5, outputs=24)
    assert nn.functional.linear(x, w, b).abs().min() > 0.02  # finite differences (eps 1e-3) cross no ReLU kink
    fn = lambda *t: nets._OneDNNLinear.apply(*t, relu)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b), eps=1e-3, atol=1e-3, rtol=1e-3)
    assert torch.autograd.gradgradcheck(fn, (x, w, b), eps=1e-3, atol=1e-3, rtol=1e-3)


# ---------------------------------------------------------------------------------- the nets built on it
def _plain_mlp(net: nn.Sequential) -> nn.Sequential:
    """The same network (same weights) of plain nn.Linear and nn.ReLU modules."""
    plain = nn.Sequential(*(nn.Linear(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m
                            for m in net))
    plain.load_state_dict(net.state_dict())
    assert all(type(m) in (nn.Linear, nn.ReLU) for m in plain)
    return plain


def _mlp_pair(hidden):
    """``nets.mlp`` and a plain copy; each with its parameters."""
    torch.manual_seed(0)
    net = nets.mlp(11, 6, hidden)
    plain = _plain_mlp(net)
    return net, plain, list(net.parameters()), list(plain.parameters())


def _ensemble_pair(hidden):
    """An ensemble critic's net through ``ensemble_forward`` (members one by one through oneDNN) and through
    its stock batched matmuls (the path it takes on GPU); the same parameters."""
    torch.manual_seed(0)
    net = nets.EnsembleCritic(5, 6, num_critics=3, hidden=hidden).net
    return (lambda x: nets.ensemble_forward(net, x)), net, list(net.parameters()), list(net.parameters())


PAIRS = {"mlp": _mlp_pair, "ensemble": _ensemble_pair}


def _penalty(fn, x: torch.Tensor) -> torch.Tensor:
    """DemoDICE's gradient penalty: E[(||d sum f(x) / dx|| - 1)^2], the input gradient kept in the graph."""
    (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    return (grad.norm(dim=-1) - 1).pow(2).mean()


@needs_onednn
@pytest.mark.parametrize("hidden", [(64, 32), (256, 256), (64, 8)], ids=str)  # 8: a layer left on the stock path
@pytest.mark.parametrize("kind", PAIRS)
def test_nets_match_plain_nn_linear_to_second_order(kind, hidden):
    ours, plain, ours_params, plain_params = PAIRS[kind](hidden)
    x = torch.randn(48, 11, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = ours(x)
    assert _uses_onednn(out)
    torch.testing.assert_close(out, plain(x), rtol=1e-5, atol=1e-5)

    # first order: inputs, weights and biases
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    first = [torch.autograd.grad(fn(x), [x, *params], upstream)
             for fn, params in ((ours, ours_params), (plain, plain_params))]
    for g_ours, g_plain in zip(*first):
        torch.testing.assert_close(g_ours, g_plain, rtol=1e-4, atol=1e-5)

    # second order: a penalty on the input gradient, differentiated w.r.t. inputs, weights and biases
    second = [torch.autograd.grad(_penalty(fn, x), [x, *params], allow_unused=True, materialize_grads=True)
              for fn, params in ((ours, ours_params), (plain, plain_params))]
    assert any(g.abs().sum() > 0 for g in second[1][1:])  # the penalty reaches the weights
    for g_ours, g_plain in zip(*second):
        torch.testing.assert_close(g_ours, g_plain, rtol=1e-4, atol=1e-5)


def test_the_stock_path_serves_what_onednn_cannot():
    """float64 (the op has none) and 3-d inputs go through nn.functional.linear: bit-identical."""
    net, plain, _, _ = _mlp_pair((64, 64))
    net.double(), plain.double()
    x = torch.randn(4, 11, dtype=torch.float64, requires_grad=True)
    assert not _uses_onednn(net(x)) and torch.equal(net(x), plain(x))
    net.float(), plain.float()
    x3 = torch.randn(2, 4, 11)
    assert torch.equal(net(x3), plain(x3))


# ------------------------------------------------------------------------------------------- the switch
def _train(net: nn.Module, steps: int = 5) -> list[torch.Tensor]:
    """A few Adam steps on a fixed regression with DemoDICE's penalty; the outputs before and after."""
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(64, 11, generator=g), torch.randn(64, 6, generator=g)
    opt = nets.adam(net.parameters(), lr=1e-3)
    outputs = [net(x).detach()]
    for _ in range(steps):
        loss = (net(x) - y).pow(2).mean() + 0.1 * _penalty(net, x.clone().requires_grad_())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return outputs + [net(x).detach()]


def test_switched_off_every_layer_is_nn_linear_bit_for_bit():
    net, plain, _, _ = _mlp_pair((64, 32))
    before = nets.ONEDNN_LINEAR
    with nets.use_onednn(False) as on:
        assert not on and not nets.ONEDNN_LINEAR
        x = torch.randn(8, 11, requires_grad=True)
        assert not _uses_onednn(net(x))
        for a, b in zip(_train(net), _train(plain)):
            assert torch.equal(a, b)
    assert nets.ONEDNN_LINEAR == before
    with nets.use_onednn(True) as on:
        assert on == nets.onednn_available()


_FAILURES = {
    "missing": lambda real: types.SimpleNamespace(),  # a torch without the op
    "not_implemented": lambda real: types.SimpleNamespace(_linear_pointwise=_raise(NotImplementedError)),
    "raising": lambda real: types.SimpleNamespace(_linear_pointwise=_raise(RuntimeError)),
    "wrong": lambda real: types.SimpleNamespace(_linear_pointwise=lambda *a: real._linear_pointwise(*a) * 1.01),
}


def _raise(error: type[Exception]):
    def op(*_args):
        raise error("mkldnn::_linear_pointwise: no kernel")
    return op


@pytest.mark.parametrize("failure", _FAILURES)
def test_a_torch_without_a_working_op_falls_back_silently(monkeypatch, caplog, failure):
    """With the op missing, raising or wrong, the probe says no, the switch cannot turn it on, and the nets
    train exactly as plain nn.Linear networks do; no warning, at most a debug log."""
    monkeypatch.setattr(torch.ops, "mkldnn", _FAILURES[failure](torch.ops.mkldnn))
    caplog.set_level(logging.DEBUG, logger=nets.__name__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not nets.onednn_available()
        with nets.use_onednn(True) as on:
            assert not on
            net, plain, _, _ = _mlp_pair((64, 32))
            for a, b in zip(_train(net), _train(plain)):
                assert torch.equal(a, b)
    assert all(record.levelno <= logging.DEBUG for record in caplog.records)


def _fresh_import(name: str = "fresh_nets"):
    """methods/nets.py executed anew as its own module (its import-time choice made again), not replacing
    ``methods.nets``."""
    spec = importlib.util.spec_from_file_location(name, Path(nets.__file__))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["default", "switched_on", "switched_off", "missing", "raising"])
def test_the_import_time_choice(monkeypatch, case):
    """Default: the per-CPU rule (oneDNN only where it wins); BENCH_ONEDNN=1 / 0 force it on / off; a torch
    that lacks the op or raises at its first use imports and trains on the stock path, even when forced on."""
    monkeypatch.delenv("BENCH_ONEDNN", raising=False)
    if case in ("switched_on", "switched_off"):
        monkeypatch.setenv("BENCH_ONEDNN", "1" if case == "switched_on" else "0")
    elif case in _FAILURES:
        monkeypatch.setenv("BENCH_ONEDNN", "1")
        monkeypatch.setattr(torch.ops, "mkldnn", _FAILURES[case](torch.ops.mkldnn))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = _fresh_import()
        net = fresh.mlp(3, 2, (32, 32))
        net(torch.randn(4, 3)).sum().backward()
    wanted = {"default": nets.onednn_wins_here(), "switched_on": True}.get(case, False)
    assert fresh.ONEDNN_LINEAR == (wanted and nets.onednn_available())


def test_cpu_info_reads_the_first_cpu(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 "
                    "avx512f\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: sse\n")
    info = nets.cpu_info(str(path))
    assert info["vendor_id"] == "AuthenticAMD" and info["model name"] == "AMD EPYC 9B14"
    assert set(info["flags"].split()) == {"fpu", "avx2", "avx512f"}
    assert nets.cpu_info(str(tmp_path / "missing")) == {}


@pytest.mark.parametrize("vendor, flags, wins", [
    ("AuthenticAMD", {"avx2", "avx512f"}, True),    # Zen 4/5: MKL runs its AVX2 code, oneDNN its AVX-512 code
    ("AuthenticAMD", {"avx2", "fma"}, False),       # Zen 3: MKL is as fast, and faster at narrow shapes
    ("GenuineIntel", {"avx512f", "amx_tile"}, False),
    ("", set(), False),                             # no /proc/cpuinfo
])
def test_the_per_cpu_rule(monkeypatch, vendor, flags, wins):
    info = {"vendor_id": vendor, "flags": " ".join(sorted(flags))} if vendor else {}
    monkeypatch.setattr(nets, "cpu_info", lambda: info)
    assert nets.onednn_wins_here() is wins
