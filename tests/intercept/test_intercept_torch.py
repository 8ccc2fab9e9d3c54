"""Simulators written in torch: their draws are addressed sites that engines control
(issue 11, defect 3).

Each covered torch function becomes one site of the matching distribution (or, unmapped, one
recorded seed of a substitute generator), returns what torch would (dtype, shape, device),
follows the engine's seed, reaches the simulator exactly when replayed, and draws from the
right distribution (two-sample tests against plain torch, seeded, so deterministic). The
engine's own tensor draws are never intercepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from intercept_support import run_intercepted, same_continuous, same_discrete

from rotalumis.core import Gamma, Normal, ReplayHandler, sample
from rotalumis.intercept import intercept

W = torch.tensor([0.2, 0.5, 0.3])

# (label in the address, distribution of the site, the call)
CASES: list[tuple[str, str, Callable[[], Any]]] = [
    ("torch.randn", "Normal", lambda: torch.randn(())),
    ("torch.rand[2x3]", "Uniform", lambda: torch.rand(2, 3)),
    ("torch.randn[4]", "Normal", lambda: torch.randn(4, dtype=torch.float64)),
    ("torch.rand_like[3]", "Uniform", lambda: torch.rand_like(torch.zeros(3))),
    ("torch.randn_like[2]", "Normal", lambda: torch.randn_like(torch.zeros(2))),
    ("torch.randint[4]", "Categorical", lambda: torch.randint(3, 8, (4,))),
    ("torch.randint[1]", "Categorical", lambda: torch.randint(10, (1,))),
    ("torch.randint_like[2]", "Categorical", lambda: torch.randint_like(torch.zeros(2), 5)),
    ("torch.normal[3]", "Normal", lambda: torch.normal(torch.zeros(3), torch.ones(3))),
    ("torch.normal[2]", "Normal", lambda: torch.normal(2.0, 0.5, size=(2,))),
    ("torch.bernoulli[3]", "Bernoulli", lambda: torch.bernoulli(torch.full((3,), 0.3))),
    ("torch.poisson[2]", "Poisson", lambda: torch.poisson(torch.full((2,), 3.0))),
    ("torch.multinomial[4]", "Categorical", lambda: torch.multinomial(W, 4, True)),
    ("torch._standard_gamma[2]", "Gamma", lambda: torch._standard_gamma(torch.full((2,), 2.0))),
    ("Tensor.normal_[3]", "Normal", lambda: torch.empty(3).normal_(1.0, 2.0)),
    ("Tensor.uniform_[2]", "Uniform", lambda: torch.empty(2).uniform_(-1.0, 1.0)),
    ("Tensor.exponential_[2]", "Exponential", lambda: torch.empty(2).exponential_(2.0)),
    ("Tensor.log_normal_[2]", "LogNormal", lambda: torch.empty(2).log_normal_()),
    ("Tensor.bernoulli_[2]", "Bernoulli", lambda: torch.empty(2).bernoulli_(0.4)),
    ("Tensor.bernoulli[2]", "Bernoulli", lambda: torch.full((2,), 0.5).bernoulli()),
    # no mapping: one recorded seed of a substitute generator
    ("torch.randperm", "Uniform", lambda: torch.randperm(6)),
    ("torch.multinomial", "Uniform", lambda: torch.multinomial(W, 2)),  # without replacement
    ("Tensor.random_", "Uniform", lambda: torch.empty(3).random_(0, 10)),
    ("Tensor.cauchy_", "Uniform", lambda: torch.empty(2).cauchy_()),
    ("torch.binomial", "Uniform", lambda: torch.binomial(torch.tensor([5.0]), torch.tensor([0.5]))),
]


@pytest.mark.parametrize(("label", "kind", "call"), CASES, ids=[c[0] for c in CASES])
def test_each_draw_is_one_site_and_follows_the_engine_seed(
    label: str, kind: str, call: Callable[[], Any]
) -> None:
    plain = call()
    value, trace = run_intercepted(call, seed=1)
    (site,) = trace.controlled
    assert site.address.endswith(f"/{label}__{kind}__1"), site.address
    assert isinstance(value, torch.Tensor)
    assert (value.shape, value.dtype, value.device) == (plain.shape, plain.dtype, plain.device)
    again, _ = run_intercepted(call, seed=1)
    assert torch.equal(value, again)  # the engine's seed decides
    others = [run_intercepted(call, seed=s)[0] for s in range(2, 8)]
    assert any(not torch.equal(value, other) for other in others)


def test_torch_distributions_draw_through_intercepted_functions() -> None:
    def simulate() -> list[torch.Tensor]:
        d = torch.distributions
        return [
            d.Normal(0.0, 1.0).sample((2,)),
            d.Normal(torch.zeros(2), 1.0).rsample(),
            d.Gamma(2.0, 1.0).sample(),
            d.Categorical(W).sample(),
            d.Dirichlet(torch.ones(3)).sample(),
            d.Exponential(1.5).sample(),
            d.Bernoulli(0.3).sample(),
        ]

    _, trace = run_intercepted(simulate)
    labels = [s.address.rsplit("/", 1)[1].rsplit("__", 2)[0] for s in trace.controlled]
    assert labels == [
        "torch.normal[2]",
        "Tensor.normal_[2]",
        "torch._standard_gamma",
        "torch.multinomial[1x1]",
        "torch._sample_dirichlet",
        "Tensor.exponential_",
        "torch.bernoulli",
    ]


def _vector(call: Callable[[], torch.Tensor]) -> np.ndarray:
    value, trace = run_intercepted(call, seed=3)
    assert len(trace.controlled) == 1
    return value.double().numpy()


N = 4000


def test_values_have_torch_distributions() -> None:
    torch.manual_seed(0)
    for call, what in [
        (lambda: torch.randn(N), "randn"),
        (lambda: torch.empty(N).uniform_(-1.0, 3.0), "uniform_"),
        (lambda: torch.empty(N).exponential_(2.0), "exponential_"),
        (lambda: torch.normal(torch.full((N,), 1.0), torch.full((N,), 0.5)), "normal"),
        (lambda: torch._standard_gamma(torch.full((N,), 0.7)), "_standard_gamma"),
    ]:
        same_continuous(_vector(call), call().double().numpy(), what)
    for call, what in [
        (lambda: torch.randint(2, 9, (N,)), "randint"),
        (lambda: torch.poisson(torch.full((N,), 3.0)), "poisson"),
        (lambda: torch.bernoulli(torch.full((N,), 0.3)), "bernoulli"),
        (lambda: torch.multinomial(W, N, replacement=True), "multinomial"),
    ]:
        same_discrete(_vector(call), call().double().numpy(), what)


def test_replayed_values_reach_the_simulator_exactly() -> None:
    def simulate() -> tuple[torch.Tensor, ...]:
        return torch.randn(()), torch.randint(0, 5, (2,)), torch.empty(2).uniform_(0.0, 2.0)

    first = run_intercepted(simulate, seed=1)[1]
    supplied = [0.25, torch.tensor([4, 1]), torch.tensor([0.5, 1.5], dtype=torch.float64)]
    values = {s.address: v for s, v in zip(first.controlled, supplied, strict=True)}
    with ReplayHandler(values) as replay:
        (x, k, u), _ = run_intercepted(simulate, seed=2)
    assert replay.replayed == set(values)
    assert x.item() == 0.25 and x.dtype == torch.float32
    assert k.tolist() == [4, 1] and k.dtype == torch.int64
    assert u.tolist() == [0.5, 1.5]


def test_the_engines_own_tensor_draws_are_not_intercepted() -> None:
    def body() -> None:
        sample(Normal(torch.zeros(3), 1.0))  # rotalumis draws through its own generator
        sample(Gamma(torch.full((2,), 2.0), 1.0))
        torch.rand(1)

    _, trace = run_intercepted(body)
    labels = [s.address.rsplit("/", 1)[1] for s in trace.controlled]
    assert [x.split("__")[1] for x in labels] == ["Normal", "Gamma", "Uniform"]
    assert labels[2].startswith("torch.rand[1]")


def test_normal_keeps_its_reparameterisation_gradient() -> None:
    mean = torch.tensor([0.5, -1.0], requires_grad=True)
    std = torch.tensor([2.0, 0.5], requires_grad=True)

    def simulate() -> tuple[torch.Tensor, ...]:
        out = torch.normal(mean, std)
        return (out.detach(), *torch.autograd.grad(out.sum(), (mean, std)))

    (out, d_mean, d_std), trace = run_intercepted(simulate)
    assert torch.allclose(out, trace.controlled[0].value.float())
    assert torch.equal(d_mean, torch.ones(2))
    assert torch.allclose(d_std, (out - mean.detach()) / std.detach())


def test_outside_a_model_torch_draws_pass_through() -> None:
    with intercept():
        torch.manual_seed(4)
        a = torch.randn(3), torch.empty(2).uniform_()
    torch.manual_seed(4)
    assert torch.equal(a[0], torch.randn(3)) and torch.equal(a[1], torch.empty(2).uniform_())
