"""Models whose random choices change support with earlier choices, with exact posteriors.

Each :class:`Case` holds a model, its data, ``parent`` (the name of the choice that moves the
other's support) and the exact posterior means of its named latents, by enumeration or
quadrature. Kinds of support change covered: the range of an index (``random.randrange(n)``
intercepted, and a native ``Categorical`` with ``n`` categories), the count range of a
``Binomial(n, p)``, and the bounds of a ``Uniform`` set by a discrete and by a continuous
earlier choice.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from rotalumis.core import Binomial, Categorical, Model, Normal, Uniform, observe, sample
from rotalumis.intercept import InterceptedModel

Y = 1.875  # the reproduction: observe n - j through Normal(., 0.3) at 1.875
SD = 0.3


@dataclass(frozen=True)
class Case:
    model: Model
    observe: dict[str, float]
    parent: str
    exact: Callable[[], dict[str, float]]


def _range_posterior(prior_j: Callable[[int], dict[int, float]]) -> dict[str, float]:
    """For n uniform on 1..8, j | n ~ prior_j(n), y ~ Normal(n - j, SD): E[j | y], and the
    mean of the latent named ``n``, which is the index drawn, ``n - 1`` (the result is n)."""
    joint = {
        (n, j): pj / 8 * math.exp(-0.5 * ((Y - (n - j)) / SD) ** 2)
        for n in range(1, 9)
        for j, pj in prior_j(n).items()
    }
    z = sum(joint.values())
    return {
        "n": sum((n - 1) * w for (n, _), w in joint.items()) / z,
        "result": sum(n * w for (n, _), w in joint.items()) / z,
        "j": sum(j * w for (_, j), w in joint.items()) / z,
    }


def _uniform_index(n: int) -> dict[int, float]:
    return {j: 1.0 / n for j in range(n)}


def _binomial_count(n: int) -> dict[int, float]:
    return {k: float(stats.binom.pmf(k, n, 0.5)) for k in range(n + 1)}


def _simulate_range() -> tuple[int, int]:
    """Plain ``random`` code: an index into a range whose length is random."""
    n = random.randint(1, 8)
    j = random.randrange(n)  # no draw at all for n == 1 (randrange(1) is always 0)
    return n, j


INTERCEPTED_RANGE = InterceptedModel(
    _simulate_range,
    observe={"y": lambda out: Normal(float(out[0] - out[1]), SD)},
    names={"n": "randint", "j": "randrange"},  # n's address has both; the first match wins
    result=lambda out: out[0],
    name="InterceptedRange",
)


class CategoricalLength(Model):
    """``j ~ Categorical`` over ``n`` equally likely categories, ``n`` uniform on 1..8."""

    def forward(self) -> int:
        n = 1 + sample(Categorical([1.0] * 8), name="n")
        j = sample(Categorical([1.0] * n), name="j")
        observe(Normal(float(n - j), SD), name="y")
        return n


class BinomialCount(Model):
    """``j ~ Binomial(n, 0.5)``: the range ``0..n`` of the count moves with ``n``."""

    def forward(self) -> int:
        n = 1 + sample(Categorical([1.0] * 8), name="n")
        j = sample(Binomial(n, 0.5), name="j")
        observe(Normal(float(n - j), SD), name="y")
        return n


B_PROBS = (0.3, 0.3, 0.4)
B_Y, B_SD = 1.2, 0.25


class DiscreteBound(Model):
    """``x ~ Uniform(0, b + 1)`` with ``b ~ Categorical``; ``y ~ Normal(x, 0.25)``."""

    def forward(self) -> float:
        b = sample(Categorical(list(B_PROBS)), name="b")
        x = sample(Uniform(0.0, b + 1.0), name="x")
        observe(Normal(x, B_SD), name="y")
        return x


def _discrete_bound_exact() -> dict[str, float]:
    # p(b, x | y) ∝ P(b) / (b + 1) N(y; x, sd) on 0 < x < b + 1: integrate x in closed form
    lo = stats.norm.cdf(0.0, B_Y, B_SD)
    mass, mean_x = [], []
    for b, pb in enumerate(B_PROBS):
        hi = b + 1.0
        z = stats.norm.cdf(hi, B_Y, B_SD) - lo
        mass.append(pb / hi * z)
        mean_x.append(_truncated_normal_mean(B_Y, B_SD, 0.0, hi))  # E[x | b, y]
    w = np.array(mass) / sum(mass)
    return {"b": float(w @ np.arange(3)), "x": float(w @ np.array(mean_x))}


A_LOW, A_HIGH, A_Y, A_SD = 0.5, 3.0, 1.0, 0.2


class ContinuousBound(Model):
    """``x ~ Uniform(0, a)`` with ``a ~ Uniform(0.5, 3)``; ``y ~ Normal(x, 0.2)``: every
    move of ``a`` changes ``x``'s support."""

    def forward(self) -> float:
        a = sample(Uniform(A_LOW, A_HIGH), name="a")
        x = sample(Uniform(0.0, a), name="x")
        observe(Normal(x, A_SD), name="y")
        return x


def _truncated_normal_mean(mean: float, sd: float, low: Any, high: Any) -> Any:
    alpha, beta = (low - mean) / sd, (high - mean) / sd
    mass = stats.norm.cdf(beta) - stats.norm.cdf(alpha)
    return mean + sd * (stats.norm.pdf(alpha) - stats.norm.pdf(beta)) / mass


@functools.cache
def _continuous_bound_exact() -> dict[str, float]:
    # p(a | y) ∝ (1 / a) P(0 < x < a) under N(y, sd) for x: quadrature on a fine grid in a
    a = np.linspace(A_LOW, A_HIGH, 100_001)
    dens = (stats.norm.cdf(a, A_Y, A_SD) - stats.norm.cdf(0.0, A_Y, A_SD)) / a
    mean_x = _truncated_normal_mean(A_Y, A_SD, 0.0, a)  # E[x | a, y]
    w = dens / dens.sum()
    return {"a": float(w @ a), "x": float(w @ mean_x)}


CASES: dict[str, Case] = {
    "intercepted_range": Case(
        INTERCEPTED_RANGE, {"y": Y}, "n", lambda: _range_posterior(_uniform_index)
    ),
    "categorical_length": Case(
        CategoricalLength(), {"y": Y}, "n", lambda: _range_posterior(_uniform_index)
    ),
    "binomial_count": Case(
        BinomialCount(), {"y": Y}, "n", lambda: _range_posterior(_binomial_count)
    ),
    "discrete_bound": Case(DiscreteBound(), {"y": B_Y}, "b", _discrete_bound_exact),
    "continuous_bound": Case(ContinuousBound(), {"y": A_Y}, "a", _continuous_bound_exact),
}


def latent_values(post: Any, name: str) -> np.ndarray:
    """The chain of latent ``name`` (``"result"``: the result); ``j`` missing (no draw for
    ``n == 1``) counts as 0."""
    if name == "result":
        return np.asarray(post.to_numpy(), dtype=float)
    col = post.get(name)
    if len(col) == len(post):
        return np.asarray(col.to_numpy(), dtype=float)
    if name != "j":
        raise AssertionError(f"latent {name} missing from some samples")
    n = latent_values(post, "result")
    out = np.zeros(len(post))
    out[n > 1] = np.asarray(col.to_numpy(), dtype=float)
    assert len(col) == int((n > 1).sum())
    return out
