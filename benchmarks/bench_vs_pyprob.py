"""rotalumis vs pyprob 1.5.0 on the unknown-mean model, measured side by side in one run.

For every engine (prior, IS, LMH, RMH) and every repeat, a fresh rotalumis process and a
fresh pyprob process each do one warm-up and one timed run of the same number of traces,
alternating, so both see the same machine load. The table reports medians over repeats of
traces/s, the ratio, the root-mean-square error (over the repeats) of the posterior mean and
standard deviation against the exact posterior (mu | obs ~ N(7.25, sqrt(5/6))), and peak
resident memory.

    make bench            # creates .venv-pyprob (pyprob 1.5.0 pins flatbuffers==2.0) if needed
    .venv/bin/python benchmarks/bench_vs_pyprob.py --traces 20000 --repeats 5

Both sides use one torch thread.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXACT_MEAN, EXACT_STD = 7.25, math.sqrt(5.0 / 6.0)
PRIOR_MEAN, PRIOR_STD = 1.0, math.sqrt(5.0)
ENGINES = ["prior", "is", "lmh", "rmh"]


def worker(python: Path, script: str, engine: str, n: int, seed: int) -> dict[str, float]:
    out = subprocess.run(
        [str(python), str(ROOT / "benchmarks" / script), engine, str(n), str(seed)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pyprob-python", type=Path, default=ROOT / ".venv-pyprob/bin/python")
    args = parser.parse_args()
    if not args.pyprob_python.exists():
        sys.exit(f"pyprob venv not found at {args.pyprob_python}: run `make pyprob-venv` first")

    rows = []
    for engine in ENGINES:
        ours: list[dict[str, float]] = []
        theirs: list[dict[str, float]] = []
        for r in range(args.repeats):
            ours.append(
                worker(Path(sys.executable), "_rotalumis_worker.py", engine, args.traces, r)
            )
            theirs.append(worker(args.pyprob_python, "_pyprob_worker.py", engine, args.traces, r))
            print(
                f"  {engine:5} repeat {r}: rotalumis {ours[-1]['traces_per_s']:>10,.0f}/s  "
                f"pyprob {theirs[-1]['traces_per_s']:>8,.0f}/s",
                file=sys.stderr,
            )
        mean_ref, std_ref = (
            (PRIOR_MEAN, PRIOR_STD) if engine == "prior" else (EXACT_MEAN, EXACT_STD)
        )

        def med(runs: list[dict[str, float]], key: str) -> float:
            return statistics.median(x[key] for x in runs)

        def err(runs: list[dict[str, float]], key: str, ref: float) -> float:
            # root-mean-square error over the repeats (each repeat has its own seed)
            return math.sqrt(statistics.fmean((x[key] - ref) ** 2 for x in runs))

        rows.append(
            (
                engine,
                med(ours, "traces_per_s"),
                med(theirs, "traces_per_s"),
                err(ours, "mean", mean_ref),
                err(theirs, "mean", mean_ref),
                err(ours, "std", std_ref),
                err(theirs, "std", std_ref),
                med(ours, "peak_rss_mb"),
                med(theirs, "peak_rss_mb"),
            )
        )

    print(
        f"\nUnknown-mean model, {args.traces} traces per run, medians of {args.repeats} runs "
        "(fresh process each, 1 torch thread); errors are RMSE over the runs\n"
    )
    print(
        "| engine | rotalumis traces/s | pyprob traces/s | ratio "
        "| RMSE of mean, rotalumis / pyprob | RMSE of std, rotalumis / pyprob "
        "| peak RSS MB, rotalumis / pyprob |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for e, a, b, ma, mb, sa, sb, ra, rb in rows:
        print(
            f"| {e} | {a:,.0f} | {b:,.0f} | {a / b:.1f}x | {ma:.3f} / {mb:.3f} "
            f"| {sa:.3f} / {sb:.3f} | {ra:.0f} / {rb:.0f} |"
        )


if __name__ == "__main__":
    main()
