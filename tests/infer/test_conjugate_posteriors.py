"""Every engine, inference compilation included, on conjugate models with exact posteriors.

One model holds five independent latents, one per kind of prior the proposal heads treat
differently (bounded: Beta and Uniform; positive: Gamma and LogNormal; a count: Binomial),
each with its own observations, so the posterior factorises into known marginals:

* ``p ~ Beta(2, 3)``, ``k_i ~ Binomial(10, p)`` observed 7, 8: ``p | k ~ Beta(17, 8)``;
* ``rate ~ Gamma(2, 1)``, ``c_i ~ Poisson(rate)`` observed 4, 6, 5: ``Gamma(17, 4)``;
* ``u ~ Uniform(0, 1)``, ``b_i ~ Bernoulli(u)`` observed 1, 1, 1, 0: ``Beta(4, 2)``;
* ``z ~ LogNormal(0, 1)``, ``y ~ Normal(log z, 0.5)`` observed 1: ``log z ~ N(0.8, 0.2)``;
* ``m ~ Binomial(20, 0.3)``, ``w ~ Normal(m, 1.5)`` observed 9: enumerated.

Tolerances: Z = 5 Monte Carlo standard errors (``mc.py``), seeds fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mc import Z, stderr, weighted_mean

from rotalumis.core import (
    Bernoulli,
    Beta,
    Binomial,
    Gamma,
    LogNormal,
    Model,
    Normal,
    Poisson,
    Uniform,
    observe,
    sample,
)
from rotalumis.nn import TrainingConfig, train_network

torch.set_num_threads(1)


class Conjugate(Model):
    def forward(self) -> None:
        p = sample(Beta(2.0, 3.0), name="p")
        for i in range(2):
            observe(Binomial(10, p), name=f"k{i}")
        rate = sample(Gamma(2.0, 1.0), name="rate")
        for i in range(3):
            observe(Poisson(rate), name=f"c{i}")
        u = sample(Uniform(0.0, 1.0), name="u")
        for i in range(4):
            observe(Bernoulli(u), name=f"b{i}")
        z = sample(LogNormal(0.0, 1.0), name="z")
        observe(Normal(math.log(z), 0.5), name="y")
        m = sample(Binomial(20, 0.3), name="m")
        observe(Normal(float(m), 1.5), name="w")


OBSERVE = {"k0": 7, "k1": 8, "c0": 4, "c1": 6, "c2": 5, "b0": 1, "b1": 1, "b2": 1, "b3": 0}
OBSERVE |= {"y": 1.0, "w": 9.0}


def _beta(a: float, b: float) -> tuple[float, float]:
    return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))


def _binomial_posterior() -> dict[int, float]:
    joint = {
        m: math.comb(20, m) * 0.3**m * 0.7 ** (20 - m) * math.exp(-0.5 * ((9.0 - m) / 1.5) ** 2)
        for m in range(21)
    }
    total = sum(joint.values())
    return {m: j / total for m, j in joint.items()}


M_POST = _binomial_posterior()
# (latent, transform of its values, exact mean, exact variance)
EXACT = [
    ("p", None, *_beta(17.0, 8.0)),
    ("rate", None, 17.0 / 4.0, 17.0 / 16.0),
    ("u", None, *_beta(4.0, 2.0)),
    ("z", np.log, 0.8, 0.2),
    ("m", None, sum(m * q for m, q in M_POST.items()), 0.0),
]
EXACT[4] = ("m", None, EXACT[4][2], sum((m - EXACT[4][2]) ** 2 * q for m, q in M_POST.items()))


@pytest.fixture(scope="module")
def network():
    config = TrainingConfig(
        num_traces=12_000, batch_size=64, learning_rate=3e-3, valid_size=0, seed=11
    )
    return train_network(model=Conjugate(), config=config).network


def _check(post, weighted: bool, what: str) -> None:
    w = np.asarray(post.weights, dtype=float) if weighted else None
    for name, transform, mean, var in EXACT:
        x = np.asarray(post.get(name).to_numpy(), dtype=float)
        if transform is not None:
            x = transform(x)
        for label, values, exact in (("mean", x, mean), ("variance", (x - mean) ** 2, var)):
            est, err = weighted_mean(values, w), stderr(values, w)
            assert abs(est - exact) < Z * err + 1e-9, (
                f"{what} {name} {label}: {est:.4f} vs exact {exact:.4f} (se {err:.4f})"
            )


@pytest.mark.parametrize(
    ("engine", "num_traces", "options"),
    [
        ("is", 30_000, {}),
        ("lmh", 30_000, {"burn_in": 1000}),
        ("rmh", 30_000, {"burn_in": 1000, "scale": 0.5}),
    ],
)
def test_engines(engine: str, num_traces: int, options: dict) -> None:
    post = Conjugate().posterior(
        num_traces, engine=engine, observe=OBSERVE, seed=21, progress=False, **options
    )
    _check(post, weighted=engine == "is", what=engine)


def test_inference_compilation(network) -> None:
    post = Conjugate().posterior(4000, engine="ic", observe=OBSERVE, seed=22, network=network)
    assert post.info.prior_fallback_fraction == 0.0
    _check(post, weighted=True, what="ic")
    prior_is = Conjugate().posterior(4000, engine="is", observe=OBSERVE, seed=22, progress=False)
    assert post.ess >= 10 * prior_is.ess, (post.ess, prior_is.ess)  # about 120x here
