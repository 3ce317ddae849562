#!/usr/bin/env bash
# One prepared command for a GPU machine lent for a quarter of an hour: the gpu test tier,
# then each stage's full-size GPU benchmark once (our side only; the CPU baseline figures
# come from the records committed in bench/results/), with a time cap per stage, so the whole
# run ends in under 9 minutes on one H200. One log and the JSON records land in OUT.
#
#   bash bench/run_gpu.sh [OUT]          # from the repository root; OUT default
#                                        # bench/results/gpu-<UTC stamp>/
#
# The GPU machine has Python 3.12, cupy, numba-cuda, torch, scikit-learn, pandas and pyarrow,
# but not dask, click, rich or the test peers, and no network. Prepare the wheels it lacks
# here, into the ignored folder .whl/, and carry that folder with the run:
#
#   pip download --dest .whl --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
#       "setuptools>=77" wheel "dask[distributed]==2026.7.1" click rich threadpoolctl \
#       statsmodels ccc-coef==0.2.2 pytest pydantic pyyaml
#
# The script installs them without the network (--no-index); whatever is missing it reports
# and goes on: the CLI and the tests that need dask are skipped, the rest run without it.
# Then `gpu-engine run --example small` on the GPU backend (bench/pipeline_example.py: time
# and peak memory per stage), capped at PIPELINE_BUDGET (s, default 75).
# Environment: TEST_BUDGET (s, default 170), STAGE_BUDGET (s per stage, default 30),
# STAGES (default below), SIZE (full), BACKEND (gpu; cpu lets you rehearse the script on a
# laptop with SIZE=quick).
set -uo pipefail
cd "$(dirname "$0")/.."
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT="${1:-bench/results/gpu-$stamp}"
mkdir -p "$OUT"
log="$OUT/run.log"
STAGES="${STAGES:-standardize gls plier twas ccc coassoc drugs cluster expression decode}"
SIZE="${SIZE:-full}"
BACKEND="${BACKEND:-gpu}"
TEST_BUDGET="${TEST_BUDGET:-170}"
STAGE_BUDGET="${STAGE_BUDGET:-30}"
PIPELINE_BUDGET="${PIPELINE_BUDGET:-75}"
t_start=$(date +%s)
{
  echo "# gpu_engine GPU run $stamp: size $SIZE, backend $BACKEND, stages: $STAGES"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null \
    || echo "(no nvidia-smi)"
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --find-links .whl setuptools wheel 2>&1 | tail -2
    python3 -m pip install -q --no-index --find-links .whl "dask[distributed]" click rich \
      threadpoolctl statsmodels ccc-coef pytest pydantic pyyaml 2>&1 | tail -3 \
      || echo "some wheels missing from .whl/: going on without them"
  else
    echo "no .whl/ folder: using what the machine has (see the header of this script)"
  fi
  # this checkout: with the machine's setuptools, else with the carried ones, else in place
  # (a gpu_engine/kernels link gives the kernels/ mapping that an install would)
  if ! python3 -m pip install -q --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1 \
     && ! python3 -m pip install -q --no-deps --no-index --find-links .whl -e . \
          >> "$OUT/install.log" 2>&1; then
    echo "pip could not install this checkout (see install.log): running it in place"
    [ -e gpu_engine/kernels ] || ln -s ../kernels gpu_engine/kernels
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
  python3 -m gpu_engine info || echo "gpu-engine info failed"

  echo "## gpu test tier (cap ${TEST_BUDGET} s)"
  timeout "$TEST_BUDGET" python3 -m pytest -q -m "gpu or sim" -p no:cacheprovider \
    --junitxml="$OUT/pytest-gpu.xml"
  echo "pytest exit: $?"

  for stage in $STAGES; do
    echo "## bench $stage ($SIZE, cap ${STAGE_BUDGET} s)"
    timeout "$STAGE_BUDGET" python3 -m gpu_engine --backend "$BACKEND" bench "$stage" \
      --size "$SIZE" --repeats 1 --ours-only --results "$OUT"
    rc=$?
    [ "$rc" -eq 124 ] && echo "bench $stage: stopped at its ${STAGE_BUDGET} s cap"
    echo "bench $stage exit: $rc"
  done
  echo "## gpu-engine run --example small on $BACKEND (cap ${PIPELINE_BUDGET} s)"
  timeout "$PIPELINE_BUDGET" python3 bench/pipeline_example.py --scale small \
    --backend "$BACKEND" --results "$OUT"
  echo "pipeline exit: $?"
  echo "# done in $(( $(date +%s) - t_start )) s"
} 2>&1 | tee "$log"
echo "log and records in $OUT/"
