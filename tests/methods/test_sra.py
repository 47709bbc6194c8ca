"""SRA and its blocks: dynamics ensembles, reverse rollouts on maze2d, self-paced resampling, resume."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from benchmark.config import method_config, resolve_config
from benchmark.grid import expand_grid
from benchmark.profiles import get_profile
from benchmark.runner import RunOptions, SimulatedKill, load_imitation_data, run_one
from envs.maze import MazeGrid, make_maze_env
from methods.cvae import CVAE, CVAEConfig
from methods.data import Normalizer, Transitions
from methods.dynamics import DynamicsConfig, DynamicsEnsemble
from methods.registry import get_method
from methods.dynamics import clip_grad_norm_per_member
from methods.sra import draw_goals, keep_probabilities

SMALL_MODEL = DynamicsConfig(num_members=3, hidden_dims=(64, 64), optimizer="adam", lr=3e-3, batch_size=128,
                             epochs=60, grad_clip=0)


def linear_system(n: int = 4000, seed: int = 0) -> Transitions:
    """s' = A s + B a with a stable A: both directions are exactly learnable."""
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 0.2, 0.0], [-0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    B = np.array([[0.5, 0.0], [0.0, 0.4], [0.2, -0.3]])
    s = rng.normal(size=(n, 3)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    s2 = (s @ A.T + a @ B.T).astype(np.float32)
    return Transitions(s, a, s2, np.zeros(n, bool), np.zeros(n, bool), np.arange(0, n, 100))


@pytest.mark.parametrize("direction", ["reverse", "forward"])
def test_dynamics_ensemble_learns_a_linear_system(direction):
    data = linear_system()
    torch.manual_seed(0)
    model = DynamicsEnsemble(3, 2, SMALL_MODEL, Normalizer.fit(data.observations), direction)
    model.fit(data, seed=0)
    test = linear_system(500, seed=1)
    s_in, s_out = ((test.observations, test.next_observations) if direction == "forward"
                   else (test.next_observations, test.observations))
    pred = model.step(torch.as_tensor(s_in), torch.as_tensor(test.actions)).numpy()
    baseline = np.mean((s_out - s_in) ** 2)  # predicting "no change"
    assert np.mean((pred - s_out) ** 2) < 0.02 * baseline
    # paper-budget rounds step a million candidates in chunks: the chunking must not change the prediction
    chunked = model.step(torch.as_tensor(s_in), torch.as_tensor(test.actions), chunk=64).numpy()
    np.testing.assert_allclose(chunked, pred, rtol=1e-5, atol=1e-6)


def test_planned_steps_are_the_steps_fit_takes():
    """``bench perf sra`` projects model time from ``planned_steps``; it must count what ``fit`` runs."""
    data = linear_system(1000)
    for config in (SMALL_MODEL, dataclasses.replace(SMALL_MODEL, epochs=3, holdout_ratio=0.2, patience=100),
                   dataclasses.replace(SMALL_MODEL, max_steps=17)):
        model = DynamicsEnsemble(3, 2, config, Normalizer.fit(data.observations), "reverse")
        steps = []
        model.fit(data, seed=0, progress=lambda it, **_: (steps.append(i) or i for i in it))
        assert len(steps) == model.planned_steps(len(data))[1], config


def test_normalized_targets_round_trip_to_raw_changes():
    """SRA's model learns norm(s) - norm(s') and ``step`` scales the prediction back to raw units."""
    data = linear_system(200)
    data = Transitions(data.observations * np.array([1, 10, 0.1], np.float32), data.actions,
                       data.next_observations * np.array([1, 10, 0.1], np.float32), data.terminals, data.timeouts,
                       data.episode_starts)
    norm = Normalizer.fit(np.concatenate([data.observations, data.next_observations]))
    model = DynamicsEnsemble(3, 2, dataclasses.replace(SMALL_MODEL, normalize_targets=True), norm, "reverse")
    s_in, act, target = model._pairs(data)
    np.testing.assert_allclose(target, norm(data.observations) - norm(data.next_observations), atol=1e-4)
    with torch.no_grad():  # a model that predicts exactly the normalized change it was trained on
        for layer in model.net[:-1]:
            if hasattr(layer, "weight"):
                layer.weight.zero_(), layer.bias.fill_(1.0)
        model.net[-1].weight.zero_()
        model.net[-1].bias.copy_(torch.as_tensor(target[0]).expand_as(model.net[-1].bias))
    pred = model.step(torch.as_tensor(s_in[:1]), torch.as_tensor(act[:1])).numpy()
    np.testing.assert_allclose(pred, data.observations[:1], rtol=1e-4, atol=1e-4)
    raw = DynamicsEnsemble(3, 2, dataclasses.replace(SMALL_MODEL, normalize_targets=False), norm, "reverse")
    np.testing.assert_allclose(raw._pairs(data)[2], data.observations - data.next_observations, atol=1e-5)


def test_trained_reverse_model_beats_no_change_and_reports_it():
    data = linear_system()
    model = DynamicsEnsemble(3, 2, SMALL_MODEL, Normalizer.fit(data.observations), "reverse")
    info = model.fit(data, seed=0)
    assert info["model/one_step_mse"] < 0.05 * info["model/no_change_mse"]


def test_gradients_are_clipped_per_member():
    """One member's huge gradient must not shrink another's (the official members clip separately)."""
    w = torch.nn.Parameter(torch.zeros(2, 3, 4))
    w.grad = torch.stack([torch.full((3, 4), 100.0), torch.full((3, 4), 0.01)])
    clip_grad_norm_per_member([w], 2, 1.0)
    assert w.grad[0].norm() == pytest.approx(1.0, rel=1e-4)
    torch.testing.assert_close(w.grad[1], torch.full((3, 4), 0.01))


def test_goals_are_drawn_per_chunk_and_cover_the_accumulated_set():
    """Every chunk of 2000 goals is a fresh 90/7/3 draw, so 2K candidates reach far more of the D^S goal set than
    the 140 accumulated goals one chunk holds."""
    expert, accumulated, newest = torch.zeros(50, 2), torch.arange(2.0, 1002.0)[:, None].repeat(1, 2), torch.ones(30, 2)
    goals = draw_goals(expert, accumulated, newest, 20_000, 2000, torch.Generator().manual_seed(0))
    assert len(goals) == 20_000
    assert (goals[:, 0] == 0).sum() == 18_000 and (goals[:, 0] == 1).sum() >= 600
    used = torch.unique(goals[:, 0][(goals[:, 0] != 0) & (goals[:, 0] != 1)])
    assert len(used) > 700  # ~1400 draws over 1000 goals (one chunk: at most 140)
    goals = draw_goals(expert, accumulated[:0], newest[:0], 3000, 2000, torch.Generator().manual_seed(0))
    assert len(goals) == 4000 and (goals == 0).all()  # an empty goal set gives its share to the expert states


def test_cvae_sampling_in_chunks_draws_the_same_actions():
    cvae = CVAE(3, 2, CVAEConfig(hidden_dims=(32, 32)))
    cond = torch.randn(300, 3)
    whole = cvae.sample(cond, torch.Generator().manual_seed(0))
    chunked = cvae.sample(cond, torch.Generator().manual_seed(0), chunk=64)
    torch.testing.assert_close(chunked, whole)


def test_gaussian_ensemble_with_holdout_picks_elites():
    data = linear_system()
    config = DynamicsConfig(num_members=4, num_elites=2, gaussian=True, hidden_dims=(64, 64), optimizer="adam",
                            lr=3e-3, batch_size=128, epochs=30, holdout_ratio=0.2, grad_clip=0)
    model = DynamicsEnsemble(3, 2, config, Normalizer.fit(data.observations), "forward")
    info = model.fit(data, seed=0)
    assert len(model.elites) == 2 and info["model/holdout_mse"] < 0.05
    gen = torch.Generator().manual_seed(0)
    sample = model.step(torch.as_tensor(data.observations[:50]), torch.as_tensor(data.actions[:50]), gen, sample=True)
    assert torch.isfinite(sample).all()


def test_resampling_favours_low_confidence():
    conf = torch.tensor([-5.0, 0.0, 5.0, 20.0])
    p = keep_probabilities(conf, "confidence")
    assert torch.all(p[:-1] > p[1:])
    kept = torch.multinomial(keep_probabilities(torch.linspace(-3, 3, 1000), "confidence"), 200,
                             generator=torch.Generator().manual_seed(0))
    assert kept.float().mean() < 350  # far below the uniform mean index (~500)
    assert torch.all(keep_probabilities(conf, "uniform") == 1)


def sra_method(task, seed=0):
    cls = get_method("sra")
    config = method_config(cls, task, "smoke", {"model": {"hidden_dims": [128, 128], "max_steps": 400,
                                                          "optimizer": "adam", "lr": 1e-3}})
    data = load_imitation_data(task, "smoke", 5)
    torch.manual_seed(seed)
    method = cls(task, data, config, seed, torch.device("cpu"), 300)
    method.pretrain(lambda iterable, **_: iterable)
    return method


def test_reverse_rollouts_end_in_goals_and_stay_in_the_maze(umaze_smoke):
    method = sra_method(umaze_smoke)
    info = method.augmentation_round()
    aug = method.augmented
    h, keep = method.config.horizon, len(aug) // method.config.horizon
    assert info["aug/new"] == len(aug) and h == 5
    # step 0 ends in goal states; every later step ends where the previous one started (walks backwards)
    first = aug.select(np.arange(keep), np.zeros(0, np.int64))
    goals = np.concatenate([method.expert.observations, method.supplementary.observations])
    dist = np.min(np.linalg.norm(first.next_observations[:200, None, :2] - goals[None, :, :2], axis=-1), axis=1)
    assert np.median(dist) < 1e-4
    for i in range(1, h):
        ends = aug.next_observations[i * keep:(i + 1) * keep]
        assert np.isin(ends[:, 0], aug.observations[(i - 1) * keep:i * keep, 0]).all()
    # predicted predecessors lie inside the maze's outer walls, mostly in free cells
    grid = MazeGrid.from_env(make_maze_env(umaze_smoke))
    cells = np.array([grid.xy_to_cell(p) for p in aug.observations[:, :2]])
    rows, cols = grid.walls.shape
    half = np.array([cols / 2, rows / 2])
    assert np.mean(np.all(np.abs(aug.observations[:, :2]) < half, axis=1)) > 0.99
    assert np.mean(~grid.walls[cells[:, 0], cells[:, 1]]) > 0.8


def test_goal_selections_accumulate_with_duplicates(umaze_smoke):
    """The accumulated D^S goals are a list, as the official's: a state selected twice counts twice."""
    method = sra_method(umaze_smoke)
    conf_expert = torch.full((len(method.expert),), -1e9)  # every D^S state is above it (up to the cap)
    _, first = method._goal_sets(conf_expert)
    accumulated, second = method._goal_sets(conf_expert)
    assert len(first) > 0 and len(accumulated) == len(first) + len(second)
    assert len(torch.unique(method.goal_indices)) < len(method.goal_indices)


def test_augmentation_round_is_deterministic_for_a_seed(umaze_smoke):
    a, b = sra_method(umaze_smoke), sra_method(umaze_smoke)
    a.augmentation_round(), b.augmentation_round()
    np.testing.assert_array_equal(a.augmented.observations, b.augmented.observations)
    np.testing.assert_array_equal(a.augmented.actions, b.augmented.actions)


def test_resume_after_an_augmentation_round_equals_uninterrupted(umaze_smoke, tmp_path):
    spec = expand_grid(["sra"], ["maze2d-umaze-sparse"], [0], get_profile("smoke"))[0]
    options = dict(device="cpu", show_progress=False)
    straight = run_one(spec, RunOptions(root=tmp_path / "a", **options))
    with pytest.raises(SimulatedKill):  # rounds at updates 100 and 200; last checkpoint at 200
        run_one(spec, RunOptions(root=tmp_path / "b", stop_after_step=250, **options))
    resumed = run_one(spec, RunOptions(root=tmp_path / "b", **options))
    assert resumed["curve"] == straight["curve"]
    assert straight["phase_times_s"]["method/augmentation"] > 0
    artifacts = np.load(tmp_path / "a" / "runs" / spec.run_key / "artifacts.npz")
    assert sorted(artifacts.files) == ["goals_0", "goals_1", "round_0", "round_1"]
    rounds = straight["method_info"]["rounds"]
    assert len(rounds) == 2 and all(0 < r["aug/coverage_states"] <= 1 for r in rounds)
    assert straight["method_info"]["model"]["model/no_change_mse"] > 0
    # the augmentation picture is drawn from the saved rounds
    from click.testing import CliRunner
    from benchmark.cli import main
    out = CliRunner().invoke(main, ["plot", "augmentation", "--task", "maze2d-umaze-sparse", "--run", str(tmp_path / "a")])
    assert out.exit_code == 0 and "2 rounds" in out.output, out.output
    assert (tmp_path / "a" / "runs" / spec.run_key / "augmentation.png").stat().st_size > 1000


def test_sra_td3bc_scores_confidence_with_a_bc_policy_that_learns():
    """TD3+BC's actor is deterministic: SRA scores Conf with a tanh-Gaussian BC policy on the expert half."""
    from envs.tasks import get_task
    from methods.data import synthetic_data
    cls = get_method("sra-td3bc")
    task = get_task("maze2d-umaze-sparse")
    config = method_config(cls, task, "smoke")
    torch.manual_seed(0)
    method = cls(task, synthetic_data(), config, 0, torch.device("cpu"), 400)
    assert method.confidence_actor is not method.learner.actor
    losses = [float(method.update(step)["loss/confidence_policy"]) for step in range(400)]
    assert np.mean(losses[-50:]) < np.mean(losses[:50]) - 0.5


def test_resolving_a_config_leaves_the_methods_budget_untouched():
    """A nested override layered on a budget's nested group must not write into the method's dict."""
    smoke = get_method("sra").budgets["smoke"]
    before = repr(smoke)
    config = resolve_config(get_method("sra"), smoke, {"model": {"max_steps": 400}})
    assert config.model.max_steps == 400 and repr(smoke) == before
