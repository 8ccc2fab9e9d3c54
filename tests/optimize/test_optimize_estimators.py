"""The gradient estimators are unbiased on models with known gradients, and baselines help.

Each test draws ``M`` independent batch estimates (seeded) and checks that their mean is
within 5 Monte Carlo standard errors (``se = std / sqrt(M)``) of the exact gradient, per
component: a false failure has probability ~6e-7 per component. Estimates that use a
moving-average baseline depend on earlier batches, but each is unbiased given the past, so
their errors are uncorrelated and the same standard error applies.
"""

from __future__ import annotations

import math

import pytest
import torch

from rotalumis.core import RNG, Bernoulli, Categorical, Normal, Poisson, model, sample
from rotalumis.optimize import GradientEstimator, OptimizeConfig, pipeline

torch.set_num_threads(1)

NUM_ESTIMATES = 300
BATCH = 8


def estimates(sim, params, loss, seed, num=NUM_ESTIMATES, **config):
    """``num`` batch gradient estimates, stacked as ``(num, total_param_size)``."""
    est = GradientEstimator(sim, loss, OptimizeConfig(batch_size=BATCH, **config))
    rng = RNG(seed)
    leaves = {
        n: torch.as_tensor(v, dtype=torch.float32).requires_grad_(True) for n, v in params.items()
    }
    rows = []
    for _ in range(num):
        g = est.estimate(leaves, rng).gradients
        rows.append(torch.cat([g[n].reshape(-1) for n in leaves]))
    return torch.stack(rows).double()


def assert_unbiased(samples, exact, max_relative_se=0.1):
    exact = torch.as_tensor(exact, dtype=torch.float64)
    mean = samples.mean(0)
    se = samples.std(0) / math.sqrt(samples.shape[0])
    # the test has power: the standard error is small compared to the gradient
    assert bool((se < max_relative_se * exact.abs().clamp_min(1.0)).all()), se
    assert bool(((mean - exact).abs() <= 5 * se + 1e-6).all()), (mean, exact, se)


# -- pathwise ---------------------------------------------------------------------------------
@model
def gaussian(mu, sigma):
    return sample(Normal(mu, sigma), name="x")


def test_pathwise_gradient_is_unbiased():
    # E[(x - 3)^2] = (mu - 3)^2 + sigma^2  ->  grad = (2 (mu - 3), 2 sigma) = (-4, 1)
    g = estimates(gaussian, {"mu": 1.0, "sigma": 0.5}, lambda x: (x - 3.0) ** 2, seed=1)
    assert_unbiased(g, [-4.0, 1.0])


def test_score_mode_on_continuous_choices_is_unbiased():
    # score-function gradients only: grad of (mu - 3)^2 + sigma^2 at (2.5, 0.5) is (-1, 1)
    g = estimates(
        gaussian, {"mu": 2.5, "sigma": 0.5}, lambda x: (x - 3.0) ** 2, seed=2, gradient="score"
    )
    assert_unbiased(g, [-1.0, 1.0], max_relative_se=0.15)


def test_pipeline_gradient_flows_through_both_stages():
    @model
    def first(psi):
        return sample(Normal(psi, 1.0))

    @model
    def second(x, gain):
        return sample(Normal(gain * x, 1.0))

    # y = gain * (psi + e1) + e2: d y / d psi = gain and d y / d gain = psi + e1 (mean psi)
    g = estimates(pipeline(first, second), {"psi": 0.5, "gain": 2.0}, lambda y: y, seed=3, num=200)
    assert torch.allclose(g[:, 0], torch.full_like(g[:, 0], 2.0))
    assert_unbiased(g, [2.0, 0.5], max_relative_se=0.1)


# -- score function (discrete) -----------------------------------------------------------------
@model
def poisson(rate):
    return sample(Poisson(rate), name="n")


def test_score_function_gradient_is_unbiased_poisson():
    # E[n^2] = rate + rate^2  ->  grad = 1 + 2 rate = 5
    g = estimates(poisson, {"rate": 2.0}, lambda n: n**2, seed=4)
    assert_unbiased(g, [5.0])


COSTS = torch.tensor([1.0, 4.0, -2.0])
OFFSET = 10.0  # a large constant loss: no effect on the gradient, a large one on its variance
LOGITS = [0.2, -0.4, 0.1]


@model
def choice(logits):
    return sample(Categorical(logits=logits), name="k")


def categorical_loss(k):
    return OFFSET + COSTS[k]


def categorical_gradient():
    p = torch.softmax(torch.tensor(LOGITS, dtype=torch.float64), 0)
    c = COSTS.double()
    return p * (c - (p * c).sum())  # d/dlogit_k of sum_j p_j c_j


@pytest.fixture(scope="module")
def categorical_estimates():
    return {
        baseline: estimates(choice, {"logits": LOGITS}, categorical_loss, seed=5, baseline=baseline)
        for baseline in ("none", "leave_one_out", "moving_average")
    }


@pytest.mark.parametrize("baseline", ["none", "leave_one_out", "moving_average"])
def test_score_function_gradient_is_unbiased_with_each_baseline(categorical_estimates, baseline):
    assert_unbiased(categorical_estimates[baseline], categorical_gradient(), max_relative_se=0.3)


def test_baselines_reduce_variance(categorical_estimates):
    total = {b: float(s.var(0).sum()) for b, s in categorical_estimates.items()}
    # With the loss offset of 10 the unbaselined estimator is ~50x noisier; the sample
    # variances from 300 estimates are within ~20% of the truth, so factors 5 and 3 are safe.
    assert total["leave_one_out"] < total["none"] / 5, total
    assert total["moving_average"] < total["none"] / 3, total


# -- both at once ------------------------------------------------------------------------------
@model
def mixed(mu):
    x = sample(Normal(mu, 1.0), name="x")
    fired = sample(Bernoulli(0.05 + 0.9 * torch.special.ndtr(x)), name="fired")
    return x, fired


def test_combined_estimator_is_unbiased():
    # E[3 fired + x^2] = 3 (0.05 + 0.9 Phi(mu / sqrt 2)) + mu^2 + 1
    # grad = 2.7 phi(mu / sqrt 2) / sqrt 2 + 2 mu
    mu = 0.3
    z = mu / math.sqrt(2.0)
    exact = 2.7 * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / math.sqrt(2.0) + 2 * mu
    g = estimates(mixed, {"mu": mu}, lambda r: 3.0 * r[1] + r[0] ** 2, seed=6)
    assert_unbiased(g, [exact])
