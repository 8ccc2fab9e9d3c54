"""One timed rotalumis run, printed as one JSON line (the benchmark runs it as a subprocess
so that each measurement starts from a fresh process, as the pyprob one does).

    .venv/bin/python benchmarks/_rotalumis_worker.py ENGINE NUM_TRACES SEED
"""

import json
import resource
import sys
import time

import torch

from rotalumis.models import UnknownMean

torch.set_num_threads(1)

OBSERVE = {"obs0": 8.0, "obs1": 9.0}


def run(engine: str, n: int, seed: int):
    model = UnknownMean()
    if engine == "prior":
        return model.prior(n, seed=seed, progress=False)
    return model.posterior(n, engine=engine, observe=OBSERVE, seed=seed, progress=False)


def main() -> None:
    engine, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    run(engine, 50, seed + 1)  # warm-up
    t0 = time.perf_counter()
    post = run(engine, n, seed)
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "traces_per_s": n / dt,
                "mean": float(post.mean),
                "std": float(post.stddev),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
