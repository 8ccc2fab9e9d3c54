"""Adaptive IC: a network refit to one observation by tempered, resampled IC importance samples.

Tolerances: Z = 5 Monte Carlo standard errors from the Kish ESS (``mc.py``); seeds fixed.
The network is deliberately weak (a few hundred training traces) and the observation far
in the prior's tail, so plain IC has a poor ESS that the rounds must raise, while the
importance weights keep the posterior exact in every round.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mc import Z, stderr, weighted_mean

from rotalumis.core.rng import derive_seed
from rotalumis.infer import adaptive_ic, tempering_exponent
from rotalumis.models import UnknownMean
from rotalumis.nn import TrainingConfig, train_network

torch.set_num_threads(1)


def test_tempering_exponent_keeps_the_target_ess() -> None:
    lw = np.random.default_rng(0).normal(0.0, 30.0, 1000)
    beta = tempering_exponent(lw, 0.3)
    w = np.exp(beta * (lw - lw.max()))
    assert 0 < beta < 1 and abs(w.sum() ** 2 / (w**2).sum() / 1000 - 0.3) < 0.01
    assert tempering_exponent(np.zeros(10), 0.3) == 1.0


def test_adaptation_raises_the_ess_and_stays_exact() -> None:
    model = UnknownMean()
    config = TrainingConfig(num_traces=256, batch_size=32, valid_size=0, seed=0)
    net = train_network(model=model, config=config, network_sizes={"lstm_dim": 16}).network
    before = {k: v.clone() for k, v in net.state_dict().items()}
    obs = model.observations([11.0, 12.0])
    seed = derive_seed(0, "round", 0)
    plain = model.posterior(1000, engine="ic", observe=obs, seed=seed, network=net)
    result = adaptive_ic(model, obs, net, rounds=4, traces=1000, seed=0)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # untouched
    assert [r["round"] for r in result.rounds] == [0, 1, 2, 3, 4]
    assert result.rounds[0]["ess"] == pytest.approx(plain.ess)  # round 0 is plain IC
    assert result.rounds[-1]["ess"] > 3 * plain.ess and result.rounds[-1]["ess"] > 500
    post = model.posterior(2000, engine="ic", observe=obs, seed=1, network=result.network)
    mean, std = model.exact_posterior([11.0, 12.0])
    values = np.asarray(post.to_numpy(), dtype=float)
    weights = np.asarray(post.weights, dtype=float)
    for f, exact in ((values, mean), ((values - mean) ** 2, std**2)):
        est, err = weighted_mean(f, weights), stderr(f, weights)
        assert abs(est - exact) < Z * err, f"{est:.4f} vs {exact:.4f} (se {err:.4f})"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="target_ess"):
        adaptive_ic(UnknownMean(), {}, None, target_ess=1.5)


def test_defensive_categorical_proposals_keep_the_weights_exact() -> None:
    from rotalumis.models import GaussianMixture

    model = GaussianMixture()
    config = TrainingConfig(num_traces=2000, batch_size=32, valid_size=0, seed=0)
    net = train_network(model=model, config=config, network_sizes={"lstm_dim": 16}).network
    y = 7.0
    post = model.posterior(4000, engine="ic", observe={"obs": y}, seed=5, network=net,
                           defensive=0.3)  # fmt: skip
    exact = model.exact_posterior(y)["p_k1"]
    k = np.asarray(post.get("k").to_numpy(), dtype=float)
    weights = np.asarray(post.weights, dtype=float)
    est, err = weighted_mean(k == 1, weights), stderr((k == 1).astype(float), weights)
    assert abs(est - exact) < Z * err + 1e-3, f"{est:.4f} vs {exact:.4f} (se {err:.4f})"
    with pytest.raises(ValueError, match="defensive"):
        model.posterior(10, engine="ic", observe={"obs": y}, network=net, defensive=1.0)
