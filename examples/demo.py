"""The demo behind `make demo`: infer the unknown mean of a Gaussian from two observations
with three engines, compare each with the exact posterior, and plot them.

    python examples/demo.py --out demo-output
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import rotalumis as rl
from rotalumis.models import Branching, UnknownMean

OBSERVED = [8.0, 9.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model = UnknownMean()
    observe = model.observations(OBSERVED)
    exact_mean, exact_std = model.exact_posterior(OBSERVED)
    print("Model: mu ~ Normal(1, sqrt 5); obs0, obs1 ~ Normal(mu, sqrt 2)")
    print(f"Observed: obs0 = {OBSERVED[0]}, obs1 = {OBSERVED[1]}")
    print(f"Exact posterior: mu | obs ~ Normal({exact_mean:.4f}, {exact_std:.4f})\n")

    runs = {
        "is": dict(num_traces=50_000),
        "lmh": dict(num_traces=20_000, burn_in=1000),
        "rmh": dict(num_traces=20_000, burn_in=1000, num_chains=2),
    }
    results = {}
    print(
        f"{'engine':8} {'samples':>8} {'seconds':>8} {'traces/s':>10} {'mean':>8} {'std':>8} "
        f"{'ESS':>9}  error of mean"
    )
    for engine, opts in runs.items():
        n = opts.pop("num_traces")
        t0 = time.perf_counter()
        post = model.posterior(n, engine=engine, observe=observe, seed=args.seed, **opts)
        dt = time.perf_counter() - t0
        results[engine] = post
        mean, std = float(post.mean), float(post.stddev)
        # Kish's ESS for importance sampling; MCMC results know their chains and report
        # ArviZ's autocorrelation-aware bulk ESS
        ess = post.ess
        print(
            f"{engine:8} {len(post):>8} {dt:>8.2f} {len(post) / dt:>10,.0f} {mean:>8.4f} "
            f"{std:>8.4f} {ess:>9.1f}  {abs(mean - exact_mean):.4f}"
        )
    print()
    print("Importance-sampling posterior summary:")
    print(results["is"].summary_table())

    branching = Branching()
    post_n = branching.posterior(50_000, engine="is", observe={"obs": 5.0}, seed=args.seed)
    exact_n = branching.exact_posterior(5.0)
    print("\nBranching model (n ~ Poisson(3), n Bernoulli latents, obs = 5): P(n | obs)")
    values, w = np.asarray(post_n.to_numpy()), np.asarray(post_n.weights)
    print("  n   IS      exact")
    for k in range(2, 11):
        print(f"  {k:<3} {w[values == k].sum():.4f}  {exact_n[k]:.4f}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    grid = np.linspace(exact_mean - 4 * exact_std, exact_mean + 4 * exact_std, 400)
    density = np.exp(-0.5 * ((grid - exact_mean) / exact_std) ** 2) / (
        exact_std * math.sqrt(2 * math.pi)
    )
    for engine, post in results.items():
        axes[0].hist(
            np.asarray(post.to_numpy()),
            bins=np.linspace(grid[0], grid[-1], 60),
            weights=np.asarray(post.weights),
            density=True,
            histtype="step",
            lw=1.6,
            label=engine.upper(),
        )
    axes[0].plot(grid, density, "k--", lw=1.5, label="exact")
    axes[0].set(xlabel="mu", ylabel="posterior density", title="Unknown mean: posterior of mu")
    axes[0].legend()
    ks = np.arange(0, 13)
    axes[1].bar(ks - 0.2, [w[values == k].sum() for k in ks], width=0.4, label="IS")
    axes[1].bar(ks + 0.2, [exact_n[k] for k in ks], width=0.4, label="exact")
    axes[1].set(xlabel="n", ylabel="P(n | obs)", title="Branching model: posterior of n")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(args.out / "posterior.png", dpi=110)
    results["is"].save(args.out / "unknown_mean_is.npz")
    print(
        f"\nPlot written to {args.out / 'posterior.png'}; IS posterior saved to "
        f"{args.out / 'unknown_mean_is.npz'}"
    )
    _ = rl  # the package namespace, for readers following along


if __name__ == "__main__":
    main()
