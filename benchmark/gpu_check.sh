#!/usr/bin/env bash
# The GPU checks in one device call (each check time-boxed; ~8 min in all; the lease is 15 min in all).
#
#   bash benchmark/gpu_check.sh prepare   # here, no device time: wheels the device image lacks -> .whl/ (~51 MB,
#                                         # git-ignored; the device image has torch, numpy, click, tqdm, h5py, ...)
#   bash benchmark/gpu_check.sh run [CHECK ...]  # on the device, with carry [".whl"]: log in $OUT/gpu-check.log;
#                                         # CHECKs: env perf sra tests dryrun profile cpu (default: all)
#
# run: learner updates/s on CUDA (SAC-N(25) vs IQL), SRA's paper-budget phase costs on CUDA (generates
# maze2d-umaze's paper data on the CPU first, ~40 s), tests/benchmark/test_cuda.py (every method's smoke run on the GPU,
# kill/resume equality there), the paper grid's dry run calibrated on the GPU with eight runs sharing it, a
# profile of every method's update there (launches, GPU busy share, host syncs), and the host CPU's learner speed.
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
    shift
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    # MUJOCO_GL=disable: nothing here renders, and the bare image has no libEGL (egl fails at `import mujoco`)
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 MINARI_DATASETS_PATH=/tmp/minari MUJOCO_GL=disable
    bench="python3 -m benchmark.cli"
    check() {  # check SECONDS CMD...: time-boxed; one failing check does not stop the rest
      local limit=$1 start=$SECONDS; shift
      echo "== $* [$(date +%T), limit ${limit}s]"
      timeout "$limit" "$@" || echo "== FAILED (exit $?): $*"
      echo "== took $((SECONDS - start)) s"
    }
    wanted() { [ $# -eq 0 ] || [[ " ${CHECKS} " == *" $1 "* ]]; }
    CHECKS="${*:-env perf sra tests dryrun profile cpu}"   # a rerun names only the checks it needs
    {
      echo "checks: $CHECKS"
      if wanted env; then
        check 20 nvidia-smi -L
        check 20 python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
        check 10 sh -c "lscpu | grep -E 'Model name|^CPU\\(s\\)'; grep -owE 'avx2|avx512f|avx512_bf16|amx_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\\n' ' '; echo"
        check 60 python3 -c "import benchmark.cli, benchmark.runner, methods.registry as r, envs.maze as m, gymnasium_robotics; print(sorted(r.available()))"
      fi
      # target: SAC-N(25) >= 1/3 of IQL's updates/s on the GPU
      wanted perf && check 120 $bench perf --device cuda --threads 1 --seconds 2
      if wanted sra; then  # target: SRA's model + augmentation <= 25% of its learner at the paper budget
        check 150 $bench data generate --envs maze2d-umaze-sparse --profile paper
        check 180 $bench perf sra --device cuda --rounds 8 --model-steps 500 --learner-updates 2000
      fi
      # every method's smoke run on the GPU, kill/resume equality there
      wanted tests && check 300 python3 -m pytest -q -p no:cacheprovider -n 8 -m cuda tests/benchmark/test_cuda.py
      # the paper grid's cost on one GPU, eight runs sharing it (each calibrated while the others run)
      if wanted dryrun; then  # DRY_WORKERS="8 1": also time one run alone on the GPU, to see what sharing costs
        for workers in ${DRY_WORKERS:-8}; do
          check 150 $bench run --grid paper-table1 --dry-run --device cuda --workers "$workers" --out /tmp/dry
        done
      fi
      # where each method's update loses the GPU: launches, busy share, host syncs
      wanted profile && check 120 $bench perf profile --device cuda --profile paper --updates 20
      # this machine's CPU, as a second CPU kind for the learners' CPU speed (1 thread)
      wanted cpu && check 60 $bench perf --device cpu --learners iql --threads 1 --seconds 2
      true
    } 2>&1 | tee "${OUT:-.}/gpu-check.log" ;;
  *)
    echo "usage: bash benchmark/gpu_check.sh prepare | run [env perf sra tests dryrun profile cpu]" >&2; exit 2 ;;
esac
