"""SRA's registered variants: ``sra-noaug``, the like-for-like control (SRA's learner, batches, schedules and data
handling, no reverse model and no augmentation rounds: SRA minus it measures augmentation alone), and the Table 4
learners fed by the same augmentation (``sra-iql`` = ``sra``, ``sra-awac``, ``sra-td3bc``, ``sra-sacn``). Each
inherits SRA's budgets, run length and task defaults (``sra-sacn`` adds SAC-N's smoke budget). The Table 4 learners
run with their own defaults: no BC term (``learner.bc_weight`` adds SRA's, on the expert half, to any of them) and
constant lrs (SRA's ``learner_lr`` and schedules are the official IQL's)."""
from __future__ import annotations

from dataclasses import dataclass, field

from methods.learners import AWACConfig, SACNConfig, TD3BCConfig
from methods.learners.sacn import SMOKE_BUDGET as SACN_SMOKE
from methods.registry import register
from methods.sra import SRA, Config


@dataclass(frozen=True)
class NoAugConfig(Config):
    augment: bool = False


@dataclass(frozen=True)
class AWACVariantConfig(Config):
    learner: AWACConfig = field(default_factory=AWACConfig)


@dataclass(frozen=True)
class TD3BCVariantConfig(Config):
    learner: TD3BCConfig = field(default_factory=TD3BCConfig)


@dataclass(frozen=True)
class SACNVariantConfig(Config):
    learner: SACNConfig = field(default_factory=SACNConfig)


@register
class SRANoAug(SRA):
    name, description, Config = "sra-noaug", "SRA's learner and data handling without augmentation (control)", NoAugConfig


@register
class SRAIQL(SRA):
    name, description = "sra-iql", "SRA with IQL + BC (= sra)"


@register
class SRAAWAC(SRA):
    name, description, Config = "sra-awac", "SRA augmentation feeding AWAC", AWACVariantConfig


@register
class SRATD3BC(SRA):
    name, description, Config = "sra-td3bc", "SRA augmentation feeding TD3+BC (Conf from a BC policy)", TD3BCVariantConfig


@register
class SRASACN(SRA):
    name, description, Config = "sra-sacn", "SRA augmentation feeding SAC-N", SACNVariantConfig
    budgets = {**SRA.budgets, "smoke": {**SRA.budgets["smoke"], "learner": SACN_SMOKE}}
