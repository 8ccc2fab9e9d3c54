"""Defensive importance sampling for any kind of choice: IC's ``defensive`` as a mapping of
selectors to weights of the prior mixed into those proposals.

Checked: which choices a mapping selects (a site's name before its distribution, its head
kind, its shape, ``*``); that the engine's weights are ``p / q`` of the mixed proposal (its
density recomputed by replaying each trace through a :class:`NetworkProposal` with the same
mapping, to 1e-4: float32 network); that estimates stay exact (the unknown-mean model's
posterior mean and variance within Z = 5 Monte Carlo standard errors from the Kish ESS,
``mc.py``; seeds fixed); and clear errors for bad weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mc import Z, stderr, weighted_mean

from rotalumis.infer import proposal_log_density
from rotalumis.models import UnknownMean
from rotalumis.nn import NetworkProposal, SiteSpec, TrainingConfig, defensive_weights, train_network
from rotalumis.nn.proposal import defensive_for

torch.set_num_threads(1)


def test_selectors_and_their_order() -> None:
    assert defensive_weights(0.02) == {"cat": 0.02}  # a number: categorical choices, as before
    assert defensive_weights(0.0) == {}
    weights = defensive_weights({"cat": 0.02, "momentum": 0.25, "Normal": 0.1, "*": 0.05})
    box = SiteSpec("a", "Uniform", "bound", 3, (3,), 6, 0, "flow")
    normal = SiteSpec("b", "Normal", "real", 1, (), 2, 0, "mixture")
    channel = SiteSpec("c", "Categorical", "cat", 1, (), 6, 6, "mixture")
    assert defensive_for(weights, "momentum", box) == 0.25  # the name is the most specific
    assert defensive_for(weights, None, box) == 0.05  # nothing else matches: "*"
    assert defensive_for(weights, "momentum", normal) == 0.25
    assert defensive_for(weights, "mu", normal) == 0.1  # the distribution name
    assert defensive_for(weights, None, channel) == 0.02  # the head kind
    assert defensive_for({"vector": 0.3}, None, box) == 0.3
    assert defensive_for({"vector": 0.3}, None, normal) == 0.0  # no selector: the network's
    for bad, match in (
        (1.0, r"defensive\['cat'\] must be in \[0, 1\)"),
        ({"mu": -0.1}, r"defensive\['mu'\] must be in"),
        ({"mu": True}, r"defensive\['mu'\] must be in"),
        ({3: 0.1}, "selectors must be strings"),
        ("0.1", "a number or a mapping"),
    ):
        with pytest.raises(ValueError, match=match):
            defensive_weights(bad)


@pytest.fixture(scope="module")
def weak_network():
    """A network trained on 256 traces: its proposals for an observation in the prior's
    tail are far from the posterior, so the prior component matters."""
    model = UnknownMean()
    config = TrainingConfig(num_traces=256, batch_size=32, valid_size=0, seed=0)
    return model, train_network(model=model, config=config, network_sizes={"lstm_dim": 16}).network


def test_continuous_defensive_proposals_keep_the_weights_exact(weak_network) -> None:
    model, net = weak_network
    observe = model.observations([4.0, 5.0])
    chosen = {"mu": 0.3}
    post = model.posterior(60, engine="ic", observe=observe, seed=1, network=net,
                           defensive=chosen, keep_traces=True, progress=False)  # fmt: skip
    assert post.info.options["defensive"] == {"mu": 0.3}
    moved = 0
    for trace, lw in zip(post.traces, post.log_weights.tolist(), strict=True):
        engine = float(trace.log_prob) - lw
        mixed = NetworkProposal(net, observe, chosen)
        assert abs(proposal_log_density(model, trace, mixed, observe=observe) - engine) < 1e-4
        plain = NetworkProposal(net, observe)
        moved += abs(proposal_log_density(model, trace, plain, observe=observe) - engine) > 1e-3
    assert moved == len(post.traces)  # every trace's density is the mixture's, not the network's
    number = model.posterior(5, engine="ic", observe=observe, seed=1, network=net,
                             defensive=0.02, progress=False)  # fmt: skip
    assert number.info.options["defensive"] == 0.02  # recorded as before


@pytest.mark.parametrize("weight", [0.1, 0.5])
def test_continuous_defensive_estimates_are_exact(weak_network, weight: float) -> None:
    model, net = weak_network
    values = [4.0, 5.0]
    post = model.posterior(3000, engine="ic", observe=model.observations(values), seed=2,
                           network=net, defensive={"Normal": weight}, progress=False)  # fmt: skip
    mean, std = model.exact_posterior(values)
    x = np.asarray(post.to_numpy(), dtype=float)
    w = np.asarray(post.weights, dtype=float)
    for f, exact in ((x, mean), ((x - mean) ** 2, std**2)):
        est, err = weighted_mean(f, w), stderr(f, w)
        assert abs(est - exact) < Z * err, f"{est:.4f} vs {exact:.4f} (se {err:.4f})"
    with pytest.raises(ValueError, match="defensive"):
        model.posterior(5, engine="ic", observe=model.observations(values), network=net,
                        defensive={"mu": 1.0})  # fmt: skip
