"""The local generative surrogate: its gradients point the right way on known problems, and
L-GSO's steps follow them; the benchmark problems' exact objectives are right."""

from __future__ import annotations

import math

import pytest
import torch
from blackbox_helpers import first

from rotalumis.core import RNG, Normal, model, sample
from rotalumis.optimize import LGSOConfig, optimize_blackbox
from rotalumis.optimize.blackbox.problems import (
    Rosenbrock,
    SubmanifoldRosenbrock,
    ThreeHump,
    three_hump_objective,
)
from rotalumis.optimize.blackbox.surrogate import FlowSurrogate

torch.set_num_threads(1)

SLOPE = torch.tensor([1.0, -2.0, 0.5])


@model
def linear(psi):
    """y ~ N(a . psi, 0.5^2): E[y] has gradient a, E[y^2] = (a . psi)^2 + 0.25 has
    gradient 2 (a . psi) a."""
    return torch.tensor([float(sample(Normal(float(SLOPE @ psi), 0.5)))])


def fitted(centre: torch.Tensor, eps: float, n: int = 400) -> FlowSurrogate:
    gen = torch.Generator().manual_seed(0)
    psi = centre + eps * (2 * torch.rand(n, 3, generator=gen) - 1)
    rng = RNG(0)
    with linear.executions(rng) as run:
        y = torch.stack([run(p) for p in psi])
    cfg = LGSOConfig(flow="maf", transforms=1, hidden_features=(32,), train_steps=400)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        surrogate = FlowSurrogate(1, 3, cfg)
        surrogate.fit((psi - centre) / eps, y, gen)
    return surrogate


def gradient(surrogate: FlowSurrogate, centre: torch.Tensor, eps: float, objective) -> torch.Tensor:
    psi = centre.clone().requires_grad_(True)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        draws = surrogate.sample((psi - centre) / eps, 4096)
    (g,) = torch.autograd.grad(objective(draws).mean(), psi)
    return g


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize(
    ("objective", "exact"),
    [
        (lambda y: y[:, 0], lambda c: SLOPE),
        (lambda y: y[:, 0] ** 2, lambda c: 2 * float(SLOPE @ c) * SLOPE),
    ],
    ids=["mean", "square"],
)
def test_surrogate_gradient_points_the_right_way(objective, exact):
    # 400 calls in a region of half-width 1 with noise 0.5: a least-squares slope would be
    # off by 0.5 * sqrt(3 / 400) = 0.04 per coordinate (|a| = 2.3), so a fit that captures
    # how y moves with psi gives a gradient within a few degrees of the truth; a fit that
    # ignored psi would give a gradient near 0 (cosine undefined or random).
    centre = torch.tensor([1.0, -0.5, 0.4])
    surrogate = fitted(centre, eps=1.0)
    g, truth = gradient(surrogate, centre, 1.0, objective), exact(centre)
    assert cosine(g, truth) > 0.97, (g, truth)
    assert 0.75 < float(g.norm() / truth.norm()) < 1.33, (g, truth)


def test_lgso_steps_downhill_on_a_known_bowl():
    # E[y] = |psi - 1|^2 with noise 0.1; every step's answer must be closer to the optimum
    # than psi0 after a few steps, and the last one close to it
    cfg = LGSOConfig(epsilon=0.5, samples_per_step=16, lr=0.15, flow="maf", transforms=1,
                     hidden_features=(16,), train_steps=100, refit_steps=25,
                     objective_samples=256)  # fmt: skip

    @model
    def bowl(psi):
        return torch.tensor([float(sample(Normal(float(((psi - 1.0) ** 2).sum()), 0.1)))])

    res = optimize_blackbox(bowl, [2.5, -0.5, 1.8], first, "lgso", budget=320, config=cfg,
                            seed=0)  # fmt: skip
    distances = [float((p - 1.0).norm()) for _, p in res.answers()]
    assert distances[-1] < 0.25 * distances[0]
    assert max(distances[5:]) < distances[0]


def test_three_hump_exact_objective_matches_monte_carlo():
    problem = ThreeHump()
    rng = RNG(0)
    n = 8000
    for psi in ([2.0, 0.0], [-1.0, 1.0], [0.3, -0.8]):
        p = torch.tensor(psi)
        with problem.executions(rng) as run:
            r = three_hump_objective(torch.stack([run(p) for _ in range(n)]))
        # 5 Monte Carlo standard errors
        assert abs(float(r.mean()) - problem.expected_objective(p)) < 5 * float(
            r.std()
        ) / math.sqrt(n)


def test_rosenbrock_problems():
    # the L-GSO paper's definitions: no factor 100, start 2 (10-D) and 0 (100-D)
    r10 = Rosenbrock(10)
    assert r10.expected_objective(torch.ones(10)) == 0.0
    assert r10.expected_objective(torch.tensor(r10.psi0)) == pytest.approx(9 * 5)
    sub = SubmanifoldRosenbrock()
    a = sub.matrix
    assert torch.allclose(a @ a.T, torch.eye(10, dtype=a.dtype), atol=1e-12)
    optimum = a.T @ torch.ones(10, dtype=a.dtype)
    null = torch.randn(100, dtype=a.dtype, generator=torch.Generator().manual_seed(0))
    null -= a.T @ (a @ null)  # a direction the output does not depend on
    assert sub.expected_objective(optimum) == pytest.approx(0.0, abs=1e-9)
    assert sub.expected_objective(optimum + 3 * null) == pytest.approx(0.0, abs=1e-9)
    assert sub.psi0 == tuple([0.0] * 100)
    assert sub.expected_objective(torch.tensor(sub.psi0)) == pytest.approx(9.0)
    # E[y] = f(psi); with l = x + z (x ~ U(-10, 10), z ~ N(0, 1)): Var y = Var l +
    # E[(0.1 + 0.5 |l|)^2], Var l = E[l^2] = 100/3 + 1, E|l| = 5 + 1/20 (smoothing |x| by
    # a unit Gaussian adds its variance to the integral of |x|), so sd y = 6.59
    var_l = 100 / 3 + 1
    sd = math.sqrt(var_l + 0.01 + 0.1 * 5.05 + 0.25 * var_l)
    rng = RNG(0)
    n = 4000
    with r10.executions(rng) as run:
        y = torch.stack([run(torch.ones(10)) for _ in range(n)])[:, 0]
    assert abs(float(y.mean())) < 5 * sd / math.sqrt(n)
    # the sample sd of 4000 heavy-ish-tailed draws is within a few percent of the truth
    assert float(y.std()) == pytest.approx(sd, rel=0.05)


def test_three_hump_mixture_weights_follow_abs_psi():
    # the paper's component choice: P(first) = |psi1| / (|psi1| + |psi2|); at psi = (0, 1)
    # only the second component (x2 ~ U(0, 5)) is used, at (-1, 0) only the first
    problem = ThreeHump()
    h = 1.0  # h(0, 1) = 1: y ~ N(x2, 2) with x2 ~ U(0, 5)
    rng = RNG(1)
    n = 4000
    with problem.executions(rng) as run:
        y = torch.stack([run(torch.tensor([0.0, 1.0])) for _ in range(n)])[:, 0]
    assert abs(float(y.mean()) - 2.5 * h) < 5 * math.sqrt(25 / 12 + 2) / math.sqrt(n)
    # h(-1, 0) = 2 - 1.05 + 1/6 = 1.1167; first component: y ~ N(x1 h, 2), x1 ~ U(-2, 2)
    with problem.executions(rng) as run:
        y = torch.stack([run(torch.tensor([-1.0, 0.0])) for _ in range(n)])[:, 0]
    assert abs(float(y.mean())) < 5 * math.sqrt(16 / 12 * 1.1167**2 + 2) / math.sqrt(n)
