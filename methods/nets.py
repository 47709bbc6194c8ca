"""Shared networks: MLP, deterministic and tanh-Gaussian actors, ensembles, and the optimizer factory.

Hidden layers on CPU can run their fp32 matmuls through oneDNN (``linear``, by PyTorch's private
``torch.ops.mkldnn._linear_pointwise``): same math as ``nn.Linear`` (IEEE fp32, no reduced precision; only the
summation order differs). Whether that is faster depends on the CPU kind, so the default is a fixed rule per
CPU (deterministic: the same machine always takes the same path), from measurements at 1 thread:

- AMD with AVX-512 (Zen 4/5): on, since the MKL inside PyTorch runs its AVX2 code there: a 256x256x256 matmul
  took ~150 us through oneDNN vs ~315 us through MKL (AMD EPYC, Zen 5; Zen 4, same ISA, is not measured).
- AMD without AVX-512 (Zen 3) and Intel: off. On an AMD EPYC (Zen 3, family 25 model 1) both take ~390-410 us
  at 256^3, MKL is faster at the narrow shapes, and IQL updated 93 vs 75 times/s; an Intel Xeon with AMX
  measured IQL at 0.77x the stock-path reference through oneDNN.

``BENCH_ONEDNN=1`` / ``BENCH_ONEDNN=0`` force it on / off for a whole process, ``with use_onednn(...):`` inside
one; ``bench perf --onednn/--no-onednn`` measures both on a given machine. Results made either way differ in the
last bits (another summation order), so they are not bit-comparable; each result records the path it took. The
op is probed once at import (a small forward and backward against ``nn.functional.linear``); a torch that drops
or breaks it falls back silently (a debug log only). The hand-written backward is checked against ``nn.Linear``
to first and second order, and the fallback with the op taken away, in ``tests/methods/test_fast_linear.py``.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import platform
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

# --------------------------------------------------------------------------------------------- fast linear
logger = logging.getLogger(__name__)


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False):
    """relu?(x @ weight.T + bias) by oneDNN's fp32 matmul, the ReLU fused in; ``weight.t()`` needs no copy."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu" if relu else "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """nn.functional.linear, optionally followed by ReLU, with all three matmuls through oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias, relu: bool):
        y = _onednn(x, weight, bias, relu)
        ctx.save_for_backward(x, weight, y if relu else None)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, y = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph (gradient penalties): differentiable ops, twice-differentiable
            if y is not None:
                grad = grad * (y > 0)
            return (grad @ weight if ctx.needs_input_grad[0] else None,
                    grad.t() @ x if ctx.needs_input_grad[1] else None,
                    grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None, None)
        if y is not None:  # ReLU's own backward: the mask comes from its output
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
        grad_x = _onednn(grad, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:  # oneDNN copies a transposed first operand: let it be the narrower one
            narrow_input = x.shape[1] < grad.shape[1]
            grad_weight = _onednn(x.t(), grad.t()).t() if narrow_input else _onednn(grad.t(), x.t())
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None


def _matches_stock_linear(inputs: int, outputs: int) -> bool:
    """One small ``_OneDNNLinear`` forward and backward (the calls training makes) against nn.functional.linear."""
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.linspace(-1, 1, 3 * inputs).reshape(3, inputs).requires_grad_()
        w = torch.linspace(1, -1, outputs * inputs).reshape(outputs, inputs).requires_grad_()
        b = torch.linspace(-0.5, 0.5, outputs).requires_grad_()
        upstream = torch.linspace(-1, 1, 3 * outputs).reshape(3, outputs)
        ours, ref = _OneDNNLinear.apply(x, w, b, True), torch.relu(nn.functional.linear(x, w, b))
        pairs = [(ours, ref), *zip(torch.autograd.grad(ours, (x, w, b), upstream),
                                   torch.autograd.grad(ref, (x, w, b), upstream))]
    return all(torch.allclose(mine, stock, atol=1e-4) for mine, stock in pairs)


def onednn_available() -> bool:
    """Whether oneDNN's fused linear is here and right: x86-64, a torch with the (private) op, and small
    products (both weight-gradient layouts) that match ``nn.functional.linear``. A torch that drops or breaks
    the op falls back silently."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        if _matches_stock_linear(16, 24) and _matches_stock_linear(24, 16):
            return True
        logger.debug("oneDNN linear disagrees with nn.functional.linear: using nn.functional.linear")
    except Exception as err:  # noqa: BLE001 -- any failure of a private op means: don't use it
        logger.debug("oneDNN linear unavailable (%s: %s): using nn.functional.linear", type(err).__name__, err)
    return False


@functools.lru_cache(maxsize=None)
def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first CPU's fields in /proc/cpuinfo (``vendor_id``, ``model name``, ``flags``, ...); {} where there is
    none (not Linux). Read once per path (cached: the CPU does not change; treat the dict as read-only)."""
    info: dict[str, str] = {}
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    if info:  # the blank line after the first CPU
                        break
                    continue
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_flags() -> set[str]:
    """This CPU's feature flags (Linux; empty elsewhere)."""
    return set(cpu_info().get("flags", "").split())


def onednn_wins_here() -> bool:
    """The per-CPU rule of the module docstring: oneDNN's matmuls by default only on AMD CPUs with AVX-512."""
    return cpu_info().get("vendor_id") == "AuthenticAMD" and "avx512f" in cpu_flags()


def onednn_default() -> bool:
    """BENCH_ONEDNN=1 / 0 forces the path; unset, the per-CPU rule. Either way only if the op works here."""
    forced = os.environ.get("BENCH_ONEDNN", "").strip()
    wanted = forced != "0" if forced else onednn_wins_here()
    return wanted and onednn_available()


# False: nn.functional.linear everywhere; see the module docstring for the default and how to switch it.
ONEDNN_LINEAR = onednn_default()
ONEDNN_MIN_FEATURES = 16  # narrower outputs (scalar heads) are faster through MKL's GEMV


@contextlib.contextmanager
def use_onednn(enabled: bool):
    """Inside, ``linear`` takes the oneDNN path if ``enabled`` and the op is here and right; False routes
    every layer through nn.functional.linear. The previous setting comes back on exit."""
    global ONEDNN_LINEAR
    before, ONEDNN_LINEAR = ONEDNN_LINEAR, bool(enabled) and onednn_available()
    try:
        yield ONEDNN_LINEAR
    finally:
        ONEDNN_LINEAR = before


def uses_onednn(x: torch.Tensor) -> bool:
    return (ONEDNN_LINEAR and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.compiler.is_compiling() and not torch.is_autocast_enabled("cpu"))  # bf16 runs: stock ops


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False):
    """nn.functional.linear (weight: (out, in)), then ReLU if asked; fp32 CPU matrices of hidden-layer width
    go through oneDNN. Same numbers either way, up to float32 summation order."""
    if x.dim() == 2 and weight.shape[0] >= ONEDNN_MIN_FEATURES and uses_onednn(x):
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
            return _OneDNNLinear.apply(x, weight, bias, relu)
        return _onednn(x, weight, bias, relu)
    y = nn.functional.linear(x, weight, bias)
    return torch.relu(y) if relu else y


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) through ``linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def _fold_relu(layers: Iterable[nn.Module]) -> list[tuple[nn.Module, bool]]:
    """(layer, followed by an nn.ReLU) for each layer, the ReLU modules themselves left out."""
    out: list[tuple[nn.Module, bool]] = []
    for layer in layers:
        if type(layer) is nn.ReLU and out and isinstance(out[-1][0], (nn.Linear, EnsembleLinear)) and not out[-1][1]:
            out[-1] = (out[-1][0], True)
        else:
            out.append((layer, False))
    return out


class MLP(nn.Sequential):
    """nn.Sequential (same state dict) whose Linear + ReLU pairs run as one ``linear(..., relu=True)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, relu in _fold_relu(self):
            x = linear(x, layer.weight, layer.bias, relu) if isinstance(layer, nn.Linear) else layer(x)
        return x


ACTION_CLIP = 1.0 - 1e-7  # actions are clipped inside log-probs so atanh stays finite


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256), activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [Linear(in_dim, width), activation()]
        in_dim = width
    layers.append(Linear(in_dim, out_dim))
    return MLP(*layers)


class DeterministicActor(nn.Module):
    """a = tanh(MLP(s)): actions inside (-1, 1)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class TanhGaussianActor(nn.Module):
    """a = tanh(u), u ~ N(mu(s), sigma(s)); state-dependent log-std clamped to [log_std_min, log_std_max]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 log_std_min: float = -5.0, log_std_max: float = 2.0, mean_clip: float = 9.0):
        super().__init__()
        self.trunk = mlp(obs_dim, 2 * act_dim, hidden)
        self.log_std_min, self.log_std_max, self.mean_clip = log_std_min, log_std_max, mean_clip

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.trunk(obs).chunk(2, dim=-1)
        return mu.clamp(-self.mean_clip, self.mean_clip), log_std.clamp(self.log_std_min, self.log_std_max)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) summed over action dims, tanh Jacobian included."""
        mu, log_std = self(obs)
        return tanh_gaussian_log_prob(mu, log_std, action)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized sample and its log-probability (noise from ``generator`` if given, else the global RNG)."""
        mu, log_std = self(obs)
        noise = (torch.randn_like(mu) if generator is None
                 else torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype))
        u = mu + log_std.exp() * noise
        log_prob = _gaussian_log_prob(mu, log_std, u) - _tanh_log_det(u)
        return torch.tanh(u), log_prob

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


class GaussianActor(nn.Module):
    """a ~ N(tanh(mu(s)), sigma): a Gaussian around a squashed mean, one state-independent log-std per action dim
    (initialised at 0, clamped to [log_std_min, log_std_max]). Kostrikov's IQL policy (``NormalTanhPolicy`` with
    ``tanh_squash_distribution=False``, ``state_dependent_std=False``), which OTR's official code uses. Unlike
    ``TanhGaussianActor`` it never takes atanh of a data action, so saturated actions (+-1) get no outsized
    likelihood."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 log_std_min: float = -5.0, log_std_max: float = 2.0):
        super().__init__()
        self.trunk = mlp(obs_dim, act_dim, hidden)
        self.log_std = nn.Parameter(torch.zeros(act_dim))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tanh(self.trunk(obs))
        return mean, self.log_std.clamp(self.log_std_min, self.log_std_max).expand_as(mean)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log N(a; tanh(mu(s)), sigma^2) summed over action dims."""
        mean, log_std = self(obs)
        return _gaussian_log_prob(mean, log_std, action)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)[0]


def _gaussian_log_prob(mu: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((u - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log |d tanh(u) / du| summed over dims, in the numerically stable form."""
    return (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)


def tanh_gaussian_log_prob(mu: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    u = torch.atanh(action.clamp(-ACTION_CLIP, ACTION_CLIP))
    return _gaussian_log_prob(mu, log_std, u) - _tanh_log_det(u)


def adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters; ~10% faster per update on CPU here)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


def gradient_step(optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], loss: torch.Tensor,
                  before_step: Callable[[], None] | None = None) -> None:
    """One optimizer update on ``loss``: the only zero_grad/backward/step sequence in methods/.
    ``before_step`` edits the gradients in between (e.g. the dynamics ensemble's per-member clipping).

    Several optimizers take one backward of a sum of losses, then step in turn: the same update as one
    gradient step per loss when each loss reads only its own optimizer's parameters (or values computed
    before any step) -- IQL's value, critic and actor losses, for one. One backward costs one pass of the
    autograd engine instead of three."""
    optimizers = (optimizers,) if isinstance(optimizers, torch.optim.Optimizer) else tuple(optimizers)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if before_step is not None:
        before_step()
    for optimizer in optimizers:
        optimizer.step()


class EnsembleLinear(nn.Module):
    """N independent linear layers applied as one batched matmul: (N, B, in) -> (N, B, out).

    A 2-d input (B, in) is shared by all members (broadcast, no copy)."""

    def __init__(self, in_dim: int, out_dim: int, num_members: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim))
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.matmul(x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


def ensemble_mlp(in_dim: int, out_dim: int, num_members: int, hidden: Sequence[int] = (256, 256),
                 activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [EnsembleLinear(in_dim, width, num_members), activation()]
        in_dim = width
    layers.append(EnsembleLinear(in_dim, out_dim, num_members))
    return nn.Sequential(*layers)


def ensemble_forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for an ``ensemble_mlp``: (B, in) or (N, B, in) -> (N, B, out).

    On CPU the members run one at a time through ``linear`` (2-d matmuls, oneDNN's where it serves): the same
    numbers as the batched matmul up to summation order, and faster, most of all at the scalar head, which MKL's
    batched kernels run ~6-10x slower than 2-d ones (AMD EPYC, Zen 3: an IQL update's matmuls, replayed alone,
    8.3 ms this way vs 9.1 batched; CORL's IQL, two plain MLPs, 8.4). On GPU one batched matmul per layer is the
    fast path."""
    if x.device.type != "cpu":
        return net(x)
    layers = [((m.weight.unbind(0), m.bias.unbind(0)), relu) if isinstance(m, EnsembleLinear) else (m, relu)
              for m, relu in _fold_relu(net)]
    inputs = x.unbind(0) if x.dim() == 3 else [x] * net[0].weight.shape[0]
    outputs = []
    for k, h in enumerate(inputs):
        for layer, relu in layers:
            if isinstance(layer, tuple):
                weights, biases = layer
                h = linear(h, weights[k].t(), biases[k][0], relu)
            else:
                h = layer(h)
        outputs.append(h)
    return torch.stack(outputs)


class EnsembleCritic(nn.Module):
    """N Q-functions Q_k(s, a) as one batched module (twin critics: N = 2; SAC-N: N = 10..500)."""

    def __init__(self, obs_dim: int, act_dim: int, num_critics: int = 2, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.num_critics = num_critics
        self.net = ensemble_mlp(obs_dim + act_dim, 1, num_critics, hidden)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q values, shape (N, B)."""
        return ensemble_forward(self.net, torch.cat([obs, action], dim=-1)).squeeze(-1)


class ValueFunction(nn.Module):
    def __init__(self, obs_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


@contextlib.contextmanager
def no_param_grad(module: nn.Module):
    """Inside, the graph holds no path to ``module``'s parameters: a loss that only needs gradients
    *through* it (the actor through the critic) skips the weight-gradient matmuls on backward. A no-op while
    ``torch.compile`` traces: compiled updates (methods/compiled_step.py) differentiate only what they are given."""
    if torch.compiler.is_compiling():
        yield module
        return
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A target network: a copy that takes no gradients."""
    import copy
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, in one multi-tensor kernel."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)
