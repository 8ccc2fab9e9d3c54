"""Models that the PPX tests serve (``rotalumis serve tests/remote/sim_models.py:NAME``).

``ALL_SITES`` lists the eleven PPX distributions with the parameters the all-distributions
model uses, so that the tests can compare the values an engine drew against the exact
moments of those parameters.
"""

from __future__ import annotations

import os
import time

import torch

from rotalumis.core import (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    LogNormal,
    Model,
    Normal,
    Poisson,
    Uniform,
    Weibull,
    factor,
    observe,
    sample,
    tag,
)
from rotalumis.models import UnknownMean

__all__ = [
    "ALL_SITES",
    "AllDistributions",
    "FailsOnce",
    "PauseAtObserve",
    "UnknownMean",
    "UsesFactor",
    "VectorSites",
]

# name -> (distribution class, parameters in PPX order)
ALL_SITES: dict[str, tuple[type, tuple[object, ...]]] = {
    "normal": (Normal, (1.0, 2.0)),
    "uniform": (Uniform, (-1.0, 3.0)),
    "categorical": (Categorical, (torch.tensor([0.2, 0.5, 0.3]),)),
    "poisson": (Poisson, (3.5,)),
    "bernoulli": (Bernoulli, (0.3,)),
    "beta": (Beta, (2.0, 5.0)),
    "exponential": (Exponential, (1.5,)),
    "gamma": (Gamma, (3.0, 2.0)),
    "lognormal": (LogNormal, (0.5, 0.4)),
    "binomial": (Binomial, (10, 0.3)),
    "weibull": (Weibull, (2.0, 1.5)),
}


class AllDistributions(Model):
    """One named site per PPX distribution, an uncontrolled site, a tag and an observation."""

    def __init__(self) -> None:
        super().__init__("AllDistributions")

    def forward(self) -> float:
        total = 0.0
        for name, (cls, params) in ALL_SITES.items():
            total += float(sample(cls(*params), name=name))
        noise = sample(Normal(0.0, 1.0), name="uncontrolled", control=False)
        tag(2.0 * noise, name="tagged")
        observe(Normal(total, 1.0), name="obs")
        return total


class VectorSites(Model):
    """Tensor-valued sites: a 3-vector Normal, a batched Categorical, a vector observation."""

    def __init__(self) -> None:
        super().__init__("VectorSites")

    def forward(self) -> torch.Tensor:
        x = sample(Normal(torch.zeros(3), torch.ones(3)), name="x")
        k = sample(Categorical(torch.full((2, 4), 0.25)), name="k")
        observe(Normal(x, 0.5), name="y")
        return x.sum() + k.sum()


class FailsOnce(Model):
    """Raises inside its first execution (after one sample); fine afterwards."""

    def __init__(self) -> None:
        super().__init__("FailsOnce")
        self.failed = False

    def forward(self) -> float:
        x = sample(Normal(0.0, 1.0), name="x")
        if not self.failed:
            self.failed = True
            raise RuntimeError("simulator bug (on purpose)")
        return x


class UsesFactor(Model):
    """Uses ``factor``, which PPX cannot express."""

    def __init__(self) -> None:
        super().__init__("UsesFactor")

    def forward(self) -> float:
        x = sample(Normal(0.0, 1.0), name="x")
        factor(-(x**2), name="soft")
        return x


class PauseAtObserve(UnknownMean):
    """The unknown-mean model, pausing ``ROTALUMIS_TEST_PAUSE`` seconds after sampling ``mu``.

    Gives fault tests a window in which the server is busy inside an execution.
    """

    def forward(self) -> float:
        mu = sample(Normal(self.prior_mean, self.prior_std), name="mu")
        time.sleep(float(os.environ.get("ROTALUMIS_TEST_PAUSE", "0")))
        for name in self.names:
            observe(Normal(mu, self.likelihood_std), name=name)
        return mu


def exact_moments(name: str) -> tuple[float, float]:
    """Mean and variance of the site ``name`` of :class:`AllDistributions` (the
    distributions' own formulas, which their tests check against SciPy)."""
    cls, params = ALL_SITES[name]
    dist = cls(*params)
    return float(dist.mean), float(dist.variance)
