#!/usr/bin/env bash
# Multi-GPU DDP check, for a machine with several GPUs (issue 15): one GPU vs all of them
# (torchrun --nproc-per-node=$(nvidia-smi -L | wc -l), NCCL), training traces/s and the time
# to a fixed validation loss, on the Branching model's traces; see benchmarks/bench_ddp.py.
# Needs only the working tree and a Python with torch, numpy and pyarrow; rotalumis is used
# from src/. NOT RUN YET: no machine with several GPUs was available (see README).
#
#   bash scripts/gpu_ddp_check.sh            # a few minutes
#
# Writes gpu_ddp.log under $OUT (or ./gpu-check without it).
set -uo pipefail
PYTHON=${PYTHON:-python3}
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
gpus=$(nvidia-smi -L | wc -l)
nvidia-smi -L
if [ "$gpus" -lt 2 ]; then
    echo "only $gpus GPU(s): the DDP check needs at least 2" | tee "$out/gpu_ddp.log"
    exit 0
fi
"$PYTHON" benchmarks/bench_ddp.py --device cuda --gpus "$gpus" --lstm 256 \
    --num-traces 51200 --traces 204800 --rounds 1 --target 4.0 "$@" 2>&1 \
    | tee "$out/gpu_ddp.log"
exit "${PIPESTATUS[0]}"
