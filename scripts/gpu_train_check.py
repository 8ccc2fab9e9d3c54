"""Train an inference-compilation network on CPU and on CUDA; print training traces/s of each.

Runs in well under five minutes. Without CUDA it trains on the CPU only and says that CUDA
is absent (exit status 0). The same online budget (fresh prior simulations of the HMM
reference model, batch 256, LSTM 256) is used on both devices, with the simulations in
``--workers`` processes (default: half the cores) so that the GPU is not left waiting on a
single simulating core; the CPU run trains with the remaining cores as torch threads. The
CUDA run ends with a short importance-sampling check of the trained network.

    .venv/bin/python scripts/gpu_train_check.py [--traces 20000] [--batch-size 256] [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from rotalumis.models import HiddenMarkovModel
from rotalumis.nn import TrainingConfig, train_network


def train(
    device: str, traces: int, batch_size: int, lstm_dim: int, workers: int
) -> tuple[float, float, object]:
    """Train on ``device``; return (traces/s, seconds, network)."""
    config = TrainingConfig(
        num_traces=traces, batch_size=batch_size, learning_rate=3e-3, valid_size=0, seed=0
    )
    start = time.perf_counter()
    result = train_network(
        model=HiddenMarkovModel(),
        config=config,
        device=device,
        network_sizes={"lstm_dim": lstm_dim},
        workers=workers,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result.traces_per_second, time.perf_counter() - start, result.network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lstm-dim", type=int, default=256)
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, default=cores // 2, help="simulation processes")
    parser.add_argument("--threads", type=int, default=None, help="CPU run's torch threads")
    args = parser.parse_args()
    if args.threads is None:
        args.threads = max(cores - args.workers, 1)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} CPU threads, {args.workers} simulation workers; HMM, {args.traces} "
        f"traces, batch {args.batch_size}, LSTM {args.lstm_dim}"
    )
    sizes = (args.batch_size, args.lstm_dim, args.workers)
    cpu_rate, cpu_s, _ = train("cpu", args.traces, *sizes)
    print(f"cpu : {cpu_rate:,.0f} training traces/s ({cpu_s:.1f} s)")
    if not torch.cuda.is_available():
        print("cuda: absent (torch.cuda.is_available() is False) - CPU only")
        return
    name = torch.cuda.get_device_name(0)
    train("cuda", 2 * args.batch_size, *sizes)  # warm-up
    gpu_rate, gpu_s, net = train("cuda", args.traces, *sizes)
    print(f"cuda: {gpu_rate:,.0f} training traces/s ({gpu_s:.1f} s) on {name}")
    print(f"ratio cuda/cpu: {gpu_rate / cpu_rate:.2f}")
    model = HiddenMarkovModel()
    post = model.posterior(200, engine="ic", observe=model.observations(), seed=0, network=net)
    print(f"cuda network: 200 IC traces, ESS {post.ess:.1f}")
    print("| device | training traces/s |\n|---|---:|")
    print(
        f"| CPU ({args.threads} threads) | {cpu_rate:,.0f} |\n| {name} | {gpu_rate:,.0f} |\n"
        f"({args.workers} simulation workers on {cores} cores, both runs)"
    )


if __name__ == "__main__":
    main()
