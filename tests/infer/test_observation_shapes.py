"""Observed values must have the shape of their site (issue 12, defect 5).

Before, a vector for a scalar site was scored as i.i.d. draws without a word, an empty list
conditioned on nothing, a (2, 3) value for a (3,) site broadcast, and ``[1, 2]`` for a (3,)
site was a raw torch traceback. There are no implicit i.i.d. semantics: a model that
observes several i.i.d. values says so with the site's shape (``dist.expand((n,))``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mc import Z, is_stderr

from rotalumis import Model, Normal, ObservationError, model, observe, sample

PRIOR_MEAN, PRIOR_VAR, NOISE_VAR = 1.0, 5.0, 2.0


class IID(Model):
    """``n`` i.i.d. observations of one site, declared by the site's shape."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self) -> float:
        mu = sample(Normal(PRIOR_MEAN, math.sqrt(PRIOR_VAR)), name="mu")
        observe(Normal(mu, math.sqrt(NOISE_VAR)).expand((self.n,)), name="y")
        return mu


@model
def scalar_and_vector() -> float:
    mu = sample(Normal(0.0, 1.0), name="mu")
    observe(Normal(mu, 1.0), name="y")
    observe(Normal(mu * torch.ones(3), 1.0), name="v")
    return mu


def test_iid_observations_through_the_site_shape_give_the_exact_posterior() -> None:
    y = [7.0, 9.5, 8.0, 6.5, 9.0]
    post = IID(len(y)).posterior(20_000, observe={"y": y}, seed=0)
    precision = 1 / PRIOR_VAR + len(y) / NOISE_VAR
    exact = (PRIOR_MEAN / PRIOR_VAR + sum(y) / NOISE_VAR) / precision
    values = np.asarray(post.get("mu").to_numpy(), dtype=float)
    weights = np.asarray(post.weights, dtype=float)
    # Z Monte Carlo standard errors (Kish ESS of the weights)
    assert float(post.get("mu").mean) == pytest.approx(exact, abs=Z * is_stderr(values, weights))
    with pytest.raises(ObservationError, match=r"have shape \(4,\), but the site .* \(5,\)"):
        IID(5).posterior(10, observe={"y": y[:4]}, seed=0)


@pytest.mark.parametrize(
    "observed",
    [
        {"y": 0.5, "v": [1.0, 2.0, 3.0]},
        {"y": torch.tensor(0.5), "v": torch.tensor([1.0, 2.0, 3.0])},
        {"y": [0.5], "v": np.array([1.0, 2.0, 3.0])},  # one element stands for a number
        {"y": np.float64(0.5), "v": [1, 2, 3]},
    ],
    ids=["numbers-lists", "tensors", "one-element-list", "numpy"],
)
def test_values_of_the_right_shape_are_accepted(observed: dict[str, object]) -> None:
    a = scalar_and_vector.posterior(200, observe=observed, seed=3)
    b = scalar_and_vector.posterior(200, observe={"y": 0.5, "v": [1.0, 2.0, 3.0]}, seed=3)
    assert np.allclose(a.log_weights, b.log_weights)


@pytest.mark.parametrize("engine", ["is", "prior", "lmh", "rmh"])
@pytest.mark.parametrize(
    ("observed", "message"),
    [
        ({"y": [0.5, 0.7]}, "observation 'y': the data have shape (2,), but the site"),
        ({"y": []}, "the data have shape (0,)"),
        ({"v": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}, "have shape (2, 3), but the site"),
        ({"v": [1.0, 2.0]}, "have shape (2,), but the site"),
        ({"v": 1.0}, "the data are a number, but the site"),
    ],
    ids=["vector-for-scalar", "empty", "matrix-for-vector", "short-vector", "number-for-vector"],
)
def test_mismatched_shapes_name_the_site_and_both_shapes(
    engine: str, observed: dict[str, object], message: str
) -> None:
    with pytest.raises(ObservationError) as info:
        scalar_and_vector.posterior(50, engine=engine, observe=observed, seed=0)
    text = str(info.value)
    assert message in text and "__Normal__1" in text
    if "v" in observed:
        assert "draws values of shape (3,)" in text
    else:
        assert "draws a number" in text and "expand" in text  # says how to observe i.i.d.


def test_a_clamped_latent_is_checked_too() -> None:
    with pytest.raises(ObservationError, match="'mu': the data have shape"):
        scalar_and_vector.get_trace(seed=0, observe={"mu": [0.1, 0.2]})
