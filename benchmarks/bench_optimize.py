"""Gradient-estimator variance by baseline, and the cost of a gradient step per execution.

Part 1: variance of the batch gradient estimate (batch 16, 400 estimates, one thread) on
models with a known gradient, for each score-function baseline, with the ratio to no
baseline (the peer: the plain REINFORCE estimator) and the bias in Monte Carlo standard
errors. Part 2: wall time per execution of one optimization step (handler, loss, surrogate,
backward) relative to a plain run of the same model under no handler, measured in the same
run. Tables are printed as Markdown. (A plain Categorical with constant logits takes the
scalar fast path; under optimization its logits carry gradients and take the tensor path.)

Run: ``.venv/bin/python benchmarks/bench_optimize.py [--estimates 400]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from rotalumis.core import RNG, Bernoulli, Categorical, Normal, Poisson, model, sample
from rotalumis.optimize import GradientEstimator, OptimizeConfig

COSTS = torch.tensor([1.0, 4.0, -2.0])


@model
def choice(logits):
    return sample(Categorical(logits=logits))


@model
def counts(rate):
    return sample(Poisson(rate))


@model
def mixed(mu):
    x = sample(Normal(mu, 1.0))
    return x, sample(Bernoulli(0.05 + 0.9 * torch.special.ndtr(x)))


def _categorical_gradient() -> torch.Tensor:
    p = torch.softmax(torch.tensor([0.2, -0.4, 0.1], dtype=torch.float64), 0)
    c = COSTS.double()
    return p * (c - (p * c).sum())


def _mixed_gradient(mu: float) -> torch.Tensor:
    z = mu / math.sqrt(2.0)
    dens = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return torch.tensor([2.7 * dens / math.sqrt(2.0) + 2 * mu], dtype=torch.float64)


CASES = [
    ("Categorical, L = 10 + c[k]", choice, {"logits": [0.2, -0.4, 0.1]},
     lambda k: 10.0 + COSTS[k], _categorical_gradient()),
    ("Poisson, L = n^2", counts, {"rate": 2.0}, lambda n: n**2,
     torch.tensor([5.0], dtype=torch.float64)),
    ("Normal -> Bernoulli, L = 3 b + x^2", mixed, {"mu": 0.3},
     lambda r: 3.0 * r[1] + r[0] ** 2, _mixed_gradient(0.3)),
]  # fmt: skip


def _estimates(case: tuple, baseline: str, num: int) -> torch.Tensor:
    _, sim, params, loss, _ = case
    est = GradientEstimator(sim, loss, OptimizeConfig(batch_size=16, baseline=baseline))
    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
    rng = RNG(0)
    rows = []
    for _ in range(num):
        g = est.estimate(leaves, rng).gradients
        rows.append(torch.cat([g[n].reshape(-1) for n in leaves]))
    return torch.stack(rows).double()


def variance_table(num: int) -> None:
    print("| model | baseline | total variance | ratio to none | max bias / se |")
    print("|---|---|---|---|---|")
    for case in CASES:
        base = None
        for baseline in ("none", "moving_average", "leave_one_out"):
            g = _estimates(case, baseline, num)
            var = float(g.var(0).sum())
            base = var if base is None else base
            se = g.std(0) / math.sqrt(num)
            bias = float(((g.mean(0) - case[4]).abs() / se).max())
            print(f"| {case[0]} | {baseline} | {var:.4g} | {var / base:.3f} | {bias:.2f} |")


def cost_table(repeats: int) -> None:
    print("\n| model | plain run (us/exec) | gradient step (us/exec) | ratio |")
    print("|---|---|---|---|")
    for name, sim, params, loss, _ in CASES:
        leaves = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
        plain = {n: t.detach() for n, t in leaves.items()}
        rng = RNG(1)
        start = time.perf_counter()
        with sim.executions(rng) as run:
            for _ in range(16 * repeats):
                loss(run(**plain))
        t_plain = (time.perf_counter() - start) / (16 * repeats)
        est = GradientEstimator(sim, loss, OptimizeConfig(batch_size=16))
        start = time.perf_counter()
        for _ in range(repeats):
            est.estimate(leaves, rng)
        t_grad = (time.perf_counter() - start) / (16 * repeats)
        print(f"| {name} | {t_plain * 1e6:.0f} | {t_grad * 1e6:.0f} | {t_grad / t_plain:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimates", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    variance_table(args.estimates)
    cost_table(max(1, args.estimates // 4))


if __name__ == "__main__":
    main()
