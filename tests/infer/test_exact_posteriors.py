"""Every engine on every reference model against its exact posterior.

Tolerances: Z = 5 Monte Carlo standard errors (see ``mc.py``): Kish-ESS standard errors for
importance sampling, batch-means standard errors for MCMC chains. Seeds are fixed, so the
tests are deterministic; a correct engine fails with probability < 1e-6 per comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mc import Z, indicator_stderr, stderr, weighted_mean

from rotalumis.core import Categorical, Model, Normal, observe, sample
from rotalumis.models import (
    Branching,
    GaussianMixture,
    HiddenMarkovModel,
    MarsagliaUnknownMean,
    UnknownMean,
)

ENGINES = {
    # engine: (num_traces, options)
    "is": (20_000, {}),
    "lmh": (20_000, {"burn_in": 500}),
    "rmh": (20_000, {"burn_in": 500, "scale": 0.5}),
}
OBS = [8.0, 9.0]


def arrays(emp, latent: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Values (of the result or a named latent) and normalised weights (None if equal)."""
    e = emp if latent is None else emp.get(latent)
    values = np.asarray(e.to_numpy(), dtype=float)
    w = np.asarray(e.weights, dtype=float)
    weighted = not np.allclose(w, w[0])
    return values, (w if weighted else None)


def check_mean(values, weights, exact: float, what: str) -> None:
    est = weighted_mean(values, weights)
    err = stderr(values, weights)
    assert abs(est - exact) < Z * err + 1e-9, (
        f"{what}: {est:.4f} vs exact {exact:.4f} (se {err:.4f})"
    )


def check_probabilities(values, weights, exact: dict[int, float], what: str) -> None:
    for k, p in exact.items():
        ind = (np.asarray(values) == k).astype(float)
        est = weighted_mean(ind, weights)
        # under the hypothesis (see indicator_stderr); floor: an indicator never hit has se 0
        err = max(indicator_stderr(ind, weights, p), 1e-3)
        assert abs(est - p) < Z * err, f"{what}={k}: {est:.4f} vs exact {p:.4f} (se {err:.4f})"


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("model_cls", [UnknownMean, MarsagliaUnknownMean])
def test_unknown_mean(engine: str, model_cls: type) -> None:
    model = model_cls()
    n, opts = ENGINES[engine]
    post = model.posterior(n, engine=engine, observe=model.observations(OBS), seed=1, **opts)
    mean, std = model.exact_posterior(OBS)
    values, weights = arrays(post)
    check_mean(values, weights, mean, f"{engine} mean")
    second = weighted_mean((values - mean) ** 2, weights)
    check_mean((values - mean) ** 2, weights, std**2, f"{engine} variance ({second:.3f})")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_gaussian_mixture(engine: str) -> None:
    model = GaussianMixture()
    n, opts = ENGINES[engine]
    y = 0.5
    post = model.posterior(n, engine=engine, observe={"obs": y}, seed=2, **opts)
    exact = model.exact_posterior(y)
    values, weights = arrays(post)
    check_mean(values, weights, exact["mean"], f"{engine} E[x]")
    k, kw = arrays(post, "k")
    check_probabilities(k, kw, {1: exact["p_k1"]}, f"{engine} P(k)")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_branching(engine: str) -> None:
    model = Branching()
    n, opts = ENGINES[engine]
    y = 5.0
    post = model.posterior(n, engine=engine, observe={"obs": y}, seed=3, **opts)
    exact = model.exact_posterior(y)
    values, weights = arrays(post)
    check_probabilities(values, weights, {k: exact[k] for k in range(0, 12)}, f"{engine} P(n)")
    check_mean(values, weights, sum(k * p for k, p in enumerate(exact)), f"{engine} E[n]")


@pytest.mark.parametrize(
    ("engine", "num_traces"), [("is", 60_000), ("lmh", 30_000), ("rmh", 30_000)]
)
def test_hmm_marginals(engine: str, num_traces: int) -> None:
    model = HiddenMarkovModel()
    exact = model.exact_marginals().numpy()
    opts = ENGINES[engine][1]
    post = model.posterior(num_traces, engine=engine, observe=model.observations(), seed=4, **opts)
    for t in range(model.num_steps):
        values, weights = arrays(post, f"state{t}")
        check_probabilities(
            values, weights, {s: float(exact[t, s]) for s in range(3)}, f"{engine} state{t}"
        )


def test_prior_engine_matches_prior() -> None:
    model = UnknownMean()
    prior = model.prior(20_000, seed=5)
    values, weights = arrays(prior)
    assert weights is None
    check_mean(values, None, 1.0, "prior mean")
    check_mean((values - 1.0) ** 2, None, 5.0, "prior variance")


class ShapeChanging(Model):
    """The shape of a latent depends on an earlier choice: n ~ Categorical(p), then
    v ~ Normal(0, 1) with n + 1 elements and y ~ Normal(sum(v), 1), so y | n ~ N(0, n + 2)
    and P(n | y) is exact by enumeration. MCMC must draw ``v`` afresh when ``n`` moves (a
    replayed value of the old shape would broadcast silently)."""

    probs = (0.3, 0.3, 0.4)

    def forward(self) -> int:
        n = int(sample(Categorical(list(self.probs)), name="n"))
        v = sample(Normal(torch.zeros(n + 1), 1.0), name="v")
        assert v.shape == (n + 1,)
        observe(Normal(v.sum(), 1.0), name="y")
        return n

    def exact_posterior(self, y: float) -> dict[int, float]:
        joint = {
            n: p * math.exp(-0.5 * y * y / (n + 2)) / math.sqrt(n + 2)
            for n, p in enumerate(self.probs)
        }
        total = sum(joint.values())
        return {n: j / total for n, j in joint.items()}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_latent_whose_shape_depends_on_an_earlier_choice(engine: str) -> None:
    model = ShapeChanging()
    n, opts = ENGINES[engine]
    post = model.posterior(n, engine=engine, observe={"y": 3.0}, seed=6, progress=False, **opts)
    values, weights = arrays(post)
    check_probabilities(values, weights, model.exact_posterior(3.0), f"{engine} P(n)")
