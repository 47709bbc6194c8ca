"""Fresh installs reproduce the committed numbers (docs/reproducibility.md): the smoke datasets regenerate
bit for bit, and a smoke BC-exp run gives the committed curve.

The values were measured with the locked versions (constraints.txt), Python 3.11, 1 torch thread, on an
x86-64 CPU (AMD EPYC). A failure here on a fresh install means another library version, CPU kind or thread
count changed the arithmetic: say which when reporting numbers (each result records device and threads).
"""
from __future__ import annotations

import pytest

from benchmark.grid import expand_grid
from benchmark.profiles import get_profile
from benchmark.runner import RunOptions, run_one
from envs.datasets import dataset_id, fingerprint, load_flat, reference_returns

# maze2d-umaze smoke datasets, `bench data generate --envs maze2d-umaze --profile smoke --seed 0`
FINGERPRINTS = {"expert": "3e1a2fa9233caebc52fa1af6f980bb76715bf4ac3805839e8e64956b2ed4b563",
                "supplementary": "ce045e225852338fe9dc9ae638558818e6ced3d79d0daf8a87a6bf75be88bca0"}
REFERENCE = {"min": 39.2, "max": 233.3}  # sparse returns: random policy, planner (smoke: 5 episodes each)
# `bench run --methods bc-exp --envs maze2d-umaze-sparse --seeds 1 --profile smoke --workers 1` (1 thread), measured
# before BC-exp had weight decay: the run below sets it to 0, which reproduces that arithmetic exactly
BC_EXP_SMOKE_OVERRIDES = {"bc-exp": {"weight_decay": 0.0}}
BC_EXP_SMOKE_CURVE = [-20.195775373518806, 77.69191138588357, 76.14631633178774, 80.52550231839258]


def test_smoke_datasets_regenerate_to_the_committed_fingerprints(umaze_smoke):
    for kind, expected in FINGERPRINTS.items():
        flat = load_flat(dataset_id(umaze_smoke, kind, "smoke"), umaze_smoke, "smoke")
        assert fingerprint(flat) == expected, kind
    assert reference_returns(umaze_smoke, "smoke") == pytest.approx(REFERENCE, abs=0.05)


def test_a_smoke_run_reproduces_the_committed_score(umaze_smoke, tmp_path):
    spec = expand_grid(["bc-exp"], [umaze_smoke.name], [0], get_profile("smoke"), BC_EXP_SMOKE_OVERRIDES)[0]
    result = run_one(spec, RunOptions(root=tmp_path, device="cpu", show_progress=False, threads=1))
    assert result["curve"]["score"] == pytest.approx(BC_EXP_SMOKE_CURVE, abs=1e-6)
