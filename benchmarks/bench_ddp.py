"""Data-parallel (DDP) training: 2 processes vs 1 on the same trace dataset, on CPU (gloo).

The Branching model's traces (11 trace types, one proposal head per address) are written
once to a dataset; then, interleaved round by round so that machine load hits every
contender alike, one ``train_network`` run per contender:

* **1 process**: 64 traces per step, learning rate 3e-3;
* **2 processes, same steps**: 32 traces per process per step (``lr_scaling="none"``): the
  very steps of one process (the same training to float rounding), so the speed-up is
  what the second core buys for the same result;
* **2 processes, twice the step**: 64 traces per process (128 per step), the learning rate
  scaled linearly (6e-3 after a warm-up of 5% of the budget): the usual DDP recipe.

Each process uses one torch thread (``torch.set_num_threads(1)``; torchrun sets
``OMP_NUM_THREADS=1``). Measured on rank 0: training traces/s (over the whole run,
validations included) and the wall time from the ``train_network`` call (so with the
address registration of DDP) until the validation loss (held-out shard, every 512 traces)
first reaches ``--target``. Medians over ``--rounds`` rounds; prints a markdown table. Usage::

    .venv/bin/python benchmarks/bench_ddp.py [--rounds 3] [--traces 6144] [--target 3.8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(args: argparse.Namespace) -> None:
    """One training run (in each process of the run); rank 0 prints its measurements."""
    import torch

    from rotalumis.data import TraceDataset
    from rotalumis.nn import DistributedConfig, TrainingConfig, launched_rank, train_network

    torch.set_num_threads(1)
    train, valid = TraceDataset(args.dataset).split(1)
    config = TrainingConfig(
        num_traces=args.traces,
        batch_size=args.batch,
        learning_rate=3e-3,
        schedule="constant",
        valid_size=len(valid),
        valid_every=512,
        seed=0,
    )
    clock: list[tuple[int, float]] = []  # (traces, seconds since the first step began)
    start = time.perf_counter()
    result = train_network(
        dataset=train,
        valid_dataset=valid,
        config=config,
        network_sizes={"lstm_dim": args.lstm, "observation_dim": 32},
        device=args.device,
        on_step=lambda done, total, loss: clock.append((done, time.perf_counter() - start)),
        distributed=DistributedConfig(lr_scaling=args.scaling),
    )
    if launched_rank() == 0:
        at = dict(clock)
        reached = [at[n] for n, loss in result.valid_loss if loss <= args.target]
        out = {
            "traces_per_s": result.traces_per_second,
            "to_target_s": reached[0] if reached else None,
            "final_valid": result.valid_loss[-1][1],
        }
        print("RESULT " + json.dumps(out), flush=True)


def run(dataset: Path, processes: int, batch: int, scaling: str, args: argparse.Namespace) -> dict:
    """One contender's run (``torchrun`` for several processes); its rank-0 measurements."""
    cmd = [sys.executable]
    if processes > 1:
        cmd += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    cmd += [__file__, "--worker", "--dataset", str(dataset), "--batch", str(batch)]
    cmd += ["--scaling", scaling, "--traces", str(args.traces), "--target", str(args.target)]
    cmd += ["--device", args.device, "--lstm", str(args.lstm)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"run failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    result: dict = json.loads(lines[0][len("RESULT ") :])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--traces", type=int, default=6144, help="training budget per run")
    parser.add_argument("--target", type=float, default=3.8, help="validation loss to reach")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per process)")
    parser.add_argument("--gpus", type=int, default=2, help="with cuda: processes (GPUs) of DDP")
    parser.add_argument("--lstm", type=int, default=64, help="LSTM size of the network")
    parser.add_argument("--num-traces", type=int, default=2560, help="traces in the dataset")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--scaling", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from rotalumis.data import TraceDataset
    from rotalumis.models import Branching

    contenders = {
        "1 process, 64 traces/step": (1, 64, "none"),
        "2 processes, 2 x 32 traces/step (same steps)": (2, 32, "none"),
        "2 processes, 2 x 64 traces/step (lr x2, warm-up)": (2, 64, "linear"),
    }
    if args.device != "cpu":  # one GPU per process: 1 GPU vs all of them, 256 per GPU
        g = args.gpus
        contenders = {
            "1 GPU, 256 traces/step": (1, 256, "none"),
            f"{g} GPUs, {g} x 256 traces/step (lr x{g}, warm-up)": (g, 256, "linear"),
        }
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "traces"
        per_shard = args.num_traces // 5
        TraceDataset.generate(Branching(), dataset, args.num_traces, seed=7,
                              traces_per_shard=per_shard)  # fmt: skip
        runs: dict[str, list[dict]] = {name: [] for name in contenders}
        for r in range(args.rounds):
            for name, (processes, batch, scaling) in contenders.items():
                runs[name].append(run(dataset, processes, batch, scaling, args))
                print(f"round {r + 1}: {name}: {runs[name][-1]}", file=sys.stderr)
    first = next(iter(runs))  # the baseline: one process
    base = statistics.median(x["traces_per_s"] for x in runs[first])
    base_t = [x["to_target_s"] for x in runs[first]]
    print(f"\n{args.rounds} rounds, medians; budget {args.traces} traces, target {args.target}\n")
    print("| contender | train traces/s | speed-up | time to validation loss | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, results in runs.items():
        tps = statistics.median(x["traces_per_s"] for x in results)
        times = [x["to_target_s"] for x in results]
        if all(t is not None for t in times) and all(t is not None for t in base_t):
            t = statistics.median(times)
            reach = f"{t:.1f} s | {statistics.median(base_t) / t:.2f}x"
        else:
            reach = "not reached | -"
        print(f"| {name} | {tps:,.0f} | {tps / base:.2f}x | {reach} |")


if __name__ == "__main__":
    main()
