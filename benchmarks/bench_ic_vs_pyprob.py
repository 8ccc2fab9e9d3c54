"""Inference compilation: rotalumis vs pyprob 1.5.0 (LSTM network), side by side in one run.

For each reference model (unknown mean, Gaussian mixture, HMM, branching) both systems train
an LSTM inference network online on the same number of fresh prior traces, with the same
batch size, initial learning rate (decayed over the budget: cosine for rotalumis, linear
for pyprob), LSTM size, mixture components and observation embeddings (feed-forward, 32
units, 2 layers, per observation), then run importance sampling with the network on the
same observations. Each system runs in a fresh process (pyprob in its own virtualenv) with
one torch thread.

Each side trains ``--train-repeats`` networks (training seeds 0, 1, ...) per model and runs
``--repeats`` importance-sampling runs with each (fewer for the HMM, where pyprob's IC runs
at a few dozen traces/s). Reported: the median training traces/s (over the chunks of each
budget and the trainings), the median inference (IC importance sampling) traces/s over the
inference runs, the root-mean-square posterior error against the exact posterior
and the median Kish ESS per trace (over all trainings and inference runs). Posterior
errors: unknown mean — mean error / exact posterior std; mixture — that plus the error of
P(k=1); HMM — mean absolute error of the 16x3 state marginals; branching — total variation
distance of P(n). The observations are in the tails of the prior predictive (where prior
importance sampling is poor), so both networks extrapolate; the errors are at the Monte
Carlo noise level of ``traces x ESS`` samples.

    make pyprob-venv
    .venv/bin/python benchmarks/bench_ic_vs_pyprob.py --traces 10000

The same file is the worker of each side (``worker rotalumis|pyprob MODEL ...``); the pyprob
worker imports nothing from rotalumis.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["unknown_mean", "mixture", "hmm", "branching"]
HMM_OBS = [0.9, 0.8, 0.7, 0.0, -0.025, -5.0, -2.0, -0.1, 0.0, 0.13, 0.45, 6.0, 0.2, 0.3, -1.0, -1.0]
OBSERVE: dict[str, dict[str, float]] = {
    "unknown_mean": {"obs0": 8.0, "obs1": 9.0},
    "mixture": {"obs": 7.0},
    "hmm": {f"obs{t}": v for t, v in enumerate(HMM_OBS)},
    "branching": {"obs": 5.0},
}
BRANCHING_NOISE = 0.5


# -- pyprob side (runs in .venv-pyprob) ------------------------------------------------------
def pyprob_models() -> dict[str, Any]:
    import pyprob
    import torch
    from pyprob import Model
    from pyprob.distributions import Bernoulli, Categorical, Normal, Poisson

    class UnknownMean(Model):
        def forward(self):
            mu = pyprob.sample(Normal(1.0, math.sqrt(5.0)), name="mu")
            likelihood = Normal(mu, math.sqrt(2.0))
            pyprob.observe(likelihood, name="obs0")
            pyprob.observe(likelihood, name="obs1")
            return mu

    class Mixture(Model):
        def forward(self):
            k = int(pyprob.sample(Categorical([0.3, 0.7]), name="k"))
            x = pyprob.sample(Normal([-2.0, 3.0][k], [1.0, 1.5][k]), name="x")
            pyprob.observe(Normal(x, 1.0), name="obs")
            return torch.tensor([float(k), float(x)])

    class HMM(Model):
        def forward(self):
            trans = [[0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.15, 0.15, 0.7]]
            probs, states = [1 / 3, 1 / 3, 1 / 3], []
            for t in range(16):
                s = int(pyprob.sample(Categorical(probs), name=f"state{t}"))
                pyprob.observe(Normal([-1.0, 1.0, 0.0][s], 1.0), name=f"obs{t}")
                states.append(float(s))
                probs = trans[s]
            return torch.tensor(states)

    class Branching(Model):
        def forward(self):
            n = int(pyprob.sample(Poisson(3.0), name="n"))
            total = 0.0
            for _ in range(n):
                total += float(pyprob.sample(Bernoulli(0.6)))
            pyprob.observe(Normal(total, BRANCHING_NOISE), name="obs")
            return torch.tensor(float(n))

    return {
        "unknown_mean": UnknownMean(name="UnknownMean"),
        "mixture": Mixture(name="Mixture"),
        "hmm": HMM(name="HMM"),
        "branching": Branching(name="Branching"),
    }


def pyprob_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import pyprob
    import torch
    from pyprob import InferenceEngine, InferenceNetwork, LearningRateScheduler

    torch.set_num_threads(1)
    # pyprob's Poisson proposal (a truncated normal mixture) proposes non-integers, which
    # torch >= 1.8 rejects when validating arguments; pyprob 1.5.0 predates that check.
    torch.distributions.Distribution.set_default_validate_args(False)
    pyprob.util.seed(args.seed)
    model = pyprob_models()[name]
    embeddings = {k: {"dim": 32, "depth": 2} for k in OBSERVE[name]}
    chunk = args.traces // args.chunks
    rates = []
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for _ in range(args.chunks):
            t0 = time.perf_counter()
            model.learn_inference_network(
                num_traces=chunk,
                num_traces_end=args.traces,
                inference_network=InferenceNetwork.LSTM,
                observe_embeddings=embeddings,
                batch_size=args.batch_size,
                lstm_dim=args.lstm_dim,
                proposal_mixture_components=args.components,
                learning_rate_init=args.lr,
                learning_rate_end=1e-5,
                learning_rate_scheduler_type=LearningRateScheduler.POLY1,
            )
            rates.append(chunk / (time.perf_counter() - t0))
        posteriors, infer_rates = [], []
        for r in range(args.repeats):
            pyprob.util.seed(1000 + 100 * args.seed + r)  # distinct for every run
            t0 = time.perf_counter()
            post = model.posterior_results(
                num_traces=args.posterior_traces,
                inference_engine=InferenceEngine.IMPORTANCE_SAMPLING_WITH_INFERENCE_NETWORK,
                observe=OBSERVE[name],
            )
            infer_rates.append(args.posterior_traces / (time.perf_counter() - t0))
            values = [torch.as_tensor(v).reshape(-1).tolist() for v in post.get_values()]
            log_w = [float(post._get_log_weight(i)) for i in range(post.length)]
            posteriors.append({"values": values, "log_weights": log_w})
    return {"rates": rates, "infer_rates": infer_rates, "posteriors": posteriors}


# -- rotalumis side --------------------------------------------------------------------------
def rotalumis_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch

    from rotalumis.models import Branching, GaussianMixture, HiddenMarkovModel, UnknownMean
    from rotalumis.nn import TrainingConfig, train_network

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    model = {
        "unknown_mean": UnknownMean,
        "mixture": GaussianMixture,
        "hmm": HiddenMarkovModel,
        "branching": lambda: Branching(noise=BRANCHING_NOISE),
    }[name]()
    chunk = args.traces // args.chunks
    marks: list[float] = [time.perf_counter()]

    def on_step(done: int, total: int, loss: float) -> None:
        if done >= chunk * len(marks) and len(marks) <= args.chunks:
            marks.append(time.perf_counter())

    config = TrainingConfig(
        num_traces=args.traces,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        valid_size=0,
        seed=args.seed,
    )
    sizes = {"lstm_dim": args.lstm_dim, "mixture_components": args.components}
    net = train_network(model=model, config=config, network_sizes=sizes, on_step=on_step).network
    rates = [chunk / (b - a) for a, b in itertools.pairwise(marks)]
    posteriors, infer_rates = [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        post = model.posterior(
            args.posterior_traces,
            engine="ic",
            observe=OBSERVE[name],
            seed=1000 + 100 * args.seed + r,  # distinct for every run
            network=net,
            progress=False,
        )
        infer_rates.append(args.posterior_traces / (time.perf_counter() - t0))
        values = np.asarray(post.to_numpy(), dtype=float).reshape(len(post), -1)
        if name == "mixture":
            k = np.asarray(post.get("k").to_numpy(), dtype=float).reshape(-1, 1)
            values = np.concatenate([k, values], axis=1)
        log_w = np.asarray(post.log_weights, dtype=float)
        posteriors.append({"values": values.tolist(), "log_weights": log_w.tolist()})
    return {"rates": rates, "infer_rates": infer_rates, "posteriors": posteriors}


# -- driver (runs in the rotalumis venv) -------------------------------------------------------
def _normalise(log_w: list[float]) -> Any:
    import numpy as np

    lw = np.asarray(log_w, dtype=float)
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    w = np.exp(lw - lw.max())
    return w / w.sum()


def posterior_error(name: str, values: list[list[float]], log_w: list[float]) -> float:
    """The model's error measure (see the module docstring) of one weighted sample."""
    import numpy as np

    from rotalumis.models import Branching, GaussianMixture, HiddenMarkovModel, UnknownMean

    v = np.asarray(values, dtype=float)
    w = _normalise(log_w)
    if name == "unknown_mean":
        mean, std = UnknownMean().exact_posterior([8.0, 9.0])
        return float(abs(w @ v[:, 0] - mean) / std)
    if name == "mixture":
        exact = GaussianMixture().exact_posterior(OBSERVE[name]["obs"])
        return float(
            abs(w @ v[:, 1] - exact["mean"]) / exact["std"]
            + abs(w @ (v[:, 0] == 1) - exact["p_k1"])
        )
    if name == "hmm":
        exact = HiddenMarkovModel().exact_marginals(HMM_OBS).numpy()
        est = np.stack([w @ (v == s) for s in range(3)], axis=1)
        return float(np.abs(est - exact).mean())
    exact_n = np.asarray(Branching(noise=BRANCHING_NOISE).exact_posterior(OBSERVE[name]["obs"]))
    est = np.bincount(v[:, 0].astype(int), weights=w, minlength=len(exact_n))[: len(exact_n)]
    return float(0.5 * np.abs(est - exact_n).sum())


def ess_per_trace(log_w: list[float]) -> float:
    w = _normalise(log_w)
    return float(1.0 / (w * w).sum() / len(w))


def run_worker(
    python: Path, side: str, name: str, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    cmd = [str(python), str(Path(__file__).resolve()), "worker", side, name]
    for key in ("traces", "chunks", "batch_size", "lr", "lstm_dim", "components"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    traces, repeats = args.posterior_traces, args.repeats
    if name == "hmm":
        traces, repeats = args.hmm_posterior_traces, args.hmm_repeats
    cmd += ["--posterior-traces", str(traces), "--repeats", str(repeats)]
    cmd += ["--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{side} worker failed on {name}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(name: str, results: list[dict[str, Any]]) -> dict[str, float]:
    posts = [p for r in results for p in r["posteriors"]]
    errors = [posterior_error(name, p["values"], p["log_weights"]) for p in posts]
    return {
        "rate": statistics.median(x for r in results for x in r["rates"]),
        "error": math.sqrt(statistics.fmean(e * e for e in errors)),
        "ess": statistics.median(ess_per_trace(p["log_weights"]) for p in posts),
        "infer": statistics.median(x for r in results for x in r["infer_rates"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--traces", type=int, default=10_000, help="training traces (budget)")
    parser.add_argument("--chunks", type=int, default=5, help="throughput measurements")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lstm-dim", type=int, default=128)
    parser.add_argument("--components", type=int, default=5)
    parser.add_argument("--posterior-traces", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="inference repeats per network")
    parser.add_argument("--hmm-posterior-traces", type=int, default=1000)
    parser.add_argument("--hmm-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="(worker) training seed")
    parser.add_argument("--train-repeats", type=int, default=5, help="networks trained per side")
    parser.add_argument("--hmm-train-repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--pyprob-python", type=Path, default=ROOT / ".venv-pyprob/bin/python")
    args = parser.parse_args()
    if args.mode:
        _, side, name = args.mode
        worker = pyprob_worker if side == "pyprob" else rotalumis_worker
        print(json.dumps(worker(name, args)))
        return
    if not args.pyprob_python.exists():
        sys.exit(f"pyprob venv not found at {args.pyprob_python}: run `make pyprob-venv` first")
    print(
        f"IC (LSTM {args.lstm_dim}, {args.components} components), {args.traces} training traces, "
        f"batch {args.batch_size}, lr {args.lr}; {args.train_repeats} trainings x "
        f"{args.repeats} x {args.posterior_traces} IS traces (HMM: {args.hmm_train_repeats} x "
        f"{args.hmm_repeats} x {args.hmm_posterior_traces}); "
        "1 torch thread, CPU\n",
        flush=True,
    )
    rows = []
    for name in args.models:
        runs: dict[str, list[dict[str, Any]]] = {"rotalumis": [], "pyprob": []}
        trainings = args.hmm_train_repeats if name == "hmm" else args.train_repeats
        for seed in range(trainings):  # alternate, so both see the same machine load
            runs["rotalumis"].append(
                run_worker(Path(sys.executable), "rotalumis", name, args, seed)
            )
            runs["pyprob"].append(run_worker(args.pyprob_python, "pyprob", name, args, seed))
        ours, theirs = summarise(name, runs["rotalumis"]), summarise(name, runs["pyprob"])
        rows.append((name, ours, theirs))
        print(f"{name}: rotalumis {ours}  pyprob {theirs}", file=sys.stderr, flush=True)
    print(
        "| model | train traces/s rotalumis | pyprob | speed-up | posterior RMSE rotalumis "
        "| pyprob | ESS/trace rotalumis | pyprob | IC traces/s rotalumis | pyprob | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, o, t in rows:
        print(
            f"| {name} | {o['rate']:,.0f} | {t['rate']:,.0f} | {o['rate'] / t['rate']:.1f}x "
            f"| {o['error']:.4f} | {t['error']:.4f} | {o['ess']:.3f} | {t['ess']:.3f} "
            f"| {o['infer']:,.0f} | {t['infer']:,.0f} | {o['infer'] / t['infer']:.1f}x |"
        )


if __name__ == "__main__":
    main()
