"""UDS (Yu et al. 2022, "How to leverage unlabeled data in offline RL"), as the SRA paper uses it for IL:
expert transitions get reward 1, every supplementary transition 0, and an offline RL learner trains on
both. Batches hold 256 expert + 256 supplementary transitions, as SRA's warm-up (SRA without
augmentation is exactly this). ``uds`` = ``uds-iql``; ``uds-td3bc``, ``uds-awac``, ``uds-sacn`` for Table 4.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from methods.base import Method, act_numpy
from methods.learners import AWACConfig, IQLConfig, SACNConfig, TD3BCConfig, build_learner, learner_task_defaults
from methods.learners.sacn import SMOKE_BUDGET as SACN_SMOKE
from methods.registry import register
from methods.sampling import MixtureSampler, Source


@dataclass(frozen=True)
class Config:
    expert_batch_size: int = 256
    supplementary_batch_size: int = 256
    expert_reward: float = 1.0
    supplementary_reward: float = 0.0
    learner: IQLConfig = field(default_factory=IQLConfig)


@register
class UDS(Method):
    name = "uds"
    description = "Unlabeled data sharing: expert reward 1, supplementary 0, IQL on the union"
    Config = Config

    @classmethod
    def task_defaults(cls, task) -> dict:
        """The learner's per-task values (AWAC's lambda, SAC-N's critics); IQL and TD3+BC have none."""
        learner = learner_task_defaults(cls.Config().learner, task, cls.name)
        return {"learner": learner} if learner else {}

    def __init__(self, task, data, config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        self.learner = build_learner(config.learner, task, self.device)
        # expert rows are flagged: they are the BC rows if ``learner.bc_weight`` adds a BC term (0 by default)
        self.sampler = MixtureSampler(
            {"expert": Source(data.expert, config.expert_batch_size, config.expert_reward, expert=True),
             "supplementary": Source(data.supplementary, config.supplementary_batch_size, config.supplementary_reward)},
            data.normalizer, seed, self.device)

    def update(self, step):
        return self.learner.update(self.sampler.sample())

    def act(self, obs):
        return act_numpy(self.learner, self.data.normalizer, obs, self.device)

    def parts(self):
        return {"learner": self.learner, "sampler": self.sampler}


@dataclass(frozen=True)
class TD3BCVariantConfig(Config):
    learner: TD3BCConfig = field(default_factory=TD3BCConfig)


@dataclass(frozen=True)
class AWACVariantConfig(Config):
    learner: AWACConfig = field(default_factory=AWACConfig)


@dataclass(frozen=True)
class SACNVariantConfig(Config):
    learner: SACNConfig = field(default_factory=SACNConfig)


@register
class UDSTD3BC(UDS):
    name, description, Config = "uds-td3bc", "UDS labelling with TD3+BC", TD3BCVariantConfig


@register
class UDSAWAC(UDS):
    name, description, Config = "uds-awac", "UDS labelling with AWAC", AWACVariantConfig


@register
class UDSSACN(UDS):
    name, description, Config = "uds-sacn", "UDS labelling with SAC-N", SACNVariantConfig
    budgets = {"smoke": {"learner": SACN_SMOKE}}
