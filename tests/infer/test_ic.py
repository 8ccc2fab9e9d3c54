"""The "ic" engine: trained networks give exact-posterior estimates and a far larger ESS.

Tolerances: Z = 5 Monte Carlo standard errors from the Kish effective sample size (see
``mc.py``); seeds are fixed, so each test is deterministic. Importance sampling with any
proposal is consistent, so these check the weights (``log p - log q``); the ESS comparison
checks that the network learnt something: ESS per trace at least 10 times that of prior
importance sampling with the same number of traces. Training budgets are small (seconds;
the HMM, with 16 choices per trace, about half a minute).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from mc import Z, stderr, weighted_mean

from rotalumis.models import Branching, GaussianMixture, HiddenMarkovModel, UnknownMean
from rotalumis.nn import InferenceNetwork, TrainingConfig, UnseenAddressWarning, train_network

torch.set_num_threads(1)
NUM_TRACES = 2000


def trained(model, num_traces: int, seed: int, batch_size: int = 32) -> InferenceNetwork:
    config = TrainingConfig(
        num_traces=num_traces,
        batch_size=batch_size,
        learning_rate=3e-3,
        valid_size=0,
        seed=seed,
    )
    return train_network(model=model, config=config).network


def arrays(emp, latent: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    e = emp if latent is None else emp.get(latent)
    return np.asarray(e.to_numpy(), dtype=float), np.asarray(e.weights, dtype=float)


def ess_per_trace(emp) -> float:
    return float(emp.ess) / len(emp)


def check_mean(values, weights, exact: float, what: str) -> None:
    est, err = weighted_mean(values, weights), stderr(values, weights)
    assert abs(est - exact) < Z * err + 1e-9, f"{what}: {est:.4f} vs {exact:.4f} (se {err:.4f})"


def check_probabilities(values, weights, exact: dict[int, float], what: str) -> None:
    for k, p in exact.items():
        ind = (values == k).astype(float)
        est, err = weighted_mean(ind, weights), max(stderr(ind, weights), 1e-3)
        assert abs(est - p) < Z * err, f"{what}={k}: {est:.4f} vs {p:.4f} (se {err:.4f})"


def check_ess_gain(model, observe: dict, ic, seed: int) -> None:
    prior_is = model.posterior(len(ic), engine="is", observe=observe, seed=seed, progress=False)
    gain = ess_per_trace(ic) / ess_per_trace(prior_is)
    assert gain >= 10, f"ESS/trace: ic {ess_per_trace(ic):.4f}, is {ess_per_trace(prior_is):.5f}"


def test_unknown_mean() -> None:
    model = UnknownMean()
    net = trained(model, 16_000, seed=1)
    obs = model.observations([8.0, 9.0])
    post = model.posterior(NUM_TRACES, engine="ic", observe=obs, seed=1, network=net)
    mean, std = model.exact_posterior([8.0, 9.0])
    values, weights = arrays(post)
    check_mean(values, weights, mean, "mean")
    check_mean((values - mean) ** 2, weights, std**2, "variance")
    check_ess_gain(model, obs, post, seed=1)
    assert post.info.engine == "ic" and post.info.prior_fallback_fraction == 0.0


def test_gaussian_mixture() -> None:
    model = GaussianMixture()
    net = trained(model, 16_000, seed=2)
    y = 7.0  # in the tail of the prior predictive: prior IS has an ESS/trace of about 0.07
    post = model.posterior(NUM_TRACES, engine="ic", observe={"obs": y}, seed=2, network=net)
    exact = model.exact_posterior(y)
    values, weights = arrays(post)
    check_mean(values, weights, exact["mean"], "E[x]")
    check_mean((values - exact["mean"]) ** 2, weights, exact["std"] ** 2, "Var[x]")
    k, kw = arrays(post, "k")
    check_probabilities(k, kw, {1: exact["p_k1"]}, "P(k)")
    check_ess_gain(model, {"obs": y}, post, seed=2)


def test_branching() -> None:
    model = Branching(noise=0.5)  # a sharp likelihood: prior IS has an ESS/trace of about 0.05
    net = trained(model, 20_000, seed=3)
    y = 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnseenAddressWarning)  # rare long traces
        post = model.posterior(NUM_TRACES, engine="ic", observe={"obs": y}, seed=3, network=net)
    exact = model.exact_posterior(y)
    values, weights = arrays(post)
    check_probabilities(values, weights, {n: exact[n] for n in range(20)}, "P(n)")
    check_mean(values, weights, sum(n * p for n, p in enumerate(exact)), "E[n]")
    check_ess_gain(model, {"obs": y}, post, seed=3)


def test_hidden_markov_model() -> None:
    model = HiddenMarkovModel()
    net = trained(model, 30_000, seed=4)
    obs = model.observations()
    post = model.posterior(NUM_TRACES, engine="ic", observe=obs, seed=4, network=net)
    exact = model.exact_marginals().numpy()
    for t in range(model.num_steps):
        values, weights = arrays(post, f"state{t}")
        check_probabilities(values, weights, {s: float(exact[t, s]) for s in range(3)}, f"s{t}")
    check_ess_gain(model, obs, post, seed=4)


def test_unseen_addresses_fall_back_to_the_prior_with_a_warning() -> None:
    # Trained where n is almost always small, then asked about data that need a large n:
    # the Bernoulli choices beyond those seen in training come from the prior.
    net = trained(Branching(rate=0.5), 512, seed=5)
    model = Branching()
    with pytest.warns(UnseenAddressWarning, match="Bernoulli"):
        post = model.posterior(NUM_TRACES, engine="ic", observe={"obs": 4.0}, seed=5, network=net)
    assert post.info.unseen_addresses
    assert 0 < post.info.prior_fallback_fraction < 1
    exact = model.exact_posterior(4.0)
    values, weights = arrays(post)
    check_mean(values, weights, sum(n * p for n, p in enumerate(exact)), "E[n]")  # weights ok


def test_missing_network_and_observation_are_reported() -> None:
    from rotalumis.core import InferenceError, ObservationError

    model = UnknownMean()
    with pytest.raises(InferenceError, match="network"):
        model.posterior(10, engine="ic", observe={"obs0": 1.0, "obs1": 1.0})
    net = trained(model, 64, seed=6)
    with pytest.raises(ObservationError, match="obs1"):
        model.posterior(10, engine="ic", observe={"obs0": 1.0}, network=net)


def test_seeded_runs_are_reproducible() -> None:
    model = GaussianMixture()
    net = trained(model, 256, seed=7)
    a = model.posterior(100, engine="ic", observe={"obs": 1.0}, seed=8, network=net)
    b = model.posterior(100, engine="ic", observe={"obs": 1.0}, seed=8, network=net)
    assert a.log_weights.tolist() == b.log_weights.tolist()
    assert all(math.isfinite(w) for w in a.log_weights.tolist())


def test_remote_ppx_model() -> None:
    import threading

    from rotalumis.remote.client import RemoteModel
    from rotalumis.remote.server import PPXServer
    from rotalumis.remote.transport import memory_pair

    client, server_end = memory_pair(timeout=30.0)
    server = PPXServer(UnknownMean(), server_end, seed=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = RemoteModel(transport=client, name="UnknownMean")
        net = trained(remote, 4096, seed=9)  # online training through PPX messages
        with pytest.raises(ValueError, match="one connection"):  # no forked copies of it
            train_network(model=remote, config=TrainingConfig(num_traces=64), workers=2)
        obs = UnknownMean().observations([8.0, 9.0])
        post = remote.posterior(500, engine="ic", observe=obs, seed=9, network=net)
        mean, _ = UnknownMean().exact_posterior([8.0, 9.0])
        values, weights = arrays(post)
        check_mean(values, weights, mean, "remote mean")
        assert post.info.prior_fallback_fraction == 0.0
    finally:
        server.stop()
        client.close()
        thread.join(timeout=10)
