"""Compiled updates in stages (methods/compiled_step.py): SAC-N's actor-and-temperature step, then its critic step
on the new actor; AWAC's and TD3+BC's critic step, then their actor step on the new critic (TD3+BC's every other
update, a critic-only graph between); each against the eager update on the same batches and the same noise."""
from __future__ import annotations

import pytest
import torch
import torch._inductor.config as inductor_config

from methods.compiled_step import CompiledUpdate
from methods.learners.awac import AWAC, AWACConfig
from methods.learners.sacn import SACN, SACNConfig
from methods.learners.td3bc import TD3BC, TD3BCConfig

from helpers import learner_batch

OBS, ACT, BATCH = 5, 3, 64
# tau 0.5: the target nets move as much as the nets, so a target update missed or misplaced shows
CONFIG = SACNConfig(hidden_dims=(32, 32), num_critics=3, bc_weight=0.5, tau=0.5)
LEARNERS = {"sacn": (SACN, CONFIG),
            "awac": (AWAC, AWACConfig(hidden_dims=(32, 32), awac_lambda=0.3, bc_weight=0.5, tau=0.5)),
            "td3bc": (TD3BC, TD3BCConfig(hidden_dims=(32, 32), bc_weight=0.5, tau=0.5))}  # 5 updates: both its graphs


def _batch(seed: int) -> dict[str, torch.Tensor]:
    return learner_batch(seed, OBS, ACT, BATCH)


def _parameters(learner) -> dict[str, torch.Tensor]:
    nets = {name: part for name, part in learner.parts().items() if isinstance(part, torch.nn.Module)}
    if isinstance(learner, SACN):
        nets["temperature"] = learner.temperature
    return {f"{part}.{name}": p for part, net in nets.items() for name, p in net.named_parameters()}


@pytest.mark.parametrize("name", LEARNERS)
def test_compiled_update_equals_the_eager_one(name):
    """Same parameters after 5 updates (a later stage reads what the earlier one just stepped; get that order
    wrong and the parameters differ by far more than the tolerance), same logs. Inductor draws its own noise
    unless ``fallback_random``: set here so both paths sample the same actions."""
    cls, config = LEARNERS[name]
    learners = []
    for compiled in (False, True):
        torch.manual_seed(0)
        learner = cls(OBS, ACT, config, torch.device("cpu"))
        assert not compiled or learner.compile_update()
        learners.append(learner)
    eager, compiled = learners
    before = {k: v.detach().clone() for k, v in _parameters(eager).items()}
    with inductor_config.patch(fallback_random=True):
        for step in range(5):
            logs = []
            for learner in learners:
                torch.manual_seed(100 + step)  # the same noise for both
                logs.append(learner.update(_batch(step)))
    assert logs[0].keys() == logs[1].keys()
    for key in logs[0]:
        torch.testing.assert_close(logs[1][key], logs[0][key], rtol=1e-4, atol=1e-5, msg=key)
    theirs = _parameters(compiled)
    for name, mine in _parameters(eager).items():
        torch.testing.assert_close(theirs[name], mine, rtol=1e-4, atol=1e-5, msg=name)
    moved = {name: (p - before[name]).abs().max().item() for name, p in _parameters(eager).items()}
    first = {part: next(v for k, v in moved.items() if k.startswith(part + ".")) for part in ("actor", "critic")}
    moved_least = min(first["actor"], first["critic"], moved.get("temperature.log_alpha", 1.0))
    assert moved_least > 1e-4  # the comparison can fail: every part moved by far more than its tolerance


def test_compiled_sacn_is_deterministic_with_its_own_noise():
    """Without ``fallback_random`` inductor draws the noise itself, seeded from the global RNG: the same seed
    gives the same numbers (what resuming a run relies on)."""
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        learner = SACN(OBS, ACT, CONFIG, torch.device("cpu"))
        learner.compile_update()
        for step in range(3):
            learner.update(_batch(step))
        runs.append(_parameters(learner))
    for name, p in runs[0].items():
        assert torch.equal(p, runs[1][name]), name


def test_an_optimizer_steps_in_one_stage_only():
    torch.manual_seed(0)
    learner = SACN(OBS, ACT, CONFIG, torch.device("cpu"))
    with pytest.raises(ValueError, match="more than one stage"):
        CompiledUpdate([(learner.actor_losses, (learner.actor_optimizer,)),
                        (learner.critic_losses, (learner.actor_optimizer,))], {"actor": learner.actor})
