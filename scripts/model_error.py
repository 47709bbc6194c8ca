"""One-step error of SRA's / ROMI's reverse model vs predicting "no change" (issue 17, item 5).

    PYTHONPATH=. python scripts/model_error.py --task maze2d-umaze-sparse --setting sra-quick-raw sra-quick

Prints, per setting, the mean squared one-step error in z-scored state units on the held-out pairs and on the
expert pairs, beside the "no change" error, and the fit's wall time."""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from benchmark.config import resolve_config
from benchmark.profiles import get_profile
from benchmark.runner import load_imitation_data
from envs.tasks import get_task
from methods.data import Transitions
from methods.dynamics import DynamicsEnsemble
from methods.registry import get_method


def setting_config(name: str):
    """``<method>-<profile>[-raw|-adam<lr>|-steps<n>...]``: the method's model config at a profile, changed."""
    method, profile, *changes = name.split("-")
    cls = get_method(method)
    config = resolve_config(cls, cls.budgets.get(get_profile(profile).name, {})).model
    for change in changes:
        if change == "raw":
            config = dataclasses.replace(config, normalize_targets=False)
        elif change == "norm":
            config = dataclasses.replace(config, normalize_targets=True)
        elif change.startswith("adam"):
            config = dataclasses.replace(config, optimizer="adam", lr=float(change[4:]))
        elif change.startswith("sgd"):
            config = dataclasses.replace(config, optimizer="sgd", lr=float(change[3:]))
        elif change.startswith("steps"):
            config = dataclasses.replace(config, max_steps=int(change[5:]))
        elif change.startswith("width"):
            w = int(change[5:])
            config = dataclasses.replace(config, hidden_dims=(w, w))
        else:
            raise ValueError(change)
    return config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", required=True)
    parser.add_argument("--setting", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = get_task(args.task)
    data = load_imitation_data(task, "quick", 5)
    both = Transitions.concat(data.expert, data.supplementary)
    for name in args.setting:
        config = setting_config(name)
        model = DynamicsEnsemble(task.obs_dim, task.act_dim, config, data.normalizer, "reverse")
        model.reset_parameters(args.seed)
        start = time.perf_counter()
        info = model.fit(both, args.seed)
        wall = time.perf_counter() - start
        s_in, act, target = (torch.as_tensor(x) for x in model._pairs(data.expert))
        expert = model.one_step_errors(s_in, act, target)
        print(f"{args.task} {name}: holdout {info['model/one_step_mse']:.3g} vs no-change "
              f"{info['model/no_change_mse']:.3g} (ratio {info['model/one_step_mse'] / info['model/no_change_mse']:.2f}); "
              f"expert {expert['model/one_step_mse']:.3g} vs {expert['model/no_change_mse']:.3g} "
              f"(ratio {expert['model/one_step_mse'] / expert['model/no_change_mse']:.2f}); "
              f"{int(info['model/steps'])} steps, {wall:.0f} s", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
