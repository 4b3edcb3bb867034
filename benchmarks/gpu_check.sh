#!/usr/bin/env bash
# The GPU check (issue 17, DESIGN.md §8): environment, step overhead (resnet18/512, convnet_small/256), every method's
# s/step, the main job end to end with every diagnostic, and the causal methods' step-cost ratios, in one run.
#
#   bash benchmarks/gpu_check.sh                 # on a GPU machine (default device: cuda when available), ≤ 8 min
#   bash benchmarks/gpu_check.sh --quick         # the same on the CPU at tiny sizes, for CI (2-3 min on 2 cores)
#   bash benchmarks/gpu_check.sh --help          # every option (--device, --parts, --methods, --steps, --amp, --out)
#
# Output: one parseable line per figure (ENV, RATIO, STEP, SKIP, FAIL, JOB, DONE, SUMMARY); logs and JSON in --out.
# Exit status: 0 all ran, 1 a part failed, 2 bad arguments. Uses .venv/bin/python when present (make venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi
cd "$root"
exec "$python" "$here/gpu_check.py" "$@"
