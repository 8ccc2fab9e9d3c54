"""Runs inside .venv-pyprob: one timed pyprob 1.5.0 run, printed as one JSON line.

.venv-pyprob/bin/python benchmarks/_pyprob_worker.py ENGINE NUM_TRACES SEED
"""

import contextlib
import io
import json
import math
import resource
import sys
import time

import pyprob
import torch
from pyprob import InferenceEngine, Model
from pyprob.distributions import Normal

torch.set_num_threads(1)


class UnknownMean(Model):
    def __init__(self):
        super().__init__(name="UnknownMean")

    def forward(self):
        mu = pyprob.sample(Normal(1.0, math.sqrt(5.0)), name="mu")
        likelihood = Normal(mu, math.sqrt(2.0))
        pyprob.observe(likelihood, name="obs0")
        pyprob.observe(likelihood, name="obs1")
        return mu


ENGINES = {
    "is": InferenceEngine.IMPORTANCE_SAMPLING,
    "lmh": InferenceEngine.LIGHTWEIGHT_METROPOLIS_HASTINGS,
    "rmh": InferenceEngine.RANDOM_WALK_METROPOLIS_HASTINGS,
}


def run(engine: str, n: int):
    model = UnknownMean()
    if engine == "prior":
        return model.prior_results(num_traces=n)
    return model.posterior_results(
        num_traces=n, inference_engine=ENGINES[engine], observe={"obs0": 8.0, "obs1": 9.0}
    )


def main() -> None:
    engine, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pyprob.util.seed(seed)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        run(engine, 50)  # warm-up
        t0 = time.perf_counter()
        post = run(engine, n)
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
