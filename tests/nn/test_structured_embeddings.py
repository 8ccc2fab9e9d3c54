"""Set (DeepSets) and time-series (1-D convolutional, GRU) observation embeddings.

The posterior checks use conjugate models whose observation is one vector: ``N`` i.i.d.
trials of a normal with unknown mean (a set), and a random walk with unknown drift (a time
series: its increments are i.i.d. given the drift). Tolerances: Z = 5 Monte Carlo standard
errors from the Kish ESS (``tests/infer/mc.py``); the ESS floors check that the embedding
let the network learn (at least 5 times the ESS of prior importance sampling).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rotalumis.core import Model, Normal, observe, sample
from rotalumis.nn import (
    EMBEDDINGS,
    InferenceNetwork,
    NetworkConfig,
    ObservationSpec,
    TrainingConfig,
    simulate_batch,
    train_network,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "infer"))
from mc import Z, stderr, weighted_mean

torch.set_num_threads(1)
SMALL = {"lstm_dim": 32, "observation_dim": 32, "address_dim": 8, "value_dim": 4}
PRIOR_STD, NOISE = math.sqrt(5.0), math.sqrt(2.0)


class Trials(Model):
    """``mu ~ N(1, sqrt 5)``; ``n`` i.i.d. trials ``~ N(mu, sqrt 2)`` observed as one set."""

    def __init__(self, n: int = 20) -> None:
        super().__init__("Trials")
        self.n = n

    def forward(self) -> None:
        mu = sample(Normal(1.0, PRIOR_STD), name="mu")
        observe(Normal(mu * torch.ones(self.n), NOISE), name="trials")


class Trend(Model):
    """A linear trend: ``a, b ~ N(0, 2)``; ``y_t = a + b * c_t + N(0, 0.5)`` for ``T`` times
    ``c_t`` evenly spaced in ``[-1/2, 1/2]``, observed as one series (its order matters)."""

    def __init__(self, steps: int = 20) -> None:
        super().__init__("Trend")
        self.times = torch.linspace(-0.5, 0.5, steps, dtype=torch.float64)

    def forward(self) -> None:
        a = sample(Normal(0.0, 2.0), name="a")
        b = sample(Normal(0.0, 2.0), name="b")
        observe(Normal(a + b * self.times, 0.5), name="series")

    def exact(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and standard deviations of ``(a, b)`` (conjugate linear model)."""
        x = np.stack([np.ones(len(self.times)), self.times.numpy()], axis=1)
        cov = np.linalg.inv(np.eye(2) / 4.0 + x.T @ x / 0.25)
        return cov @ (x.T @ y / 0.25), np.sqrt(np.diag(cov))


def test_set_embedding_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    net = InferenceNetwork(
        NetworkConfig(observations=(ObservationSpec("s", (7, 3), "set", dim=8),), **SMALL)
    )
    x = torch.randn(5, 7, 3)
    perm = torch.randperm(7)
    enc = net.observation_encoder
    a, b = enc({"s": x}, 5), enc({"s": x[:, perm]}, 5)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, enc({"s": x + 0.5}, 5))  # but it does read the values


def test_time_series_embeddings_read_the_order() -> None:
    torch.manual_seed(0)
    specs = tuple(ObservationSpec(k, (16, 2), k, dim=8) for k in ("cnn1d", "gru"))
    enc = InferenceNetwork(NetworkConfig(observations=specs, **SMALL)).observation_encoder
    x = torch.randn(3, 16, 2)
    obs = {"cnn1d": x, "gru": x}
    flipped = {"cnn1d": x.flip(1), "gru": x.flip(1)}
    assert not torch.allclose(enc(obs, 3), enc(flipped, 3))


@pytest.mark.parametrize(
    ("kind", "shape", "error"),
    [("set", (2, 3, 4), r"\(N,\) or \(N, F\)"), ("gru", (), r"\(T,\) or \(T, F\)")],
)
def test_bad_shapes_are_named(kind: str, shape: tuple[int, ...], error: str) -> None:
    with pytest.raises(ValueError, match=f"observation 'x'.*{error}"):
        ObservationSpec("x", shape, kind)


def test_features_are_standardised_per_feature() -> None:
    enc = InferenceNetwork(
        NetworkConfig(observations=(ObservationSpec("s", (50, 2), "set"),), **SMALL)
    ).observation_encoder
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(5.0, 1.0, (64, 50)), rng.normal(-100.0, 10.0, (64, 50))], axis=-1)
    enc.fit({"s": x})
    assert np.allclose(enc.mean0.numpy(), [5.0, -100.0], atol=0.5)
    assert np.allclose(enc.std0.numpy(), [1.0, 10.0], rtol=0.1)


def _check(values: np.ndarray, weights: np.ndarray, mean: float, std: float, what: str) -> None:
    for f, exact in ((values, mean), ((values - mean) ** 2, std**2)):
        est, err = weighted_mean(f, weights), stderr(f, weights)
        assert abs(est - exact) < Z * err, f"{what}: {est:.4f} vs {exact:.4f} (se {err:.4f})"


def _trained(model: Model, name: str, kind: str, tmp_path: Path) -> InferenceNetwork:
    config = TrainingConfig(
        num_traces=12_000, batch_size=64, learning_rate=3e-3, valid_size=0, seed=0
    )
    net = train_network(
        model=model, config=config, embeddings={name: kind}, network_sizes=SMALL
    ).network
    net = InferenceNetwork.load(net.save(tmp_path / "net.pt"))  # survives a round trip
    assert net.config.observations[0].embedding == kind
    return net


def test_posterior_with_set_embedding(tmp_path: Path) -> None:
    model = Trials()
    net = _trained(model, "trials", "set", tmp_path)
    y = simulate_batch(model, 1, seed=123).observations["trials"][0]
    post = model.posterior(2000, engine="ic", observe={"trials": y}, seed=1, network=net)
    precision = 1 / PRIOR_STD**2 + len(y) / NOISE**2
    mean = (1 / PRIOR_STD**2 + y.sum() / NOISE**2) / precision
    values = np.asarray(post.get("mu").to_numpy(), dtype=float)
    _check(values, np.asarray(post.weights, dtype=float), mean, precision**-0.5, "mu")
    assert post.ess / len(post) > 0.5, f"ESS/trace {post.ess / len(post):.3f}"


@pytest.mark.parametrize("kind", ["cnn1d", "gru"])
def test_posterior_with_time_series_embedding(kind: str, tmp_path: Path) -> None:
    model = Trend()
    net = _trained(model, "series", kind, tmp_path)
    y = simulate_batch(model, 1, seed=123).observations["series"][0]
    post = model.posterior(2000, engine="ic", observe={"series": y}, seed=1, network=net)
    means, stds = model.exact(y)
    weights = np.asarray(post.weights, dtype=float)
    for i, name in enumerate("ab"):
        values = np.asarray(post.get(name).to_numpy(), dtype=float)
        _check(values, weights, means[i], stds[i], f"{kind} {name}")
    prior_is = model.posterior(2000, engine="is", observe={"series": y}, seed=1)
    assert post.ess > 5 * prior_is.ess, f"{kind}: ESS {post.ess:.0f}, prior IS {prior_is.ess:.0f}"


def test_every_embedding_is_listed() -> None:
    assert set(EMBEDDINGS) == {"ff", "cnn2d", "cnn3d", "set", "cnn1d", "gru"}
