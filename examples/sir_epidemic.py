"""An agent-based SIR epidemic written with numpy, run unmodified; infer its rates from cases.

Each of 200 agents is susceptible, infected or recovered. Every day each agent meets 6 others
chosen at random from the population (so the number of infected people it meets is
binomial), gets infected by each infected contact with probability ``beta``, and each
infected agent recovers with probability ``gamma``; the health authority reports every new
case with probability 0.8 plus a few false positives (Poisson noise). Under
:class:`~rotalumis.intercept.InterceptedModel` the simulator's own numpy draws (about 90 per
run: who meets how many infected people, who gets infected, who recovers, who is reported)
become random choices and ``beta`` and ``gamma`` get uniform priors. The data are the weekly
totals of reported cases over four weeks, observed through a Gaussian kernel of 10 cases
(``weekly ~ Normal(simulated weekly totals, 10)``: simulated weeks must match the reported
ones to about ten cases).

The engine is pseudo-marginal MH over the two rates (``engine="pmmh"``): each step proposes
new rates by a random walk, runs the simulator twice with fresh noise and averages the two
likelihoods; every other draw is nuisance, redrawn in every run. Full run, four chains of
4,000 samples (11 CPU-minutes: about 6 minutes on two free cores; writes cases.json,
sir_cases.png and sir_posterior.png)::

    python examples/sir_epidemic.py --out results/sir

or importance sampling from the prior (``--engine is --num-traces 20000``). The same from the
command line::

    rotalumis run examples/sir_epidemic.py:model -e pmmh -p beta -p gamma --particles 2 \\
        --scale 0.6 -n 4000 --burn-in 500 --chains 4 --workers 2 \\
        --observe "weekly=[37, 73, 24, 9]" --seed 1 --out results/sir/cli

The four chains agree (R-hat 1.003 for ``beta``, 1.010 for ``gamma``; acceptance 14%) and
the posterior covers the true rates with an ESS of 214 (``gamma``) and 328 (``beta``) in
16,000 samples: ``beta`` 0.117 +- 0.028 (truth 0.08), ``gamma`` 0.29 +- 0.12 (truth 0.15),
see ``examples/images/sir_posterior.png``. It is a ridge: four weeks of counts pin down how
fast the outbreak grows and how large it gets, which trade ``beta`` against ``gamma``.

Why weekly totals through a kernel rather than the daily reports through the simulator's
own Poisson reporting (the exact model of daily data): that likelihood is too sharp for any
method that only runs the simulator. At the true rates the log-likelihood of one run varies
with the simulator's noise with a standard deviation of about 40 (the random start of the
outbreak shifts every daily count), so a pseudo-marginal estimate would need more runs than
exist, importance sampling from the prior has an effective sample size of about 2 in 20,000
traces, and single-site MH cannot move the noise (a day's 200 uniforms are one random
choice: RMH chains freeze it and settle in different places along the ridge; keeping most
of the noise between steps, ``refresh=`` below 1, does not help either, because the outbreak
reacts to a few flipped infections). With the kernel the standard deviation is about 8 for
one run and 4 for the average of two, enough for the chains to move.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from rotalumis.core import Normal, Uniform
from rotalumis.intercept import InterceptedModel

POPULATION = 200
CONTACTS = 6
WEEKS = 4
DAYS = 7 * WEEKS
INITIAL_INFECTED = 4
KERNEL = 10.0  # cases per week
TRUTH = {"beta": 0.08, "gamma": 0.15}


# -- the simulator: plain numpy -----------------------------------------------------------------
def simulate_epidemic(beta, gamma, seed=None, days=DAYS):
    """Daily reported new cases of an agent-based SIR epidemic."""
    rng = np.random.default_rng(seed)
    state = np.zeros(POPULATION, dtype=int)  # 0 susceptible, 1 infected, 2 recovered
    state[rng.choice(POPULATION, size=INITIAL_INFECTED, replace=False)] = 1
    new_cases = []
    for _ in range(days):
        infected_fraction = np.mean(state == 1)
        met_infected = rng.binomial(CONTACTS, infected_fraction, size=POPULATION)
        p_infection = 1.0 - (1.0 - beta) ** met_infected
        infected_today = (state == 0) & (rng.random(POPULATION) < p_infection)
        recovered_today = (state == 1) & (rng.random(POPULATION) < gamma)
        state[infected_today] = 1
        state[recovered_today] = 2
        new_cases.append(int(infected_today.sum()))
    return report(rng, np.array(new_cases))


def report(rng, new_cases):
    """Reported cases: each new case with probability 0.8, plus false positives."""
    return rng.poisson(0.8 * new_cases + 0.3)


def weekly_totals(daily):
    """Reported cases per week."""
    return np.asarray(daily, dtype=float).reshape(WEEKS, 7).sum(axis=1)


# -- the model ---------------------------------------------------------------------------------
model = InterceptedModel(
    simulate_epidemic,
    priors={"beta": Uniform(0.0, 0.3), "gamma": Uniform(0.0, 0.5)},
    observe={"weekly": lambda cases: Normal(torch.from_numpy(weekly_totals(cases)), KERNEL)},
    result=lambda cases: int(np.sum(cases)),
    name="SIREpidemic",
)


def observed_cases(seed=3):
    """Reported daily cases of a plain (not intercepted) run at the true rates."""
    return simulate_epidemic(TRUTH["beta"], TRUTH["gamma"], seed=seed).tolist()


def infer(
    cases,
    num_traces,
    engine="pmmh",
    seed=1,
    chains=1,
    burn_in=None,
    particles=2,
    scale=0.6,
    progress=False,
    workers=0,
):
    """Posterior of ``beta`` and ``gamma`` given the daily reported cases (as weekly totals).

    ``engine="pmmh"``: ``chains`` pseudo-marginal chains of ``num_traces`` samples each,
    averaging ``particles`` simulator runs per step. ``engine="is"``: importance sampling
    from the prior (consistent, but its effective sample size is a small fraction).
    """
    observe = {"weekly": weekly_totals(cases).tolist()}
    if engine == "is":
        return model.posterior(
            num_traces, engine="is", observe=observe, seed=seed, progress=progress, workers=workers
        )
    burn = num_traces // 8 if burn_in is None else burn_in
    return model.posterior(
        num_traces, engine="pmmh", params=["beta", "gamma"], observe=observe, seed=seed,
        burn_in=burn, num_particles=particles, scale=scale, num_chains=chains,
        progress=progress, workers=workers,
    )  # fmt: skip


def _weighted(posterior):
    beta = np.asarray(posterior.get("beta").to_numpy(), dtype=float)
    gamma = np.asarray(posterior.get("gamma").to_numpy(), dtype=float)
    w = np.asarray(posterior.get("beta").weights, dtype=float)
    return beta, gamma, w / w.sum()


def plot(out, cases, posterior):
    """Write sir_cases.png (data, posterior predictive) and sir_posterior.png.

    Importance-sampling posteriors are drawn as weighted histograms; MCMC chains
    (``posterior.chains``) separately, one colour per chain.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    beta, gamma, w = _weighted(posterior)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i in rng.choice(len(beta), size=40, p=w):
        sim = simulate_epidemic(beta[i], gamma[i], seed=int(rng.integers(1 << 31)))
        ax.plot(sim, color="tab:blue", alpha=0.15)
    ax.plot(cases, "ko-", ms=3, label="observed")
    ax.set_xlabel("day")
    ax.set_ylabel("reported new cases")
    ax.set_title("observed cases and posterior predictive simulations")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "sir_cases.png", dpi=110)
    plt.close(fig)
    lengths = posterior.chains or (len(beta),)
    ends = np.cumsum((0, *lengths))
    groups = [np.arange(a, b) for a, b in itertools.pairwise(ends)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for k, idx in enumerate(groups):
        label = f"chain {k}" if posterior.chains else "importance sampling"
        axes[0].hist(beta[idx], bins=30, weights=w[idx], alpha=0.5, label=label)
        axes[1].hist(gamma[idx], bins=30, weights=w[idx], alpha=0.5)
        size = 2 if posterior.chains else 400 * w[idx] / w.max()
        axes[2].scatter(beta[idx], gamma[idx], s=size, alpha=0.4)
    for ax, key in zip(axes[:2], ["beta", "gamma"], strict=True):
        ax.axvline(TRUTH[key], color="k", ls="--")
        ax.set_title(f"posterior {key} (truth dashed)")
    axes[2].plot(TRUTH["beta"], TRUTH["gamma"], "k*", ms=12)
    axes[2].set_xlabel("beta")
    axes[2].set_ylabel("gamma")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{len(beta)} samples, ESS {posterior.ess:.0f}")
    fig.tight_layout()
    fig.savefig(out / "sir_posterior.png", dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/sir"))
    parser.add_argument("--engine", choices=["pmmh", "is"], default="pmmh")
    parser.add_argument("--num-traces", type=int, default=4000)
    parser.add_argument("--chains", type=int, default=4, help="PMMH only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = observed_cases()
    (args.out / "cases.json").write_text(json.dumps(cases))
    print(f"truth: {TRUTH}; observed cases: {cases}; weekly {weekly_totals(cases).tolist()}")
    posterior = infer(
        cases, args.num_traces, args.engine, seed=args.seed, chains=args.chains, progress=None,
        workers=args.workers,
    )  # fmt: skip
    beta, gamma, w = _weighted(posterior)
    for key, v in (("beta", beta), ("gamma", gamma)):
        mean = float(w @ v)
        sd = float(np.sqrt(w @ (v - mean) ** 2))
        ess = posterior.get(key).ess
        print(f"posterior {key}: mean {mean:.4f}, sd {sd:.4f}, ESS {ess:.0f} (truth {TRUTH[key]})")
    if posterior.chains:
        from rotalumis.diagnostics import convergence_table

        table = convergence_table(posterior, ["beta", "gamma"])
        print("R-hat: " + ", ".join(f"{k} {row['rhat']:.3f}" for k, row in table.items()))
        rates = [round(c.acceptance_rate, 2) for c in posterior.info.chains]
        print(f"acceptance rates: {rates}")
    print(f"{len(beta)} samples, ESS {posterior.ess:.1f}")
    plot(args.out, cases, posterior)
    print(f"plots written to {args.out}/sir_cases.png and {args.out}/sir_posterior.png")


if __name__ == "__main__":
    main()
