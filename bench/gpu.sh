#!/usr/bin/env bash
# Every GPU figure of bench/README.md in one call of at most 8 minutes: evaluation and training windows/s,
# tokens/s, MFU and peak GPU memory of plasmidlm's code paths against plain transformers, for the small and base
# presets at 100 and 500 nt, with the GPU's name (bench/gpu.py). Arguments go to bench/gpu.py;
# `bench/gpu.sh --reduced` is the seconds-long CPU run that the tests make.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
# Figures print as they are measured: a run stopped at the limit keeps what it printed.
exec timeout --signal=INT "${GPU_BENCH_SECONDS:-470}" "$PYTHON" bench/gpu.py "$@"
