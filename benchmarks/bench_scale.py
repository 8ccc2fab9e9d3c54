"""Scale-out: the fork pool and Dask executors, and pools of PPX simulators, side by side.

Four measurements, interleaved round by round (the machine is shared and noisy), medians:

1. **simulator-bound** (~2 ms of CPU per trace, importance sampling, 2048 traces): 2
   workers vs 1, for the fork pool (``workers=``; with the CPU its workers used, which
   load on the machine does not inflate) and for Dask (``cluster=`` a LocalCluster of 1
   or 2 worker processes); and the fork pool's fixed start-up per job (forking workers);
2. **weak scaling** with a latency-bound simulator (each trace waits 50 ms using no CPU):
   1, 8, 32, 64 Dask worker threads (4 worker processes, threads split among them), one
   64-trace chunk per worker: efficiency = time(1) / time(W);
3. **Dask overhead** on a fast model (engine cost only): Dask's traces/s over the fork
   pool's, both with 2 workers;
4. **PPX pool**: ``RemoteModel`` over 4 ``rotalumis serve`` processes vs over 1, for a
   simulator that takes ~5 ms per trace (a wait: this machine has 2 cores).

Clusters and servers are started, and each contender run once, before timing. Prints a
Markdown table (the README's) in about 5 minutes on a quiet 2-core machine. Usage::

    .venv/bin/python benchmarks/bench_scale.py [--rounds 3] [--only 1,2,3,4]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

torch.set_num_threads(1)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _scale_models import CpuBound, Fast, LatencyBound  # noqa: E402

from rotalumis.distributed import DaskExecutor  # noqa: E402
from rotalumis.infer.importance import CHUNK  # noqa: E402
from rotalumis.remote import RemoteModel  # noqa: E402

KW = {"observe": {"y": 0.5}, "seed": 1, "progress": False}


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def medians(rounds: int, contenders: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Run every contender once untimed (warm-up: imports and first-use costs on fresh
    workers), then once per round, interleaved; median seconds of each."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run()
    for _ in range(rounds):
        for name, run in contenders.items():
            times[name].append(timed(run))
    return {name: statistics.median(t) for name, t in times.items()}


def local_cluster(workers: int, processes: int | None = None) -> DaskExecutor:
    """A LocalCluster of ``workers`` worker threads over ``processes`` processes."""
    from dask.distributed import Client, LocalCluster

    processes = processes or workers
    cluster = LocalCluster(
        n_workers=processes,
        threads_per_worker=workers // processes,
        dashboard_address=":0",
    )
    client = Client(cluster)
    client.wait_for_workers(processes)
    executor = DaskExecutor(client)
    executor._owned = [client, cluster]  # closed with the executor
    return executor


def children_cpu() -> float:
    """CPU seconds of this process's finished children (forked workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def simulator_bound(rounds: int) -> list[str]:
    n = 32 * CHUNK  # 2048 traces, ~4 s of CPU: a job that simulation dominates
    model = CpuBound()
    fork_cpu: dict[int, list[float]] = {1: [], 2: []}

    def fork(workers: int) -> None:
        before = children_cpu()
        model.posterior(n, workers=workers, **KW)
        fork_cpu[workers].append(children_cpu() - before)

    with local_cluster(1) as one, local_cluster(2) as two:
        t = medians(
            rounds,
            {
                "fork 1": lambda: fork(1),
                "fork 2": lambda: fork(2),
                "dask 1": lambda: model.posterior(n, cluster=one, **KW),
                "dask 2": lambda: model.posterior(n, cluster=two, **KW),
            },
        )
        fast = Fast()
        tiny = medians(
            rounds,
            {
                "here": lambda: fast.posterior(CHUNK, **KW),
                "fork": lambda: fast.posterior(CHUNK, workers=2, **KW),
            },
        )
    cpu = {w: statistics.median(c) for w, c in fork_cpu.items()}
    return [
        f"| simulator-bound (2 ms CPU/trace, {n} traces), fork pool | 2 vs 1 workers | "
        f"{t['fork 1']:.2f} s → {t['fork 2']:.2f} s (workers' CPU {cpu[1]:.2f} s, "
        f"{cpu[2]:.2f} s) | **{t['fork 1'] / t['fork 2']:.2f}x** | >= 1.8x |",
        f"| fork pool start-up (a {CHUNK}-trace job, fast model) | 2 workers vs here | "
        f"{1000 * tiny['fork']:.0f} ms vs {1000 * tiny['here']:.0f} ms | "
        f"{1000 * (tiny['fork'] - tiny['here']):.0f} ms per job | - |",
        f"| simulator-bound, Dask LocalCluster | 2 vs 1 workers | "
        f"{t['dask 1']:.2f} s → {t['dask 2']:.2f} s | **{t['dask 1'] / t['dask 2']:.2f}x** "
        "| >= 1.8x |",
    ]


def weak_scaling(rounds: int) -> list[str]:
    model = LatencyBound()
    rows = []
    base = None
    for workers in (1, 8, 32, 64):
        processes = min(workers, 4)
        with local_cluster(workers, processes) as ex:
            n = workers * CHUNK  # one 64-trace chunk (3.2 s of waiting) per worker
            run = lambda n=n, ex=ex: model.posterior(n, cluster=ex, **KW)  # noqa: E731
            t = medians(rounds, {"run": run})["run"]
        base = base or t
        rows.append(
            f"| weak scaling, latency-bound (50 ms wait/trace, 64 traces per worker) | "
            f"{workers} Dask workers ({processes} processes) | {t:.2f} s | "
            f"**{base / t:.0%}** efficiency | >= 80% at 64 |"
        )
    return rows


def dask_overhead(rounds: int) -> list[str]:
    n = 40 * CHUNK * 10  # 25,600 traces of a fast model
    model = Fast()
    with local_cluster(2) as two:
        t = medians(
            rounds,
            {
                "fork": lambda: model.posterior(n, workers=2, **KW),
                "dask": lambda: model.posterior(n, cluster=two, **KW),
            },
        )
    return [
        f"| fast model ({n} traces), Dask vs fork pool | 2 workers each | "
        f"fork {n / t['fork']:,.0f}, Dask {n / t['dask']:,.0f} traces/s | "
        f"**{t['fork'] / t['dask']:.0%}** of the fork pool | >= 90% |"
    ]


@contextlib.contextmanager
def servers(n: int):
    env = {**os.environ, "SCALE_SLEEP": "0.005", "PYTHONPATH": str(HERE)}
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    addresses = [f"ipc://@rotalumis-bench-{tag}-{i}" for i in range(n)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rotalumis.cli.serve",
                f"{HERE / '_scale_models.py'}:LatencyBound",
                "--address",
                a,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for a in addresses
    ]
    try:
        yield addresses
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def ppx_pool(rounds: int) -> list[str]:
    n = 16 * CHUNK  # 1024 traces, ~5 s on one server
    with servers(4) as addresses:
        one = RemoteModel(addresses[0], timeout=60)
        four = RemoteModel(addresses, timeout=60)
        t = medians(
            rounds,
            {"1": lambda: one.posterior(n, **KW), "4": lambda: four.posterior(n, **KW)},
        )
        one.close()
        four.close()
    speedup = t["1"] / t["4"]
    return [
        f"| PPX pool (5 ms simulator, {n} traces) | 4 `rotalumis serve` vs 1 | "
        f"{n / t['1']:.0f} → {n / t['4']:.0f} traces/s | **{speedup:.2f}x = {speedup / 4:.0%}** "
        "of 4x | >= 85% of 4x |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="1,2,3,4")
    args = parser.parse_args()
    parts = {"1": simulator_bound, "2": weak_scaling, "3": dask_overhead, "4": ppx_pool}
    start = time.perf_counter()
    print(
        f"bench_scale: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the "
        f"start; medians of {args.rounds} rounds after a warm-up run"
    )
    print("| measurement | setting | time / rate (median) | result | target |")
    print("|---|---|---|---|---|")
    for key in args.only.split(","):
        for row in parts[key](args.rounds):
            print(row, flush=True)
    print(
        f"done in {time.perf_counter() - start:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f} at the end (above {os.cpu_count()}: numbers are noisy)"
    )


if __name__ == "__main__":
    main()
