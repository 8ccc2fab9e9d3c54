"""The sbibm tasks: likelihoods are normalised densities, simulators draw from them, and the
models are sbibm's (their exact posteriors against the reference samples sbibm ships)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.core import RNG
from rotalumis.models import GaussianLinearTask, GaussianMixtureTask, SLCPTask, TwoMoonsTask
from rotalumis.models.sbi_tasks import (
    GaussianMixtureLikelihood,
    SLCPLikelihood,
    TwoMoonsLikelihood,
)

torch.set_num_threads(1)
Z = 5.0  # standard errors of a Monte Carlo mean (see tests/infer/mc.py)


def grid_log_density(dist, lo: np.ndarray, hi: np.ndarray, points: int) -> tuple[np.ndarray, ...]:
    """Log-density of a 2-D distribution on a midpoint grid; returns (x, y, log p, cell)."""
    xs = [np.linspace(a, b, points + 1) for a, b in zip(lo, hi, strict=True)]
    steps = [x[1] - x[0] for x in xs]
    mids = [x[:-1] + s / 2 for x, s in zip(xs, steps, strict=True)]
    gx, gy = np.meshgrid(*mids, indexing="ij")
    lp = np.array([float(dist.log_prob(torch.tensor([a, b]))) for a, b in
                   zip(gx.ravel(), gy.ravel(), strict=True)])  # fmt: skip
    return gx.ravel(), gy.ravel(), lp, steps[0] * steps[1]


def test_two_moons_likelihood_is_normalised_and_is_what_the_simulator_draws() -> None:
    theta = torch.tensor([0.3, -0.6], dtype=torch.float64)
    dist = TwoMoonsLikelihood(theta)
    rng = RNG(3)
    draws = torch.stack([dist.sample(rng) for _ in range(4000)]).numpy()
    lo, hi = draws.min(0) - 0.05, draws.max(0) + 0.05
    gx, gy, lp, cell = grid_log_density(dist, lo, hi, 200)
    p = np.exp(lp) * cell
    # the density spikes nowhere (r ~ 0.1 +- 0.01), so a 200 x 200 grid is accurate to 1e-2
    assert p.sum() == pytest.approx(1.0, abs=1e-2)
    for f, name in ((gx, "x0"), (gy, "x1"), (gx * gy, "x0 x1")):
        sample = {"x0": draws[:, 0], "x1": draws[:, 1], "x0 x1": draws[:, 0] * draws[:, 1]}[name]
        exact = float((f * p).sum() / p.sum())
        se = sample.std() / math.sqrt(len(sample))
        assert abs(sample.mean() - exact) < Z * se + 1e-3, name
    # left of the moon (cos a < 0) is impossible
    centre = dist.sample(rng) - torch.tensor([0.5, 0.0], dtype=torch.float64)
    assert dist.log_prob(centre) == -math.inf


def test_gaussian_mixture_likelihood_is_normalised_and_is_what_the_simulator_draws() -> None:
    dist = GaussianMixtureLikelihood(torch.tensor([1.0, -2.0]))
    _, _, lp, cell = grid_log_density(dist, np.array([-7.0, -10.0]), np.array([9.0, 6.0]), 200)
    assert np.exp(lp).sum() * cell == pytest.approx(1.0, abs=1e-3)
    rng = RNG(5)
    draws = torch.stack([dist.sample(rng) for _ in range(4000)]).numpy() - np.array([1.0, -2.0])
    # E[|d|^2] = 0.5 * 2 + 0.5 * 0.02; its sample standard error from the draws
    sq = (draws**2).sum(1)
    assert abs(sq.mean() - 1.01) < Z * sq.std() / math.sqrt(len(sq))
    # one mixture index per draw (both coordinates narrow or both wide), as in sbibm
    # P(both |d_i| < 0.5) = 0.5 * 1 + 0.5 * 0.3829^2 = 0.573 (0.478 for independent indices)
    narrow = (np.abs(draws).max(1) < 0.5).astype(float)
    assert abs(narrow.mean() - 0.5733) < Z * math.sqrt(0.5733 * 0.4267 / len(narrow))


def test_slcp_likelihood_is_four_correlated_normal_draws() -> None:
    torch.manual_seed(0)
    for _ in range(5):
        theta = torch.empty(5, dtype=torch.float64).uniform_(-3, 3)
        dist = SLCPLikelihood(theta)
        s1, s2, rho = theta[2] ** 2, theta[3] ** 2, torch.tanh(theta[4])
        cov = torch.tensor([[s1**2 + 1e-6, rho * s1 * s2], [rho * s1 * s2, s2**2 + 1e-6]])
        mvn = torch.distributions.MultivariateNormal(theta[:2], cov.double())
        x = dist.sample(RNG(1))
        assert x.shape == (8,)
        expected = mvn.log_prob(x.reshape(4, 2)).sum()
        assert float(dist.log_prob(x)) == pytest.approx(float(expected), rel=1e-9, abs=1e-9)
    theta = torch.tensor([1.0, -1.0, 1.2, 0.8, 0.7], dtype=torch.float64)
    dist, rng = SLCPLikelihood(theta), RNG(2)
    draws = torch.stack([dist.sample(rng) for _ in range(3000)]).reshape(-1, 2).numpy()
    corr = np.corrcoef(draws.T)[0, 1]
    # the sample correlation of 12,000 pairs has standard error (1 - rho^2) / sqrt(n)
    rho = math.tanh(0.7)
    assert abs(corr - rho) < Z * (1 - rho**2) / math.sqrt(len(draws))


@pytest.mark.parametrize("task", [TwoMoonsTask, GaussianLinearTask, SLCPTask, GaussianMixtureTask])
def test_tasks_are_models_with_one_vector_parameter_and_one_observation(task) -> None:
    model = task()
    trace = model.get_trace(seed=1)
    (theta,) = trace.controlled
    assert theta.name == "theta" and theta.value.shape == (model.parameter_dim,)
    (x,) = trace.observations
    assert x.name == "x" and x.value.shape == (model.data_dim,)
    assert math.isfinite(float(trace.log_prob))


# -- against sbibm's reference posteriors (the wheel's data files; downloaded once) ---------
@pytest.fixture(scope="module")
def sbibm():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import sbibm_reference

    return sbibm_reference


def exact_grid_posterior(
    model, x_o: np.ndarray, lo: np.ndarray, hi: np.ndarray, points: int, n: int
) -> np.ndarray:
    """Samples of prior x likelihood on a fine grid over a box holding the posterior (2-D)."""
    lik = model.likelihood
    steps = (hi - lo) / points
    mids = [lo[i] + steps[i] * (np.arange(points) + 0.5) for i in (0, 1)]
    gx, gy = np.meshgrid(*mids, indexing="ij")
    thetas = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    x = torch.as_tensor(x_o, dtype=torch.float64)
    lp = np.array([float(lik(t).log_prob(x)) for t in thetas])
    p = np.exp(lp - lp.max())
    rng = np.random.default_rng(0)
    cells = rng.choice(len(p), size=n, p=p / p.sum())
    return thetas.numpy()[cells] + rng.uniform(-steps / 2, steps / 2, (n, 2))


@pytest.mark.slow
def test_gaussian_linear_exact_posterior_is_sbibm_reference(sbibm) -> None:
    model = GaussianLinearTask()
    for k in (1, 2):
        ref = sbibm.reference_samples("gaussian_linear", k)
        mean, sd = model.exact_posterior(sbibm.observation("gaussian_linear", k))
        se = ref.std(0) / math.sqrt(len(ref))
        assert np.all(np.abs(ref.mean(0) - mean.numpy()) < Z * se)
        # the sample standard deviation of 10,000 normal draws has relative error 1/sqrt(2n)
        assert np.all(np.abs(ref.std(0) / sd - 1) < Z / math.sqrt(2 * len(ref)))


@pytest.mark.slow
@pytest.mark.parametrize(("task", "k"), [(TwoMoonsTask, 1), (GaussianMixtureTask, 2)])
def test_two_dimensional_tasks_have_sbibm_reference_posteriors(sbibm, task, k) -> None:
    """Our likelihood times the prior, sampled on a grid, against sbibm's reference samples:
    a classifier cannot tell them apart (C2ST within 0.5 +- 0.04 on 2 x 2000 samples)."""
    from rotalumis.diagnostics import c2st

    model = task()
    ref = sbibm.reference_samples(model.task_name, k)
    x_o = sbibm.observation(model.task_name, k)
    if task is TwoMoonsTask:  # the whole prior box
        lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    else:  # five wide-component deviations around x_o, inside the box
        lo, hi = np.maximum(x_o - 5.0, -10.0), np.minimum(x_o + 5.0, 10.0)
    # cells well below the posterior's width (0.01 across the moon, 0.1 for the mixture)
    points = 400 if task is TwoMoonsTask else 250
    ours = exact_grid_posterior(model, x_o, lo, hi, points, 2000)
    assert abs(c2st(ref[:2000], ours) - 0.5) < 0.04
