"""PPX throughput: rotalumis engine vs pyprob engine against the same rotalumis server.

For each transport (ipc, tcp) one ``rotalumis serve`` process serves the unknown-mean model
(``mu ~ Normal(1, sqrt 5)``, two observations); we measure, interleaved round by round so that
machine load hits every contender alike:

* **rotalumis**: ``RemoteModel(address).posterior(N, engine="is", observe=...)``, traces/s;
* **pyprob**: pyprob 1.5.0's ``RemoteModel`` (in ``.venv-pyprob``) running importance
  sampling with the same observations against the same server, traces/s;
* **raw ZeroMQ**: the physical limit — a Python REQ client and a REP server that do nothing
  but exchange the very same PPX bytes, with the same message count per execution (4 round
  trips: Run/Sample, SampleResult/Observe, ObserveResult/Observe, ObserveResult/RunResult).

Prints a markdown table of the medians. Usage::

    .venv/bin/python benchmarks/bench_ppx.py [--traces 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

from rotalumis.core import Normal
from rotalumis.remote import encode
from rotalumis.remote.client import RemoteModel
from rotalumis.remote.messages import (
    Observe,
    ObserveResult,
    Run,
    RunResult,
    Sample,
    SampleResult,
)

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "src" / "rotalumis" / "models" / "unknown_mean.py"
PYPROB_PYTHON = ROOT / ".venv-pyprob" / "bin" / "python"
PYPROB_ENGINE = ROOT / "tests" / "remote" / "peers" / "pyprob_engine.py"
OBSERVE = {"obs0": 8.0, "obs1": 9.0}

# The raw limit's echo server: replies to the k-th request of an execution with the k-th
# reply of a real execution, nothing else.
RAW_SERVER = """
import sys, zmq
replies = [bytes.fromhex(h) for h in sys.argv[2].split(",")]
sock = zmq.Context.instance().socket(zmq.REP)
sock.bind(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    request = sock.recv()
    if request == b"stop":
        sock.send(b"")
        break
    sock.send(replies[i])
    i = (i + 1) % len(replies)
"""


def _no_sigint_ignore() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cmd: list[str]) -> subprocess.Popen[str]:
    """Start a server process and wait for its first line (it is listening then)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=_no_sigint_ignore)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def real_exchange() -> tuple[list[bytes], list[bytes]]:
    """The bytes of one unknown-mean execution: engine requests and simulator replies."""
    sd = 5**0.5
    observed = encode(ObserveResult())
    requests = [encode(Run()), encode(SampleResult(7.1)), observed, observed]
    replies = [
        encode(Sample("UnknownMean.forward:39", "mu", Normal(1.0, sd))),
        encode(Observe("UnknownMean.forward:42", "obs0", Normal(7.1, 2**0.5))),
        encode(Observe("UnknownMean.forward:42", "obs1", Normal(7.1, 2**0.5))),
        encode(RunResult(7.1)),
    ]
    return requests, replies


def timed_rotalumis(model: RemoteModel, n: int, seed: int) -> float:
    """Seconds for ``n`` importance-sampling traces of the remote model."""
    start_time = time.perf_counter()
    model.posterior(n, engine="is", observe=OBSERVE, seed=seed, progress=False)
    return time.perf_counter() - start_time


def bench_pyprob(address: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pyprob.json"
        cmd = [str(PYPROB_PYTHON), str(PYPROB_ENGINE), "--address", address]
        cmd += ["--mode", "posterior", "--num-traces", str(n), "--warmup", "50"]
        cmd += ["--observe", json.dumps(OBSERVE), "--no-records", "--out", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=1800)
        return float(json.loads(out.read_text())["traces_per_second"])


def timed_raw(sock: zmq.Socket, n: int, requests: list[bytes]) -> float:  # type: ignore[type-arg]
    """Seconds for ``n`` executions' worth of bare REQ/REP round trips."""
    start_time = time.perf_counter()
    for _ in range(n):
        for request in requests:
            sock.send(request)
            sock.recv()
    return time.perf_counter() - start_time


def bench_pair(
    model: RemoteModel,
    sock: zmq.Socket,
    n: int,
    requests: list[bytes],
    chunks: int = 8,  # type: ignore[type-arg]
) -> tuple[float, float]:
    """(rotalumis, raw) executions/s, measured in alternating chunks so that both see the
    same machine load."""
    t_rot = t_raw = 0.0
    size = max(1, n // chunks)
    for c in range(chunks):
        t_rot += timed_rotalumis(model, size, seed=c)
        t_raw += timed_raw(sock, size, requests)
    return size * chunks / t_rot, size * chunks / t_raw


def addresses(transport: str, tag: str) -> str:
    if transport == "ipc":
        return f"ipc://@rotalumis-bench-{os.getpid()}-{tag}"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=3000, help="traces per measurement")
    parser.add_argument("--pyprob-traces", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="measurements per contender")
    parser.add_argument("--transports", nargs="+", default=["ipc", "tcp"])
    args = parser.parse_args()
    if not PYPROB_PYTHON.exists():
        sys.exit("pyprob's venv is missing: run `make pyprob-venv` first")

    requests, replies = real_exchange()
    rows = []
    for transport in args.transports:
        address, raw_address = addresses(transport, "sim"), addresses(transport, "raw")
        server = start([sys.executable, "-m", "rotalumis.cli.serve", f"{MODEL}:UnknownMean",
                        "--address", address, "--quiet"])  # fmt: skip
        raw = start([sys.executable, "-c", RAW_SERVER, raw_address,
                     ",".join(r.hex() for r in replies)])  # fmt: skip
        results: dict[str, list[float]] = {"rotalumis": [], "pyprob": [], "raw": []}
        model = RemoteModel(address, timeout=60)
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(raw_address)
        try:
            timed_rotalumis(model, 100, seed=0)  # warm up both
            timed_raw(sock, 100, requests)
            for i in range(args.rounds):
                rot, raw_rate = bench_pair(model, sock, args.traces, requests)
                results["rotalumis"].append(rot)
                results["raw"].append(raw_rate)
                results["pyprob"].append(bench_pyprob(address, args.pyprob_traces))
                print(
                    f"{transport} round {i + 1}: "
                    + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items()),
                    file=sys.stderr,
                )
        finally:
            model.close()
            sock.close(0)
            server.send_signal(signal.SIGINT)
            server.wait(30)
            stop = zmq.Context.instance().socket(zmq.REQ)
            stop.setsockopt(zmq.LINGER, 0)
            stop.connect(raw_address)
            stop.send(b"stop")
            raw.wait(30)
            stop.close(0)
        med = {k: statistics.median(v) for k, v in results.items()}
        # Ratios per round (measured minutes apart at most) are steadier than ratios of
        # medians on a shared machine whose load drifts.
        rounds = list(zip(results["rotalumis"], results["pyprob"], results["raw"], strict=True))
        med["vs_pyprob"] = statistics.median(r / p for r, p, _ in rounds)
        med["vs_raw"] = statistics.median(r / w for r, _, w in rounds)
        rows.append((transport, med))

    print(f"\nUnknown-mean model, importance sampling, medians of {args.rounds} interleaved rounds")
    print(f"({args.traces} traces per rotalumis/raw run, {args.pyprob_traces} per pyprob run):\n")
    print("| transport | rotalumis (traces/s) | pyprob (traces/s) | rotalumis / pyprob "
          "| raw ZeroMQ limit (executions/s) | rotalumis / raw |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for transport, med in rows:
        print(
            f"| {transport} | {med['rotalumis']:,.0f} | {med['pyprob']:,.0f} | "
            f"{med['vs_pyprob']:.1f}x | {med['raw']:,.0f} | {med['vs_raw']:.2f} |"
        )


if __name__ == "__main__":
    main()
