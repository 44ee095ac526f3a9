#!/usr/bin/env bash
# The GPU check, on a machine with a CUDA GPU. After the install step (compiling mmcv's
# CUDA ops, once) it ends within 8 minutes: steps 3 and 4 are each cut off after STEP_S
# seconds (default 210). Not yet timed on a GPU.
#   1. makes sure .venv has mmcv with its CUDA ops (make install MMCV_WITH_CUDA=1);
#   2. checks that torch sees a GPU;
#   3. runs tests/test_cuda.py, failing if any test was skipped;
#   4. prints the fused VRM loss's time and peak GPU memory, forward + backward.
# Usage: bash tools/gpu_check.sh    (VENV=path to use another environment)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VENV:-.venv}
PY=$VENV/bin/python
STEP_S=${STEP_S:-210}  # time limit of each of steps 3 and 4

say() { echo "[gpu_check] $*"; }

say "1/4 environment: $VENV with mmcv's CUDA ops"
if [[ ! -x $PY ]]; then
    say "no $PY: running make install MMCV_WITH_CUDA=1 (compiles mmcv with its CUDA ops)"
    make install MMCV_WITH_CUDA=1
elif ! "$PY" -c "from mmcv.ops import get_compiling_cuda_version as v; \
import sys; sys.exit(v() == 'not available')" 2>/dev/null; then
    say "mmcv in $VENV lacks its CUDA ops (or does not import); rebuilding it with:"
    say "  $VENV/bin/pip uninstall -y mmcv && $VENV/bin/pip cache remove mmcv &&" \
        "rm -f $VENV/.stamps/mmcv && make install MMCV_WITH_CUDA=1"
    say "(the stamp file is removed so that make re-runs its mmcv step)"
    "$PY" -c "import torch, sys; print('[gpu_check] torch', torch.__version__, 'CUDA', \
torch.version.cuda); sys.exit(torch.version.cuda is None)" || {
        say "this torch is a CPU-only build: reinstall the CUDA one (requirements/torch.txt)" >&2
        exit 1
    }
    command -v nvcc >/dev/null || {
        say "nvcc not found: install the CUDA toolkit matching torch's CUDA version" >&2
        exit 1
    }
    "$VENV/bin/pip" uninstall -y mmcv
    "$VENV/bin/pip" cache remove mmcv || true  # fails only when pip's cache is off
    rm -f "$VENV/.stamps/mmcv"
    make install MMCV_WITH_CUDA=1
else
    say "mmcv's CUDA ops are there"
fi

say "2/4 CUDA device"
if ! "$PY" - <<'EOF'
import sys

import torch
from mmcv.ops import get_compiling_cuda_version

if not torch.cuda.is_available():
    sys.exit(1)
print(f'[gpu_check] {torch.cuda.get_device_name(0)}; torch {torch.__version__} '
      f'(CUDA {torch.version.cuda}); mmcv ops compiled with CUDA {get_compiling_cuda_version()}')
EOF
then
    say "no CUDA device visible to torch (or the error above): run this on a machine with" \
        "a GPU; check nvidia-smi and CUDA_VISIBLE_DEVICES" >&2
    exit 1
fi

say "3/4 tests/test_cuda.py (fused VRM loss vs float64 CPU reference, mmcv RoIAlign" \
    "CUDA vs CPU, fp16 AMP grad scaler, one-process nccl); none may be skipped"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout "$STEP_S" "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py 2>&1 \
    | tee "$log" || { say "CUDA tests failed (exit $?; 124: past ${STEP_S}s)" >&2; exit 1; }
if grep -qE '[0-9]+ skipped' "$log"; then
    say "some CUDA tests were skipped: this run did not check them" >&2
    exit 1
fi

say "4/4 fused VRM loss (VRMLoss impl='fused'), forward + backward on the GPU:" \
    "median of 5 runs after 2 warm-ups"
rc=0
timeout "$STEP_S" "$PY" - <<'EOF' || rc=$?
import statistics
import time

import torch

from vrm_det.registry import MMDET_MODELS
from vrm_det.utils.benchmark_logits import distribution_logits, loss_step

loss_fn = MMDET_MODELS.build(dict(type='VRMLoss', impl='fused'))
# As tools/benchmark_loss.py (i.i.d. logits, the loss's defaults), at a detection and a
# classification scale.
runs = [('iid', 8192, 81), ('iid', 1024, 1000)]
print(f"{'distribution':<14} {'B':>6} {'C':>6} {'ms (median)':>12} {'peak MB':>9}")
for distribution, batch, num_classes in runs:
    inputs = {k: v.cuda() for k, v in distribution_logits(distribution, batch,
                                                          num_classes).items()}
    step = loss_step(loss_fn, inputs)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()  # the inputs
    times = []
    for _ in range(5):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak_mb = (torch.cuda.max_memory_allocated() - baseline) / 2**20
    print(f'{distribution:<14} {batch:>6} {num_classes:>6} '
          f'{1e3 * statistics.median(times):>12.2f} {peak_mb:>9.1f}', flush=True)
    del inputs, student, student_virtual
    torch.cuda.empty_cache()
EOF
if ((rc)); then
    say "the loss timing failed (exit $rc; 124: past ${STEP_S}s)" >&2
    exit 1
fi
say "done: all CUDA checks passed"
