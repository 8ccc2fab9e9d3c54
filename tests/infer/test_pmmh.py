"""Parameter-focused MCMC: pseudo-marginal MH and site-selection policies (issue 11).

The reference model is a Beta-Binomial whose Bernoulli draws are nuisance: ``p ~ Beta(2, 2)``,
twelve ``b_i ~ Bernoulli(p)``, ``y ~ Normal(sum b, 0.5)``. Its marginal likelihood
``p(y | p) = sum_k Binomial(k; 12, p) N(y; k, 0.5)`` is tractable, so the exact posterior of
``p`` is a one-dimensional quadrature. Tolerances: Z = 5 batch-means standard errors (they
account for the chains' autocorrelation, see ``mc.py``); fixed seeds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from mc import Z, mcmc_stderr
from scipy import stats

from rotalumis.core import (
    RNG,
    Bernoulli,
    Beta,
    InferenceError,
    Model,
    Normal,
    Poisson,
    model,
    observe,
    sample,
)
from rotalumis.infer import (
    ParameterSites,
    PseudoMarginalKernel,
    UniformSites,
    run_chains,
)

N_DRAWS, A, B, Y, SD = 12, 2.0, 2.0, 8.3, 0.5


@model
def beta_binomial() -> float:
    p = sample(Beta(A, B), name="p")
    total = 0
    for _ in range(N_DRAWS):
        total += sample(Bernoulli(p))
    observe(Normal(float(total), SD), name="y")
    return p


@model
def beta_binomial_vector() -> float:
    """The same model with the nuisance draws as one vector-valued choice."""
    p = sample(Beta(A, B), name="p")
    draws = sample(Bernoulli(p * torch.ones(N_DRAWS, dtype=torch.float64)))
    observe(Normal(float(draws.sum()), SD), name="y")
    return p


def likelihood(p: Any) -> Any:
    """``p(y | p)``, the Bernoulli draws summed out."""
    k = np.arange(N_DRAWS + 1)[:, None]
    return (stats.binom.pmf(k, N_DRAWS, p) * stats.norm.pdf(Y, k, SD)).sum(0)


def exact_moments() -> tuple[float, float]:
    grid = np.linspace(1e-6, 1 - 1e-6, 20_001)
    w = stats.beta.pdf(grid, A, B) * likelihood(grid)
    w /= w.sum()
    mean = float(grid @ w)
    return mean, float(((grid - mean) ** 2) @ w)


def check(post: Any, what: str) -> None:
    assert post.chains is not None
    p = np.asarray(post.get("p").to_numpy(), dtype=float)
    mean, var = exact_moments()
    for values, exact, label in ((p, mean, "E[p]"), ((p - mean) ** 2, var, "Var[p]")):
        est, err = float(values.mean()), mcmc_stderr(values)
        assert abs(est - exact) < Z * err, f"{what} {label}: {est:.4f} vs {exact:.4f} ({err:.4f})"


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"num_particles": 1},
        {"num_particles": 4, "scale": 0.8},
        {"proposal": "prior", "num_particles": 2},
        {"refresh": 0.2, "num_particles": 2},
        {"refresh": 0.3, "vector": True},
    ],
    ids=["rw-1", "rw-4", "prior-2", "correlated-2", "correlated-vector-1"],
)
def test_pseudo_marginal_is_exact_on_the_beta_binomial(options: dict[str, Any]) -> None:
    options = dict(options)
    target = beta_binomial_vector if options.pop("vector", False) else beta_binomial
    post = target.posterior(
        20_000, engine="pmmh", params=["p"], observe={"y": Y}, seed=1, burn_in=500,
        progress=False, **options,
    )  # fmt: skip
    check(post, f"pmmh {options}")
    assert post.info.engine == "pmmh"
    # the kept samples carry a joint posterior draw of the nuisance too: the run picked in
    # proportion to its weight, so the result (p) and the latent agree
    np.testing.assert_array_equal(post.to_numpy(), post.get("p").to_numpy())


def test_the_estimate_averages_likelihoods_and_is_unbiased() -> None:
    """E[W(p)] = p(p) p(y | p): the mean of M likelihoods, not of their logarithms."""
    kernel = PseudoMarginalKernel(beta_binomial, {"y": Y}, params="p", num_particles=4)
    address = beta_binomial.get_trace(seed=0)["p"].address
    rng = RNG(7)
    theta = 0.6
    estimates = np.array(
        [math.exp(kernel._estimate(rng, {address: theta})[0]) for _ in range(3000)]
    )
    exact = stats.beta.pdf(theta, A, B) * likelihood(np.array([theta]))[0]
    err = estimates.std(ddof=1) / math.sqrt(len(estimates))  # independent estimates
    assert abs(estimates.mean() - exact) < Z * err, (estimates.mean(), exact, err)


@pytest.mark.parametrize("engine", ["lmh", "rmh"])
def test_site_policy_favouring_the_parameter_is_exact(engine: str) -> None:
    post = beta_binomial.posterior(
        20_000, engine=engine, params=["p"], param_probability=0.6, observe={"y": Y}, seed=2,
        burn_in=500, progress=False,
    )  # fmt: skip
    check(post, f"{engine} with ParameterSites")


def test_site_policies_pick_with_the_stated_probabilities() -> None:
    trace = beta_binomial.get_trace(seed=0)
    sites = trace.controlled
    policy = ParameterSites(["p"], probability=0.25)
    prepared = policy.prepare(sites)
    rng = RNG(0)
    picks = [policy.select(prepared, rng) for _ in range(20_000)]
    share = np.mean([s.name == "p" for s, _ in picks])
    assert abs(share - 0.25) < Z * math.sqrt(0.25 * 0.75 / len(picks))
    for site, log_p in picks[:50]:
        assert log_p == pytest.approx(policy.log_prob(prepared, site))
    assert policy.log_prob(prepared, sites[0]) == pytest.approx(math.log(0.25))
    assert policy.log_prob(prepared, sites[1]) == pytest.approx(math.log(0.75 / N_DRAWS))
    uniform = UniformSites()
    assert uniform.log_prob(sites, sites[3]) == pytest.approx(-math.log(N_DRAWS + 1))
    # a trace without other sites moves the parameter every time
    only = policy.prepare(sites[:1])
    assert policy.select(only, rng) == (sites[0], 0.0)


class Growing(Model):
    """A "parameter" pattern that matches a random number of draws: not a parameter set."""

    def forward(self) -> int:
        n = 1 + sample(Poisson(2.0), name="n")
        for _ in range(n):
            sample(Normal(0.0, 1.0), address="x")
        observe(Normal(float(n), 1.0), name="y")
        return n


def test_bad_parameter_specifications_are_named() -> None:
    kw = {"observe": {"y": Y}, "seed": 0, "progress": False}
    with pytest.raises(ValueError, match="'q' match no random choice"):
        beta_binomial.posterior(10, engine="pmmh", params=["p", "q"], **kw)
    with pytest.raises(ValueError, match="needs params"):
        beta_binomial.posterior(10, engine="pmmh", **kw)
    with pytest.raises(ValueError, match="num_particles"):
        beta_binomial.posterior(10, engine="pmmh", params="p", num_particles=0, **kw)
    with pytest.raises(ValueError, match="unknown proposal"):
        beta_binomial.posterior(10, engine="pmmh", params="p", proposal="langevin", **kw)
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        beta_binomial.posterior(10, engine="lmh", params="p", param_probability=1.0, **kw)
    with pytest.raises(ValueError, match="not both"):
        beta_binomial.posterior(10, engine="lmh", params="p", site_policy=UniformSites(), **kw)
    with pytest.raises(ValueError, match="'nope' match no random choice"):
        beta_binomial.posterior(10, engine="rmh", params=["nope"], **kw)
    with pytest.raises(InferenceError, match="same parameters in every run"):
        run_chains(PseudoMarginalKernel(Growing(), {"y": 3.0}, params="x__*"), 50, seed=1)
