"""Networks that propose the parameters of interest only; nuisance left to the simulator.

The conjugate model: ``mu ~ N(1, sqrt 5)`` and each of two observations is ``mu`` plus the
mean of ``K = 50`` nuisance draws ``N(0, 0.5 sqrt K)`` plus read-out noise ``N(0, 1)``, so
marginally ``obs_j ~ N(mu, sqrt(1 + 0.25))`` and the posterior of ``mu`` is exact. The
importance-sampling checks use Z = 5 Monte Carlo standard errors from the Kish ESS
(``tests/infer/mc.py``). Samples from the network alone have no weights: they are checked
against the exact posterior with a tolerance for the network's approximation error (a
quarter of a posterior standard deviation for the mean, 20% for the standard deviation:
the error of an amortized network at this small budget).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.core import InferenceError, Model, Normal, ParametersOfInterest, observe, sample
from rotalumis.models import Branching
from rotalumis.nn import (
    InferenceNetwork,
    TrainingConfig,
    restrict_batch,
    sample_proposal,
    simulate_batch,
    train_network,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "infer"))
from mc import Z, stderr, weighted_mean

torch.set_num_threads(1)
K = 50
PRIOR = (1.0, math.sqrt(5.0))
OFFSET_STD, NOISE = 0.5, 1.0


def nuisance_offset() -> float:
    draws = [sample(Normal(0.0, OFFSET_STD * math.sqrt(K))) for _ in range(K)]
    return sum(draws) / K


class NuisanceMean(Model):
    """The unknown mean behind two readings, each shifted by the mean of K nuisance draws."""

    def __init__(self) -> None:
        super().__init__("NuisanceMean")

    def forward(self) -> float:
        mu = sample(Normal(*PRIOR), name="mu")
        for j in range(2):
            observe(Normal(mu + nuisance_offset(), NOISE), name=f"obs{j}")
        return mu


def exact(values: list[float]) -> tuple[float, float]:
    var = NOISE**2 + OFFSET_STD**2
    precision = 1 / PRIOR[1] ** 2 + len(values) / var
    return (PRIOR[0] / PRIOR[1] ** 2 + sum(values) / var) / precision, precision**-0.5


@pytest.fixture(scope="module")
def network() -> InferenceNetwork:
    config = TrainingConfig(
        num_traces=6_000, batch_size=64, learning_rate=3e-3, valid_size=0, seed=0
    )
    return train_network(
        model=NuisanceMean(),
        config=config,
        network_sizes={"lstm_dim": 32, "interest_names": ("mu",)},
    ).network


def test_only_the_parameter_gets_layers_and_the_sequence_is_recorded(network) -> None:
    assert len(network.addresses) == 1 and network.specs[0].distribution == "Normal"
    assert network.sequence.sites is not None
    assert [s.label for s in network.sequence.sites] == ["mu"]
    assert network.sequence.sites[0].params == PRIOR


def test_importance_sampling_is_exact_with_nuisance_from_the_prior(network) -> None:
    obs = {"obs0": 3.0, "obs1": 4.5}
    post = NuisanceMean().posterior(2000, engine="ic", observe=obs, seed=1, network=network)
    assert post.info is not None and post.info.proposal is not None
    assert post.info.proposal.nuisance == 2000 * 2 * K
    assert post.info.prior_fallback_fraction == 0.0
    values = np.asarray(post.get("mu").to_numpy(), dtype=float)
    weights = np.asarray(post.weights, dtype=float)
    mean, std = exact([3.0, 4.5])
    for f, target in ((values, mean), ((values - mean) ** 2, std**2)):
        est, err = weighted_mean(f, weights), stderr(f, weights)
        assert abs(est - target) < Z * err, f"{est:.4f} vs {target:.4f} (se {err:.4f})"
    assert post.ess / len(post) > 0.3  # the nuisance spreads the weights, not the network


def test_samples_from_the_network_alone_approximate_the_posterior(network, tmp_path) -> None:
    net = InferenceNetwork.load(network.save(tmp_path / "poi.pt"))  # the sequence is saved
    obs = {"obs0": 3.0, "obs1": 4.5}
    samples = sample_proposal(net, obs, 4000, seed=2)
    assert samples.info is not None and samples.info.engine == "proposal"
    assert len(samples) == 4000
    mu = np.asarray(samples.get("mu").to_numpy(), dtype=float)
    mean, std = exact([3.0, 4.5])
    assert abs(mu.mean() - mean) < 0.25 * std, (mu.mean(), mean)
    assert abs(mu.std() / std - 1) < 0.2, (mu.std(), std)
    again = sample_proposal(net, obs, 4000, seed=2)
    assert np.array_equal(mu, np.asarray(again.get("mu").to_numpy(), dtype=float))


def test_address_patterns_select_like_names() -> None:
    config = TrainingConfig(num_traces=128, batch_size=64, valid_size=0, seed=0)
    pattern = "nuisance_offset:"
    net = train_network(
        model=NuisanceMean(),
        config=config,
        network_sizes={"lstm_dim": 8, "interest_addresses": (pattern,)},
    ).network
    assert len(net.addresses) == 2 * K and all(pattern in a for a in net.addresses)
    assert net.interest == ParametersOfInterest(addresses=(pattern,))


def test_restricted_batches_renumber_the_kept_steps() -> None:
    batch = simulate_batch(NuisanceMean(), 4, seed=0)
    # mu, and the 7th draw of each offset (its instance counter runs on over both)
    kept = restrict_batch(batch, lambda g: g.name == "mu" or g.address.endswith(("__7", "__57")))
    assert kept.lengths.tolist() == [3, 3, 3, 3]
    for g in kept.groups:
        assert g.steps.max() < 3
    steps = sorted(int(s) for g in kept.groups for s in g.steps[g.rows == 0])
    assert steps == [0, 1, 2]


def test_proposal_only_sampling_needs_a_fixed_sequence() -> None:
    config = TrainingConfig(num_traces=256, batch_size=64, valid_size=0, seed=0)
    net = train_network(model=Branching(), config=config, network_sizes={"lstm_dim": 8}).network
    assert net.sequence.sites is None
    with pytest.raises(InferenceError, match=r"no fixed sequence.*engine=.ic."):
        sample_proposal(net, {"obs": 2.0}, 10)


def test_bad_interest_is_rejected() -> None:
    with pytest.raises(TypeError, match="tuple of strings"):
        ParametersOfInterest(names="mu")
    with pytest.raises(ValueError, match="non-empty strings"):
        ParametersOfInterest(addresses=("",))
