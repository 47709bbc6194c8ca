"""The CVAE reverse policy (methods/cvae.py): it learns p(a | s') on a toy problem with a known answer."""
from __future__ import annotations

import torch

from methods.cvae import CVAE, CVAEConfig, uniform_actions


def toy_pairs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditions c ~ U(-1, 1)^2 and the one action that led there, a = (0.6 c0 - 0.3 c1, 0.5 c1)."""
    cond = torch.rand(n, 2, generator=generator) * 2 - 1
    return cond, torch.stack([0.6 * cond[:, 0] - 0.3 * cond[:, 1], 0.5 * cond[:, 1]], 1)


def test_cvae_samples_the_action_its_condition_implies():
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cond, act = toy_pairs(4000, generator)
    cvae = CVAE(2, 2, CVAEConfig(hidden_dims=(64, 64), num_steps=300, batch_size=256))
    with torch.no_grad():
        untrained_loss = float(cvae.loss(cond, act))
    final_loss = cvae.fit(cond, act, generator)
    assert final_loss < 0.5 * untrained_loss

    test_cond, test_act = toy_pairs(1000, torch.Generator().manual_seed(1))
    sampled = cvae.sample(test_cond, torch.Generator().manual_seed(2))
    assert sampled.shape == test_act.shape and sampled.abs().max() < 1
    error = (sampled - test_act).abs().mean()
    ignoring_the_condition = (test_act - act.mean(0)).abs().mean()  # the best a condition-blind policy does
    assert error < 0.25 * ignoring_the_condition, (float(error), float(ignoring_the_condition))


def test_uniform_actions_cover_the_action_box():
    actions = uniform_actions(20_000, 3, torch.Generator().manual_seed(0), "cpu")
    assert actions.shape == (20_000, 3) and actions.min() >= -1 and actions.max() <= 1
    torch.testing.assert_close(actions.mean(0), torch.zeros(3), atol=0.02, rtol=0)
    torch.testing.assert_close(actions.var(0), torch.full((3,), 1 / 3), atol=0.02, rtol=0)  # U(-1, 1): 1/3
