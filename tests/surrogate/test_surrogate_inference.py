"""An inference network trained only on surrogate traces, against one trained on the simulator.

Both networks get the same budget (traces, batch size, learning rate, seed); their
proposal-only posteriors (``engine="ic", proposal_only=True``: the network alone, no
weights, so only as good as the network) are compared with the exact posterior of the
simulator by the classifier two-sample test: each must pass the issue's bar, accuracy
<= 0.55, plus 3 standard errors of an accuracy measured on ``2 n`` points
(``sqrt(0.25 / 2n)``). Importance sampling on the simulator with the surrogate-trained
network then gives the exact posterior mean within Z = 5 Monte Carlo standard errors
(tests/infer/mc.py), with an ESS per trace close to the simulator-trained network's.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from rotalumis.diagnostics import c2st
from rotalumis.models import UnknownMean
from rotalumis.nn import InferenceNetwork, TrainingConfig, train_network
from rotalumis.surrogate import SurrogateConfig, SurrogateTraining, train_surrogate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from mc import Z, stderr, weighted_mean

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SAMPLES = 1000
C2ST_MAX = 0.55 + 3 * math.sqrt(0.25 / (2 * SAMPLES))
NUM_OBSERVATIONS = 3  # drawn from the prior predictive


def _network(model: object, seed: int) -> InferenceNetwork:
    config = TrainingConfig(
        num_traces=8000, batch_size=32, learning_rate=3e-3, valid_size=0, seed=seed
    )
    return train_network(model=model, config=config).network


def test_a_network_trained_on_surrogate_traces_is_as_good_as_one_trained_on_the_simulator() -> None:
    model = UnknownMean()
    surrogate = train_surrogate(
        model,
        SurrogateConfig(),
        SurrogateTraining(num_traces=4000, epochs=3, learning_rate=3e-3, seed=1),
    ).model
    nets = {"simulator": _network(model, 5), "surrogate": _network(surrogate, 5)}
    # trained on the surrogate's traces, it is a network for the imitated model
    assert nets["surrogate"].model_name == model.name
    assert nets["surrogate"].trained_on == surrogate.name
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {k: [] for k in nets}
    observations = []
    for j in range(NUM_OBSERVATIONS):
        mu = rng.normal(model.prior_mean, model.prior_std)
        ys = [float(mu + v) for v in rng.normal(0.0, model.likelihood_std, size=2)]
        observations.append(ys)
        mean, std = model.exact_posterior(ys)
        exact = rng.normal(mean, std, size=(SAMPLES, 1))
        observe = model.observations(ys)
        for label, net in nets.items():
            post = model.posterior(
                SAMPLES, engine="ic", observe=observe, seed=j, network=net, proposal_only=True
            )
            x = np.asarray(post.get("mu").to_numpy(), dtype=float).reshape(-1, 1)
            scores[label].append(c2st(exact, x))
    for label, acc in scores.items():
        assert max(acc) <= C2ST_MAX, f"{label}-trained network: C2ST {acc}"
    # importance sampling on the simulator with the surrogate-trained proposal is exact
    ys = observations[0]
    mean, _ = model.exact_posterior(ys)
    post = model.posterior(
        2000, engine="ic", observe=model.observations(ys), seed=9, network=nets["surrogate"]
    )
    v, w = np.asarray(post.to_numpy(), dtype=float), np.asarray(post.weights, dtype=float)
    assert abs(weighted_mean(v, w) - mean) < Z * stderr(v, w)
    # and as efficient as the simulator-trained one (0.99 and 0.997 per trace measured; it
    # was 0.62 while the surrogate reported its standardisation, Normal(1.87, 2.26), as the
    # prior of ``mu``, which the network's heads read, instead of the simulator's Normal(1, 2.24))
    ess = {
        label: model.posterior(
            2000, engine="ic", observe=model.observations(ys), seed=9, network=net
        ).ess
        / 2000
        for label, net in nets.items()
    }
    assert ess["surrogate"] >= 0.9 and ess["surrogate"] >= ess["simulator"] - 0.05, ess
