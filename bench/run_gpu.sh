#!/usr/bin/env bash
# One command for a GPU machine: the gpu test tier (plus the CUDA kernel tests on the real
# device) and every GPU benchmark at full size; the log lands in bench/results/.
#   bash bench/run_gpu.sh            # from the repository root
# Needs cupy, numba-cuda and the CPU stack; installs this checkout without touching the
# network (--no-deps --no-build-isolation).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log="bench/results/gpu-run-$stamp.log"
{
  echo "# gpu_engine GPU run $stamp"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
  python3 -m gpu_engine info
  python3 -m pytest -q -m "gpu or sim" -p no:cacheprovider
  echo "pytest exit: $?"
  python3 -m gpu_engine --backend gpu bench --size "${SIZE:-full}" --repeats "${REPEATS:-5}"
} 2>&1 | tee "$log"
echo "log written to $log"
