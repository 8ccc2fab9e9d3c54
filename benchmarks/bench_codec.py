"""PPX codec speed: encode and decode of the messages of the hot loop, this tree vs another.

The messages a remote simulator exchanges per choice (``Sample``, ``SampleResult``,
``Observe``, ``RunResult``) are encoded and decoded through the public
:func:`rotalumis.remote.encode` / :func:`rotalumis.remote.decode`, in a fresh process per
measurement. With ``--against DIR`` (the ``src`` folder of another checkout, e.g. a worktree
of ``main``) the same measurement runs on that tree too, alternating round by round so that
machine load hits both alike; the table gives medians and the ratio. Usage::

    .venv/bin/python benchmarks/bench_codec.py [--against ../main/src] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Runs in a fresh interpreter whose sys.path starts with the tree under test.
WORKER = """
import json, sys, time
import torch
torch.set_num_threads(1)
from rotalumis.core import Normal
from rotalumis.remote import decode, encode
from rotalumis.remote.messages import Observe, RunResult, Sample, SampleResult

n = int(sys.argv[1])
messages = {
    "Sample": lambda i: Sample("UnknownMean.forward:39", "mu", Normal(1.0 + i % 7, 2.0)),
    "SampleResult": lambda i: SampleResult(0.5 * (i % 11)),
    "Observe": lambda i: Observe("UnknownMean.forward:42", "obs0", Normal(0.1 * (i % 5), 1.4)),
    "RunResult": lambda i: RunResult(float(i % 3)),
}
out = {}
for name, make in messages.items():
    objs = [make(i) for i in range(n)]
    bufs = [encode(m) for m in objs]  # warm the per-site templates and layouts
    for b in bufs[:64]:
        decode(b)
    t = time.perf_counter()
    for m in objs:
        encode(m)
    out["encode " + name] = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for b in bufs:
        decode(b)
    out["decode " + name] = (time.perf_counter() - t) / n * 1e6
print(json.dumps(out))
"""


def measure(src: Path, n: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(n)], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", type=Path, help="src folder of the tree to compare with")
    parser.add_argument("--messages", type=int, default=20000, help="messages per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="measurements per tree")
    args = parser.parse_args()
    trees = {"this tree": SRC}
    if args.against is not None:
        trees["other"] = args.against.resolve()
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    for _ in range(args.rounds):
        for tree, src in trees.items():
            runs[tree].append(measure(src, args.messages))
    keys = list(runs["this tree"][0])
    med = {t: {k: statistics.median(r[k] for r in rs) for k in keys} for t, rs in runs.items()}
    head = "| µs per message | this tree |" + (" other | this / other |" if len(trees) > 1 else "")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for k in keys:
        row = f"| {k} | {med['this tree'][k]:.2f} |"
        if len(trees) > 1:
            row += f" {med['other'][k]:.2f} | {med['this tree'][k] / med['other'][k]:.3f} |"
        print(row)
    print(f"\nmedians of {args.rounds} rounds of {args.messages} messages, alternating trees")


if __name__ == "__main__":
    main()
