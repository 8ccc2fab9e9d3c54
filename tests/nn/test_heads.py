"""Proposal heads: normalised densities, and the same density in training and at inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rotalumis.core import (
    RNG,
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    Poisson,
    TruncatedNormal,
    Uniform,
    Weibull,
)
from rotalumis.data import flat_params
from rotalumis.nn import ProposalHead, SiteSpec
from rotalumis.nn._math import log_ndtr_diff
from rotalumis.nn.heads import head_kind

torch.set_num_threads(1)
HIDDEN = 16

CONTINUOUS = {
    "Normal": Normal(2.0, 3.0),
    "Uniform": Uniform(-1.0, 4.0),
    "Beta": Beta(2.0, 5.0),
    "TruncatedNormal": TruncatedNormal(1.0, 2.0, 0.0, math.inf),
    "LogNormal": LogNormal(0.5, 0.7),
    "Exponential": Exponential(2.0),
    "Gamma": Gamma(3.0, 2.0),
    "Weibull": Weibull(1.5, 2.0),
}
DISCRETE = {
    "Categorical": Categorical([0.2, 0.5, 0.3]),
    "Bernoulli": Bernoulli(0.3),
    "Poisson": Poisson(4.0),
    "Binomial": Binomial(12, 0.4),
}


def make_head(prior, seed: int = 0) -> tuple[ProposalHead, torch.Tensor, torch.Tensor]:
    """A randomly initialised head for ``prior``, a random LSTM output and the prior params."""
    torch.manual_seed(seed)
    params = flat_params(prior)
    kind, cats = head_kind(prior.name, 1, len(params))
    if kind == "count":
        cats = 13 if prior.name == "Binomial" else 30
    spec = SiteSpec("site", prior.name, kind, 1, (), len(params), cats)
    head = ProposalHead(spec, HIDDEN, components=4, bounded_inputs=HIDDEN // 2).double()
    for p in head.parameters():  # larger weights than at initialisation: a "trained" shape
        p.data.normal_(0.0, 0.25)
    h = torch.randn(1, HIDDEN, dtype=torch.float64)
    return head, h, torch.tensor([params], dtype=torch.float64)


def head_log_prob(head, h, params, prior, xs: np.ndarray) -> np.ndarray:
    n = len(xs)
    values = torch.tensor(xs, dtype=torch.float64).reshape(n, 1)
    log_prior = torch.tensor([float(prior.log_prob(float(x))) for x in xs], dtype=torch.float64)
    with torch.no_grad():
        lp = head.log_prob(h.expand(n, -1), values, params.expand(n, -1), log_prior)
    return lp.numpy()


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_heads_integrate_to_one(name: str) -> None:
    prior = CONTINUOUS[name]
    head, h, params = make_head(prior)
    if head.kind == "pos":  # integrate over u = log x: q(e^u) e^u du
        u = np.linspace(-25.0, 15.0, 200_001)
        lp = head_log_prob(head, h, params, prior, np.exp(u)) + u
        grid = u
    else:
        lo = {"Uniform": -1.0, "Beta": 0.0, "TruncatedNormal": 0.0}.get(name, -80.0)
        hi = {"Uniform": 4.0, "Beta": 1.0}.get(name, 80.0)
        grid = np.linspace(lo, hi, 200_001)
        lp = head_log_prob(head, h, params, prior, grid)
    total = np.trapezoid(np.exp(lp), grid)
    assert total == pytest.approx(1.0, abs=2e-3), f"{name}: integral {total}"


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_discrete_heads_sum_to_one(name: str) -> None:
    prior = DISCRETE[name]
    head, h, params = make_head(prior)
    support = {"Categorical": 3, "Bernoulli": 2, "Poisson": 200, "Binomial": 13}[name]
    lp = head_log_prob(head, h, params, prior, np.arange(support, dtype=float))
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("name", sorted({**CONTINUOUS, **DISCRETE}))
def test_inference_distribution_matches_training_density(name: str) -> None:
    prior = {**CONTINUOUS, **DISCRETE}[name]
    head, h, params = make_head(prior, seed=1)
    with torch.no_grad():
        q = head.proposal(h, params, prior)
    rng = RNG(3)
    xs = np.array([q.sample(rng) for _ in range(50)], dtype=float)
    assert all(prior.in_support(x if not prior.is_discrete else int(x)) for x in xs)
    train_lp = head_log_prob(head, h, params, prior, xs)
    infer_lp = np.array([float(q.log_prob(int(x) if prior.is_discrete else float(x))) for x in xs])
    assert np.allclose(train_lp, infer_lp, rtol=1e-6, atol=1e-6)


def test_samples_follow_the_head_density() -> None:
    prior = TruncatedNormal(0.0, 1.0, -1.0, 2.0)
    head, h, params = make_head(prior, seed=2)
    with torch.no_grad():
        q = head.proposal(h, params, prior)
    rng = RNG(0)
    xs = np.array([q.sample(rng) for _ in range(20_000)])
    grid = np.linspace(-1.0, 2.0, 30_001)
    dens = np.exp(head_log_prob(head, h, params, prior, grid))
    mean = np.trapezoid(grid * dens, grid)
    sd = math.sqrt(np.trapezoid((grid - mean) ** 2 * dens, grid))
    assert abs(xs.mean() - mean) < 5 * sd / math.sqrt(len(xs))  # 5 Monte Carlo std errors


def test_tensor_valued_site() -> None:
    prior = Normal(torch.zeros(2, 3), torch.ones(2, 3))
    params = flat_params(prior, [2, 3])
    spec = SiteSpec("site", "Normal", "real", 6, (2, 3), len(params))
    head = ProposalHead(spec, HIDDEN, components=3, bounded_inputs=HIDDEN // 2)
    h = torch.randn(1, HIDDEN)
    p = torch.tensor([params])
    with torch.no_grad():
        q = head.proposal(h, p, prior)
        x = q.sample(RNG(0))
        assert x.shape == (2, 3)
        lp = head.log_prob(h, x.reshape(1, 6).float(), p, torch.zeros(1))
    assert float(lp) == pytest.approx(float(q.log_prob_sum(x)), rel=1e-4)


def test_log_ndtr_diff_is_stable_in_the_tails() -> None:
    a = torch.tensor([-1.0, 30.0, -40.0, 5.0], dtype=torch.float64)
    b = torch.tensor([1.0, 31.0, -39.0, math.inf], dtype=torch.float64)
    got = log_ndtr_diff(a, b)
    from scipy.stats import norm

    want = [
        math.log(norm.cdf(1) - norm.cdf(-1)),
        norm.logsf(30.0),
        norm.logcdf(-39.0),
        norm.logsf(5),
    ]
    assert torch.isfinite(got).all()
    assert np.allclose(got.numpy(), want, rtol=1e-3)
