"""What methods add to the shared learners goes through two hooks, the same for every learner: the BC regularizer
(every config's ``bc_weight``, rows from the batch) and the lr schedules a method passes in (resumed exactly)."""
from __future__ import annotations

import pytest
import torch

from benchmark.config import method_config
from benchmark.runner import load_imitation_data
from methods.learners import LEARNERS, IQLConfig, build_learner
from methods.learners.base import bc_log_likelihood, row_log_likelihood
from methods.learners.schedules import CosineDecay, LRDrop
from methods.nets import DeterministicActor, TanhGaussianActor
from methods.registry import get_method

from helpers import roundtrip, toy_task

TASK = toy_task(3, family="maze2d")


def config(name: str, **kw):
    extra = {"num_critics": 3} if name == "sacn" else {"awac_lambda": 0.1} if name == "awac" else {}
    return LEARNERS[name][1](hidden_dims=(32, 32), **extra, **kw)


def bc_batch(source: str) -> dict[str, torch.Tensor]:
    """64 rows of random actions and no reward signal, plus 32 BC rows whose action is 0.8 everywhere: separate
    (``rows``) or as half of the batch, flagged in batch["expert"] (``mask``)."""
    g = torch.Generator().manual_seed(0)
    obs, act = torch.rand(64, 3, generator=g) * 2 - 1, torch.rand(64, 2, generator=g) * 2 - 1
    bc_obs, bc_act = torch.rand(32, 3, generator=g) * 2 - 1, torch.full((32, 2), 0.8)
    rest = {"reward": torch.zeros(64), "next_obs": obs, "done": torch.ones(64)}
    if source == "rows":
        return {"obs": obs, "act": act, "bc_obs": bc_obs, "bc_act": bc_act, **rest}
    return {"obs": torch.cat([obs[:32], bc_obs]), "act": torch.cat([act[:32], bc_act]),
            "expert": torch.cat([torch.zeros(32), torch.ones(32)]), **rest}


def bc_rows(batch):
    if "bc_obs" in batch:
        return batch["bc_obs"], batch["bc_act"]
    flagged = batch["expert"].bool()
    return batch["obs"][flagged], batch["act"][flagged]


# Measured action errors on the BC rows after 10 updates (bc_weight 0 -> 10): iql, awac, sacn ~0.2-0.85 -> ~0.07;
# td3bc (its deterministic actor gets a squared-error term) 0.87-1.04 -> 0.33, from 0.83 at the start.
@pytest.mark.parametrize("source", ["mask", "rows"])
@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_learner_with_a_bc_weight_moves_its_actor_toward_the_bc_rows(name, source):
    batch = bc_batch(source)
    obs, act = bc_rows(batch)
    errors = {}
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        learner = build_learner(config(name, actor_lr=1e-2, bc_weight=weight), TASK, "cpu")
        start = float((learner.act(obs) - act).abs().mean())
        for _ in range(10):
            learner.update(batch)
        errors[weight] = float((learner.act(obs) - act).abs().mean())
    assert errors[10.0] < 0.6 * min(start, errors[0.0]), (start, errors)


def test_bc_rows_are_separate_rows_or_the_flagged_rows_of_the_batch():
    torch.manual_seed(0)
    for actor in (TanhGaussianActor(3, 2, (16,)), DeterministicActor(3, 2, (16,))):
        batch = bc_batch("mask")
        flagged = batch["expert"].bool()
        expected = row_log_likelihood(actor, batch["obs"][flagged], batch["act"][flagged]).mean()
        torch.testing.assert_close(bc_log_likelihood(actor, batch), expected)
        separate = {**batch, "bc_obs": batch["obs"][flagged], "bc_act": batch["act"][flagged]}
        torch.testing.assert_close(bc_log_likelihood(actor, separate), expected)  # separate rows come first
        with pytest.raises(KeyError, match="BC rows"):
            bc_log_likelihood(actor, {"obs": batch["obs"], "act": batch["act"]})


def learning_rates(learner) -> list[float]:
    return [group["lr"] for optimizer in learner.optimizers().values() for group in optimizer.param_groups]


def lr_sequence(learner, batch, updates: int) -> list[list[float]]:
    """Every optimizer's lr after each of ``updates`` updates."""
    out = []
    for _ in range(updates):
        learner.update(batch)
        out.append(learning_rates(learner))
    return out


def test_schedules_resume_with_the_learner_to_the_same_lr_sequence():
    """Cosine actor lr and the drop (SRA's), checkpointed mid-run before the drop: resumed = uninterrupted."""
    batch, total, stop = bc_batch("mask"), 10, 3
    schedules = lambda: [CosineDecay(12), LRDrop(6)]  # noqa: E731
    iql = IQLConfig(hidden_dims=(16,))
    torch.manual_seed(0)
    expected = lr_sequence(build_learner(iql, TASK, "cpu", schedules()), batch, total)

    torch.manual_seed(0)
    first = build_learner(iql, TASK, "cpu", schedules())
    got = lr_sequence(first, batch, stop)
    resumed = build_learner(iql, TASK, "cpu", schedules())
    resumed.load_state_dict(roundtrip(first.state_dict()))
    got += lr_sequence(resumed, batch, total - stop)
    assert got == expected
    after_drop = expected[5]  # after update 6
    assert len(set(after_drop)) == 1 and after_drop[0] < expected[4][0] / 5  # the drop hit every optimizer
    assert expected[-1][0] < after_drop[0] and expected[-1][1:] == after_drop[1:]  # only the actor's cosine goes on

    with pytest.raises(ValueError, match="schedules"):
        build_learner(iql, TASK, "cpu").load_state_dict(first.state_dict())


def test_sra_and_otil_pass_their_schedules_to_the_learner(umaze_smoke):
    data = load_imitation_data(umaze_smoke, "smoke", 5)

    def learner_of(method: str, num_steps: int = 300):
        cls = get_method(method)
        return cls(umaze_smoke, data, method_config(cls, umaze_smoke, "smoke"), 0, torch.device("cpu"),
                   num_steps).learner

    cosine, drop = learner_of("sra").schedules  # maze2d: the cosine over 500k updates, the drop at half the run
    assert isinstance(cosine, CosineDecay) and cosine.steps == 500_000 and cosine.optimizer == "actor_optimizer"
    assert isinstance(drop, LRDrop) and drop.at == 150
    assert learner_of("sra-td3bc").schedules == ()  # the Table 4 learners keep constant lrs
    (otil_cosine,) = learner_of("otil", 1000).schedules  # the cosine over the run
    assert isinstance(otil_cosine, CosineDecay) and otil_cosine.steps == 1000
