"""The "ic" engine with a list of networks: importance sampling with their mixture.

Each trace is drawn by one network and weighted by ``p / q_mix``, ``q_mix`` the mean of
every network's density of the trace. Checked: (1) the density each network gives a trace,
recomputed by replaying the trace's values through that network's proposal
(:func:`rotalumis.infer.proposal_log_density`), equals ``log p - log w`` of the engine's
own single-network run, and the mixture's recorded ``log q`` is the log of the mean of
those densities (to 1e-4: float32 networks, summed over up to 20 choices); (2) estimates
are exact: posterior means within Z = 5 Monte Carlo standard errors from the Kish
effective sample size (``mc.py``), seeds fixed. The two networks differ on purpose: one
trained only where n is small (it leaves longer traces' choices to the prior,
UnseenAddressWarning), one on the full prior.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from mc import Z, stderr, weighted_mean

from rotalumis.core import MixtureProposal
from rotalumis.infer import proposal_log_density
from rotalumis.models import Branching, UnknownMean
from rotalumis.nn import (
    InferenceNetwork,
    NetworkProposal,
    TrainingConfig,
    UnseenAddressWarning,
    train_network,
)

torch.set_num_threads(1)


def trained(model, num_traces: int, seed: int) -> InferenceNetwork:
    config = TrainingConfig(
        num_traces=num_traces, batch_size=32, learning_rate=3e-3, valid_size=0, seed=seed
    )
    return train_network(model=model, config=config).network


def log_q(model, observe, network: InferenceNetwork, trace, defensive: float) -> float:
    """``log q(x | y)`` of ``trace`` under ``network`` (the engine's proposal), recomputed."""
    proposal = NetworkProposal(network, observe, defensive)
    return proposal_log_density(model, trace, proposal, observe=observe)


def networks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)
        return [trained(Branching(rate=0.5), 1024, seed=11), trained(Branching(), 8000, seed=12)]


@pytest.fixture(scope="module")
def nets() -> list[InferenceNetwork]:
    return networks()


def run(model, observe, network, n, seed, defensive=0.02, keep_traces=True, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)  # the small-n network
        return model.posterior(
            n, engine="ic", observe=observe, seed=seed, network=network, progress=False,
            defensive=defensive, keep_traces=keep_traces, **options,
        )  # fmt: skip


def test_recomputed_densities_match_the_engines(nets) -> None:
    model, observe = Branching(noise=0.5), {"obs": 5.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)
        for net in nets:  # each network's own traces: log q = log p - log w
            post = run(model, observe, net, 60, seed=1)
            for trace, lw in zip(post.traces, post.log_weights.tolist(), strict=True):
                engine = float(trace.log_prob) - lw
                assert abs(log_q(model, observe, net, trace, 0.02) - engine) < 1e-4
        mixed = run(model, observe, nets, 80, seed=2)
        assert mixed.info.options["networks"] == 2
        for trace, lw in zip(mixed.traces, mixed.log_weights.tolist(), strict=True):
            each = [log_q(model, observe, net, trace, 0.02) for net in nets]
            expected = float(np.logaddexp(*each)) - math.log(2.0)
            assert abs(float(trace.log_prob) - lw - expected) < 1e-4


def test_weighted_mixture_densities_match_the_engines(nets) -> None:
    # mixture_weights (3, 1): log q = log(0.75 q_0 + 0.25 q_1), q_k recomputed by replay
    model, observe = Branching(noise=0.5), {"obs": 5.0}
    mixed = run(model, observe, nets, 80, seed=6, mixture_weights=[3.0, 1.0])
    assert mixed.info.options["mixture_weights"] == [0.75, 0.25]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)
        for trace, lw in zip(mixed.traces, mixed.log_weights.tolist(), strict=True):
            each = [log_q(model, observe, net, trace, 0.02) for net in nets]
            expected = float(np.logaddexp(math.log(0.75) + each[0], math.log(0.25) + each[1]))
            assert abs(float(trace.log_prob) - lw - expected) < 1e-4


def test_weighted_mixture_draws_with_its_weights(nets) -> None:
    # weights (1, 0) through the engine: every trace drawn by the first network, as alone
    model, observe = Branching(noise=0.5), {"obs": 5.0}
    equal = run(model, observe, nets, 400, seed=7, keep_traces=False)
    tilted = run(model, observe, nets, 400, seed=7, keep_traces=False, mixture_weights=[1, 0])
    alone = run(model, observe, nets[0], 400, seed=7, keep_traces=False)
    assert tilted.to_numpy().tolist() == alone.to_numpy().tolist()  # weight 0: never drawn
    assert equal.to_numpy().tolist() != alone.to_numpy().tolist()


def test_a_one_sided_mixture_is_that_network(nets) -> None:
    # weights (1, 0): every trace from the first network, the second stepped alongside
    model, observe = Branching(noise=0.5), {"obs": 5.0}
    alone = run(model, observe, nets[0], 200, seed=3, keep_traces=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)
        parts = [NetworkProposal(net, observe, 0.02) for net in nets]
        one_sided = model.posterior(
            200, engine="is", observe=observe, seed=3, progress=False,
            proposal=MixtureProposal(parts, weights=[1.0, 0.0]),
        )  # fmt: skip
    assert alone.to_numpy().tolist() == one_sided.to_numpy().tolist()
    np.testing.assert_allclose(one_sided.log_weights, alone.log_weights, atol=1e-5)


@pytest.mark.parametrize(
    ("shares", "seed"), [(None, 4), ([0.2, 0.8], 8)], ids=["equal", "weighted"]
)
def test_mixture_estimates_are_exact(nets, shares, seed) -> None:
    model, y = Branching(noise=0.5), 5.0
    exact = model.exact_posterior(y)
    post = run(model, {"obs": y}, nets, 2000, seed=seed, keep_traces=False,
               mixture_weights=shares)  # fmt: skip
    values, weights = np.asarray(post.to_numpy(), float), np.asarray(post.weights, float)
    for n in range(12):
        ind = (values == n).astype(float)
        est, err = weighted_mean(ind, weights), max(stderr(ind, weights), 1e-3)
        assert abs(est - exact[n]) < Z * err, f"P(n={n}): {est:.4f} vs {exact[n]:.4f}"
    mean = sum(n * p for n, p in enumerate(exact))
    assert abs(weighted_mean(values, weights) - mean) < Z * stderr(values, weights)


def test_continuous_mixture_of_two_networks() -> None:
    model = UnknownMean()
    a, b = trained(model, 2000, seed=5), trained(model, 8000, seed=6)
    obs = model.observations([8.0, 9.0])
    post = model.posterior(2000, engine="ic", observe=obs, seed=5, network=[a, b])
    mean, std = model.exact_posterior([8.0, 9.0])
    values, weights = np.asarray(post.to_numpy(), float), np.asarray(post.weights, float)
    for f, exact in ((values, mean), ((values - mean) ** 2, std**2)):
        est, err = weighted_mean(f, weights), stderr(f, weights)
        assert abs(est - exact) < Z * err + 1e-9, f"{est:.4f} vs {exact:.4f} (se {err:.4f})"


def test_bad_mixtures_are_reported(nets) -> None:
    from rotalumis.core import InferenceError

    with pytest.raises(InferenceError, match="empty"):
        Branching().posterior(10, engine="ic", observe={"obs": 1.0}, network=[])
    with pytest.raises(ValueError, match="one network"):
        Branching().posterior(10, engine="ic", observe={"obs": 1.0}, network=nets,
                              proposal_only=True)  # fmt: skip
    with pytest.raises(ValueError, match="weights"):
        MixtureProposal([lambda m: None], weights=[-1.0])
    with pytest.raises(ValueError, match="one weight per network"):
        Branching().posterior(10, engine="ic", observe={"obs": 1.0}, network=nets,
                              mixture_weights=[1.0])  # fmt: skip
    with pytest.raises(ValueError, match="weights"):
        Branching().posterior(10, engine="ic", observe={"obs": 1.0}, network=nets,
                              mixture_weights=[0.0, 0.0])  # fmt: skip
    with pytest.raises(ValueError, match="at least one"):
        MixtureProposal([])
