#!/usr/bin/env bash
# The GPU checks of issues 4 and 5 in one device call (budget: ~8 min on an H100; the lease is 15 min in all).
#
#   bash benchmark/gpu_check.sh prepare   # here, no device time: wheels the device image lacks -> .whl/ (~51 MB,
#                                         # git-ignored; the device image has torch, numpy, click, tqdm, h5py, ...)
#   bash benchmark/gpu_check.sh run       # on the device, with carry [".whl"]: log in $OUT/gpu-check.log
#
# run: learner updates/s on CUDA (SAC-N(25) vs IQL: issue 4), SRA's paper-budget phase costs on CUDA (issue 5;
# generates maze2d-umaze's paper data on the CPU first, ~40 s), then tests/test_cuda.py (every method's smoke run
# on the GPU, kill/resume equality there).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(minari==0.5.4 gymnasium==1.4.0 gymnasium-robotics==1.4.2 mujoco==4.0.0 mujoco-core==4.0.0
        mujoco-studio==4.0.0 farama-notifications==0.0.6 glfw==2.11.0 pyopengl==3.1.10 pettingzoo==1.27.0)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

case "${1:-}" in
  prepare)
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${PLATFORMS[@]/#/--platform=}" -d .whl "${WHEELS[@]}"
    du -sh .whl ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 MINARI_DATASETS_PATH=/tmp/minari MUJOCO_GL=egl
    bench() { python3 -m benchmark.cli "$@"; }
    check() { echo "== $*"; "$@" || echo "== FAILED (exit $?): $*"; }  # one failing check does not stop the rest
    {
      check nvidia-smi -L
      check python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
      check bench perf --device cuda --threads 1 --seconds 3
      check bench data generate --envs maze2d-umaze-sparse --profile paper
      check bench perf sra --device cuda --rounds 8 --model-steps 500 --learner-updates 2000
      check python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
    } 2>&1 | tee "${OUT:-.}/gpu-check.log" ;;
  *)
    echo "usage: bash benchmark/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
