#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py) in one go: bench/gpu_check.sh [--out DIR] [options].
# Runs with the project's .venv where there is one, else python3, under an outer time limit
# (GPU_CHECK_LIMIT_S, 480 s) in case the script's own watchdog cannot fire; the report the
# script rewrote after its last finished phase stays in --out either way.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[[ -x $python ]] || python=python3
exec timeout --kill-after=10 "${GPU_CHECK_LIMIT_S:-480}" "$python" bench/gpu_check.py "$@"
