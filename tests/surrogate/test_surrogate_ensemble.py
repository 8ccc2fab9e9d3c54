"""SurrogateEnsemble: the uniform mixture of surrogates of one simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rotalumis.core import Model, Normal, observe, sample
from rotalumis.models import Branching
from rotalumis.surrogate import (
    SurrogateConfig,
    SurrogateEnsemble,
    SurrogateModel,
    SurrogateTraining,
    simulate_steps,
    train_surrogate,
)

SHIFT, SPREAD, NOISE = 3.0, 0.5, 1.0


class Shifted(Model):
    """``x ~ Normal(shift, 0.5)``, ``y ~ Normal(x, 1)``; two shifts stand for two members
    that learned one simulator differently (both are called ``"Shifted"``)."""

    def __init__(self, shift: float) -> None:
        super().__init__("Shifted")
        self.shift = shift

    def forward(self) -> float:
        x = sample(Normal(self.shift, SPREAD), name="x")
        observe(Normal(x, NOISE), name="y")
        return x


@pytest.fixture(scope="module")
def members() -> list[SurrogateModel]:
    config = SurrogateConfig(lstm_dim=16, address_dim=4, value_dim=4)
    training = SurrogateTraining(num_traces=1000, epochs=3, learning_rate=1e-2, seed=3)
    return [train_surrogate(Shifted(s), config, training).model for s in (-SHIFT, SHIFT)]


def test_each_execution_runs_one_member_chosen_uniformly(members) -> None:
    ensemble = SurrogateEnsemble(members)
    rows = simulate_steps(ensemble, 2000, 1)
    x = np.asarray([next(s.value[0] for s in r if s.name == "x") for r in rows])
    # a member's x is within 2 of its shift (4 sd): the draws are the members', not a blend
    assert np.all(np.abs(np.abs(x) - SHIFT) < 2.0)
    # the fraction from the second member: s.e. sqrt(0.25 / 2000) = 0.011
    assert abs(np.mean(x > 0) - 0.5) < 0.045
    assert ensemble.stats.executions == 2000 and ensemble.stats.fallbacks == 0
    assert rows == simulate_steps(SurrogateEnsemble(members), 2000, 1)  # seeded


def test_importance_sampling_targets_the_mixture(members) -> None:
    """Given y, the mixture's posterior probability of the second member is
    ``Z_2 / (Z_1 + Z_2)`` with ``Z_k`` member k's evidence (each estimated by importance
    sampling on the member alone); for the simulators the members learned it is
    ``1 / (1 + exp(-((y + 3)^2 - (y - 3)^2) / (2 v)))``, ``v = 0.5^2 + 1`` (0.81 at y = 0.3)."""
    y = 0.3
    observed = {"y": y}
    log_z = [m.posterior(4000, engine="is", observe=observed, seed=5).log_evidence for m in members]
    learned = 1.0 / (1.0 + math.exp(log_z[0] - log_z[1]))
    v = SPREAD**2 + NOISE**2
    exact = 1.0 / (1.0 + math.exp(-((y + SHIFT) ** 2 - (y - SHIFT) ** 2) / (2 * v)))
    post = SurrogateEnsemble(members).posterior(8000, engine="is", observe=observed, seed=2)
    x = np.asarray(post.get("x").to_numpy(), dtype=float)
    w = np.asarray(post.weights, dtype=float)
    positive = float(w[x > 0].sum() / w.sum())
    # Monte Carlo s.e.: 0.39 / sqrt(ESS ~ 6,000) = 0.005 for the ensemble, 0.006 for
    # ``learned`` (log-evidences to ~1 / sqrt(ESS) each): 0.03 is 4 combined s.e.
    assert abs(positive - learned) < 0.03, (positive, learned)
    # and what two small networks got wrong of the simulators is small too
    assert abs(positive - exact) < 0.06, (positive, exact)


def test_members_must_be_surrogates_of_one_model(members) -> None:
    with pytest.raises(ValueError, match="at least one member"):
        SurrogateEnsemble([])
    with pytest.raises(ValueError, match="member 1 is a Shifted"):
        SurrogateEnsemble([members[0], Shifted(0.0)])  # type: ignore[list-item]
    other = train_surrogate(Branching(), training=SurrogateTraining(num_traces=50)).model
    with pytest.raises(ValueError, match="member 1 imitates 'Branching'"):
        SurrogateEnsemble([members[0], other])
