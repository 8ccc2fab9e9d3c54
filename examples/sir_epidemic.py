"""An agent-based SIR epidemic written with numpy, run unmodified; infer its rates from cases.

Each of 200 agents is susceptible, infected or recovered. Every day each agent meets 6 others
chosen at random from the population (so the number of infected people it meets is
binomial), gets infected by each infected contact with probability ``beta``, and each
infected agent recovers with probability ``gamma``; the health authority reports every new
case with probability 0.8 plus a few false positives (Poisson noise). Under
:class:`~rotalumis.intercept.InterceptedModel` the simulator's own numpy draws become random
choices, ``beta`` and ``gamma`` get uniform priors, and its reporting draw is declared the
observation ``cases``, so conditioning on observed daily counts uses the simulator's own reporting
noise as the likelihood.

Full run, four RMH chains (about ten minutes on two cores; writes cases.json,
sir_cases.png and sir_posterior.png)::

    python examples/sir_epidemic.py --out results/sir --engine rmh --num-traces 4000 --chains 4

or importance sampling from the prior (``--engine is --num-traces 20000``). From the
command line, on counts saved by the full run::

    rotalumis run examples/sir_epidemic.py:model -e rmh -n 4000 --burn-in 800 --chains 4 \\
        --observe cases=@results/sir/cases.json --seed 1 --out results/sir/cli

Neither engine handles this simulator well, and the plots show it honestly. Thirty daily
counts make the likelihood so sharp that importance sampling from the prior has an effective
sample size of about 2 for 20,000 traces. Single-site RMH moves one random choice at a time,
and each day's noise vector (200 uniforms) is one random choice that random-walk proposals
almost never move, so each chain explores ``beta`` and ``gamma`` given nearly fixed noise
and different chains settle in different places along the ridge of similar epidemics (the
plot shows every chain separately). Agent-based models like this one call for inference
compilation or sequential Monte Carlo; the point here is that the simulator runs unmodified.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rotalumis.core import Uniform
from rotalumis.intercept import InterceptedModel

POPULATION = 200
CONTACTS = 6
DAYS = 30
INITIAL_INFECTED = 4
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


# -- the model ---------------------------------------------------------------------------------
model = InterceptedModel(
    simulate_epidemic,
    priors={"beta": Uniform(0.0, 0.3), "gamma": Uniform(0.0, 0.5)},
    observed={"cases": ".report:"},
    result=lambda cases: int(np.sum(cases)),
    name="SIREpidemic",
)


def observed_cases(seed=3):
    """Reported daily cases of a plain (not intercepted) run at the true rates."""
    return simulate_epidemic(TRUTH["beta"], TRUTH["gamma"], seed=seed).tolist()


def infer(
    cases, num_traces, engine="is", seed=1, chains=1, burn_in=None, scale=0.1, progress=False
):
    """Posterior of ``beta`` and ``gamma`` given the daily reported cases.

    ``engine="is"``: importance sampling from the prior (consistent; its effective sample
    size is a small fraction of ``num_traces``). ``engine="rmh"``: ``chains`` RMH chains of
    ``num_traces`` samples each (see the caveat in the module docstring).
    """
    if engine == "is":
        return model.posterior(
            num_traces, engine="is", observe={"cases": cases}, seed=seed, progress=progress
        )
    burn = num_traces // 5 if burn_in is None else burn_in
    return model.posterior(
        num_traces, engine="rmh", observe={"cases": cases}, seed=seed, burn_in=burn,
        scale=scale, num_chains=chains, progress=progress,
    )  # fmt: skip


def _weighted(posterior):
    beta = np.asarray(posterior.get("beta").to_numpy(), dtype=float)
    gamma = np.asarray(posterior.get("gamma").to_numpy(), dtype=float)
    w = np.asarray(posterior.get("beta").weights, dtype=float)
    return beta, gamma, w / w.sum()


def plot(out, cases, posterior, chains=1):
    """Write sir_cases.png (data, posterior predictive) and sir_posterior.png.

    Weighted (importance-sampling) posteriors are drawn as weighted histograms; equally
    weighted MCMC samples are split into their ``chains``, drawn separately.
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
    weighted = not np.allclose(w, w[0])
    groups = [np.arange(len(beta))] if weighted else np.array_split(np.arange(len(beta)), chains)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for k, idx in enumerate(groups):
        label = "importance sampling" if weighted else f"chain {k}"
        axes[0].hist(beta[idx], bins=30, weights=w[idx], alpha=0.6, label=label)
        axes[1].hist(gamma[idx], bins=30, weights=w[idx], alpha=0.6)
        size = 400 * w[idx] / w.max() if weighted else 2
        axes[2].scatter(beta[idx], gamma[idx], s=size, alpha=0.5)
    for ax, key in zip(axes[:2], ["beta", "gamma"], strict=True):
        ax.axvline(TRUTH[key], color="k", ls="--")
        ax.set_title(f"posterior {key} (truth dashed)")
    axes[2].plot(TRUTH["beta"], TRUTH["gamma"], "k*", ms=12)
    axes[2].set_xlabel("beta")
    axes[2].set_ylabel("gamma")
    axes[0].legend(fontsize=7)
    ess = f", ESS {posterior.ess:.0f}" if weighted else ""
    fig.suptitle(f"{len(beta)} samples{ess}")
    fig.tight_layout()
    fig.savefig(out / "sir_posterior.png", dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/sir"))
    parser.add_argument("--engine", choices=["is", "rmh"], default="rmh")
    parser.add_argument("--num-traces", type=int, default=4000)
    parser.add_argument("--chains", type=int, default=4, help="RMH only")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = observed_cases()
    (args.out / "cases.json").write_text(json.dumps(cases))
    print(f"truth: {TRUTH}; observed cases: {cases}")
    posterior = infer(
        cases, args.num_traces, args.engine, seed=args.seed, chains=args.chains, progress=None
    )
    beta, gamma, w = _weighted(posterior)
    for key, v in (("beta", beta), ("gamma", gamma)):
        mean = float(w @ v)
        sd = float(np.sqrt(w @ (v - mean) ** 2))
        print(f"posterior {key}: mean {mean:.4f}, sd {sd:.4f} (truth {TRUTH[key]})")
    print(f"{len(beta)} samples, ESS {posterior.ess:.1f}")
    plot(args.out, cases, posterior, args.chains if args.engine == "rmh" else 1)
    print(f"plots written to {args.out}/sir_cases.png and {args.out}/sir_posterior.png")


if __name__ == "__main__":
    main()
