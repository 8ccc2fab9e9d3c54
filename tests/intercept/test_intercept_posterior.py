"""An unmodified simulator drawing ``np.random.normal(theta, 1)`` inside a helper gives the
exact posterior under importance sampling and RMH.

Model: ``theta ~ Normal(0, 1)`` (prior given to :class:`InterceptedModel`); the simulator
draws ``x ~ Normal(theta, 1)`` through numpy (an intercepted latent) and the observation is
``y ~ Normal(x, 0.5)``. Marginally ``y | theta ~ Normal(theta, sqrt(1.25))``, so the posterior
of ``theta`` given ``y`` is Normal with variance ``1 / (1 + 1 / 1.25)`` and mean
``var * y / 1.25``. Tolerance: 5 Monte Carlo standard errors (Kish ESS for IS, batch means
for RMH); seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
from intercept_support import check_normal_posterior

from rotalumis.core import Normal
from rotalumis.intercept import InterceptedModel

Y = 1.5
VAR = 1.0 / (1.0 + 1.0 / 1.25)
MEAN = VAR * Y / 1.25


def _noise(center):
    return np.random.normal(center, 1.0)


def simulate(theta):
    """Unmodified simulator: knows nothing about rotalumis."""
    return _noise(theta)


MODEL = InterceptedModel(
    simulate, priors={"theta": Normal(0.0, 1.0)}, observe={"y": lambda x: Normal(x, 0.5)}
)


def _check(values: np.ndarray, weights: np.ndarray | None, engine: str) -> None:
    check_normal_posterior(values, weights, MEAN, VAR, engine)


@pytest.mark.parametrize(
    ("engine", "n", "opts"),
    [("is", 4000, {}), ("rmh", 4000, {"burn_in": 200, "scale": 0.5})],
)
def test_exact_posterior(engine: str, n: int, opts: dict) -> None:
    post = MODEL.posterior(n, engine=engine, observe={"y": Y}, seed=3, progress=False, **opts)
    theta = post.get("theta")
    values = np.asarray(theta.to_numpy(), dtype=float)
    w = np.asarray(theta.weights, dtype=float)
    _check(values, None if np.allclose(w, w[0]) else w, engine)


def test_the_simulator_draw_is_a_controlled_latent_with_a_library_address() -> None:
    trace = MODEL.get_trace(seed=0, observe={"y": Y})
    (site,) = [s for s in trace.controlled if s.name is None]
    # frames outside the entry function's file are module-qualified
    mod = __name__
    sim_line = simulate.__code__.co_firstlineno + 2
    noise_line = _noise.__code__.co_firstlineno + 1
    tail = f"{mod}.simulate:{sim_line}/{mod}._noise:{noise_line}/np.random.normal__Normal__1"
    assert site.address.startswith("forward:") and site.address.endswith("/" + tail)


def _prior():
    return np.random.normal(0.0, 1.0)


def _measure(x):
    return np.random.normal(x, 0.5)


def simulate_everything():
    """Unmodified: draws its own parameter, latent and measurement noise."""
    return _measure(_noise(_prior()))


NAMED = InterceptedModel(
    simulate_everything, names={"theta": "._prior:"}, observed={"y": "._measure:"}
)


def test_named_intercepted_draws_are_latents_and_observations() -> None:
    post = NAMED.posterior(4000, engine="is", observe={"y": Y}, seed=4, progress=False)
    theta = post.get("theta")
    values = np.asarray(theta.to_numpy(), dtype=float)
    _check(values, np.asarray(theta.weights, dtype=float), "is (named draws)")
    trace = NAMED.get_trace(seed=0, observe={"y": Y})
    assert trace.result == Y  # the conditioned noise draw returned the data to the simulator
    assert [s.name for s in trace.observations] == ["y"]
    assert [s.name for s in trace.controlled] == ["theta", None]
    clamped = InterceptedModel(simulate_everything, names={"theta": "._prior:", "y": "._measure:"})
    trace = clamped.get_trace(seed=0, observe={"y": Y})  # a named sample can be clamped too
    assert trace.result == Y and [s.name for s in trace.samples if s.observed] == ["y"]


def test_exact_posterior_with_inference_compilation() -> None:
    """IC on the same unmodified simulator: a network trained on intercepted traces proposes
    both ``theta`` and the simulator's own numpy draw; IS weights keep the estimate exact."""
    import torch

    from rotalumis.nn import TrainingConfig, train_network

    torch.set_num_threads(1)
    config = TrainingConfig(
        num_traces=6000, batch_size=32, learning_rate=3e-3, valid_size=0, seed=5
    )
    network = train_network(model=MODEL, config=config).network
    post = MODEL.posterior(
        2000, engine="ic", observe={"y": Y}, seed=5, network=network, progress=False
    )
    assert post.info.prior_fallback_fraction == 0.0  # the network knew every address
    theta = post.get("theta")
    values = np.asarray(theta.to_numpy(), dtype=float)
    _check(values, np.asarray(theta.weights, dtype=float), "ic")
