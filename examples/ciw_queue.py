"""A queueing network from the PyPI library ciw, run unmodified; infer its arrival rate.

ciw (https://pypi.org/project/ciw/) is a discrete-event simulation library for queueing
networks; it draws inter-arrival and service times through the standard library's
``random`` (``from random import expovariate``) and numpy. Nothing of it is changed here: the
network is the one of ciw's own first tutorial (a bank with three clerks, customers arriving
at rate 0.2 per minute, services taking 10 minutes on average, one day of 1440 minutes).
Under :class:`~rotalumis.intercept.InterceptedModel` every draw ciw makes becomes a random
choice whose address runs into ciw's frames (e.g.
``.../ciw.simulation.Simulation.simulate_until_max_time:..../ciw.dists.distributions.Exponential.sample:331/random.expovariate``).
The arrival rate gets a uniform prior; the observed data are the number of customers
served in the day and their mean waiting time, with small Gaussian observation kernels.

The engine is pseudo-marginal MH over the arrival rate (``engine="pmmh"``): each of the
~750 other draws of a simulated day (every inter-arrival and service time) is nuisance,
redrawn in every run, and each step averages the likelihoods of two runs. Single-site MH
would change the arrival rate in one move of ~750 and barely move it. Full run, four chains
of 2,000 samples (3.4 CPU-minutes: about two minutes on two free cores; writes
ciw_posterior.png)::

    python examples/ciw_queue.py --out results/ciw

or importance sampling from the prior (``--engine is --num-traces 4000``; it agrees). From
the command line::

    rotalumis run examples/ciw_queue.py:model -e pmmh -p arrival_rate --particles 2 \\
        --scale 0.3 -n 2000 --burn-in 200 --chains 4 --workers 2 --observe served=283 \\
        --observe mean_wait=5.3 --seed 1 --out results/ciw/cli

The chains agree (R-hat 1.008, acceptance 38%) on an arrival rate of 0.1992 +- 0.0137 (truth
0.2) with an ESS of 612 in 8,000 samples (``examples/images/ciw_posterior.png``).

Needs ``pip install ciw`` (the ``examples`` extra of rotalumis).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import ciw
import numpy as np

from rotalumis.core import Normal, Uniform
from rotalumis.intercept import InterceptedModel

TRUE_ARRIVAL_RATE = 0.2  # ciw tutorial I
SERVICE_RATE = 0.1
SERVERS = 3
MINUTES = 1440


def simulate_bank(arrival_rate, minutes=MINUTES):
    """ciw's tutorial bank; returns (customers served, their mean waiting time in minutes)."""
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=SERVICE_RATE)],
        number_of_servers=[SERVERS],
    )
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(minutes)
    records = simulation.get_all_records()
    waits = [r.waiting_time for r in records]
    return len(records), float(np.mean(waits)) if waits else 0.0


model = InterceptedModel(
    simulate_bank,
    priors={"arrival_rate": Uniform(0.1, 0.3)},
    observe={
        "served": lambda out: Normal(float(out[0]), 10.0),
        "mean_wait": lambda out: Normal(out[1], 2.0),
    },
    result=lambda out: out[0],
    name="CiwBank",
)


def observed_day(seed=2):
    """One plain (not intercepted) ciw run at the tutorial's arrival rate."""
    ciw.seed(seed)
    served, mean_wait = simulate_bank(TRUE_ARRIVAL_RATE)
    return {"served": served, "mean_wait": mean_wait}


def infer(
    observed,
    num_traces,
    engine="pmmh",
    seed=1,
    chains=1,
    burn_in=None,
    particles=2,
    scale=0.3,
    progress=False,
    workers=0,
):
    """Posterior of the arrival rate: ``chains`` pseudo-marginal chains of ``num_traces``
    samples (``engine="pmmh"``, ``particles`` ciw runs per step), or importance sampling
    from the prior (``engine="is"``)."""
    if engine == "is":
        return model.posterior(
            num_traces, engine="is", observe=observed, seed=seed, progress=progress,
            workers=workers,
        )  # fmt: skip
    burn = num_traces // 10 if burn_in is None else burn_in
    return model.posterior(
        num_traces, engine="pmmh", params=["arrival_rate"], observe=observed, seed=seed,
        burn_in=burn, num_particles=particles, scale=scale, num_chains=chains,
        progress=progress, workers=workers,
    )  # fmt: skip


def plot(out, observed, posterior):
    """Write ciw_posterior.png: the posterior of the arrival rate (MCMC chains one colour
    each, importance sampling as a weighted histogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate = posterior.get("arrival_rate")
    values = np.asarray(rate.to_numpy(), dtype=float)
    weights = np.asarray(rate.weights, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lengths = posterior.chains or (len(values),)
    ends = np.cumsum((0, *lengths))
    bins = np.linspace(values.min(), values.max(), 41)
    for k, (a, b) in enumerate(itertools.pairwise(ends)):
        label = f"chain {k}" if posterior.chains else "importance sampling"
        ax.hist(values[a:b], bins=bins, weights=weights[a:b], density=True, alpha=0.5, label=label)
    ax.axvline(TRUE_ARRIVAL_RATE, color="k", ls="--", label="truth (ciw tutorial)")
    ax.set_xlabel("arrival rate (customers per minute)")
    ax.set_title(
        f"served {observed['served']}, mean wait {observed['mean_wait']:.2f} min; "
        f"ESS {posterior.ess:.0f}"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ciw_posterior.png", dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/ciw"))
    parser.add_argument("--engine", choices=["pmmh", "is"], default="pmmh")
    parser.add_argument("--num-traces", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=4, help="PMMH only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    observed = observed_day()
    print(f"observed (arrival rate {TRUE_ARRIVAL_RATE}): {observed}")
    posterior = infer(
        observed, args.num_traces, args.engine, seed=args.seed, chains=args.chains,
        progress=None, workers=args.workers,
    )  # fmt: skip
    rate = posterior.get("arrival_rate")
    values, w = np.asarray(rate.to_numpy(), dtype=float), np.asarray(rate.weights, dtype=float)
    mean = float(np.sum(w * values) / w.sum())
    sd = float(np.sqrt(np.sum(w * (values - mean) ** 2) / w.sum()))
    print(f"posterior arrival rate: mean {mean:.4f}, sd {sd:.4f}, ESS {rate.ess:.0f}")
    if posterior.chains:
        from rotalumis.diagnostics import convergence_table

        rhat = convergence_table(posterior, ["arrival_rate"])["arrival_rate"]["rhat"]
        rates = [round(c.acceptance_rate, 2) for c in posterior.info.chains]
        print(f"R-hat {rhat:.3f}; acceptance rates {rates}")
    plot(args.out, observed, posterior)
    print(f"plot written to {args.out}/ciw_posterior.png")


if __name__ == "__main__":
    main()
