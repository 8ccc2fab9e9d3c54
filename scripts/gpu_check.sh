#!/usr/bin/env bash
# The GPU checks, as one command for a device machine (issue 4): the CUDA tests, then the
# CPU-vs-CUDA training benchmark. Needs only the working tree and a Python with torch, numpy,
# pyarrow and pytest (the device image's python3 has them); rotalumis is used from src/.
#
#   bash scripts/gpu_check.sh            # about 3 minutes on an H100/H200
#   PYTHON=.venv/bin/python bash scripts/gpu_check.sh   # here: the CUDA tests skip, CPU only
#
# Writes gpu_tests.log and gpu_train.log under $OUT (or ./gpu-check without it).
set -uo pipefail
PYTHON=${PYTHON:-python3}
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi -L
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
# -W: the device image's numpy/torch may be newer than the pins here; their deprecation
# warnings must not fail a GPU check (the CPU suite keeps warnings as errors).
"$PYTHON" -m pytest -q -m gpu -p no:cacheprovider -W default::DeprecationWarning \
    -W default::FutureWarning tests/nn tests/core/test_distributions.py 2>&1 \
    | tee "$out/gpu_tests.log"
tests=${PIPESTATUS[0]}
"$PYTHON" scripts/gpu_train_check.py "$@" 2>&1 | tee "$out/gpu_train.log"
train=${PIPESTATUS[0]}
echo "gpu tests: exit $tests; training check: exit $train"
exit $(( tests || train ))
