"""Gaussian with unknown mean: the conjugate model every engine must get exactly right."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rotalumis.core import Model, Normal, observe, sample

__all__ = ["UnknownMean"]


class UnknownMean(Model):
    """``mu ~ Normal(1, sqrt 5)``; ``obs_i ~ Normal(mu, sqrt 2)`` for ``i < num_obs``.

    Observations are named ``obs0``, ``obs1``, ...; the latent ``mu`` is also the result.

    Args:
        prior_mean: Prior mean of ``mu``.
        prior_std: Prior standard deviation of ``mu``.
        likelihood_std: Standard deviation of each observation.
        num_obs: Number of observations.
    """

    def __init__(
        self,
        prior_mean: float = 1.0,
        prior_std: float = math.sqrt(5.0),
        likelihood_std: float = math.sqrt(2.0),
        num_obs: int = 2,
    ) -> None:
        super().__init__("UnknownMean")
        self.prior_mean = float(prior_mean)
        self.prior_std = float(prior_std)
        self.likelihood_std = float(likelihood_std)
        self.names = [f"obs{i}" for i in range(num_obs)]

    def forward(self) -> float:
        mu = sample(Normal(self.prior_mean, self.prior_std), name="mu")
        s = self.likelihood_std
        for name in self.names:
            observe(Normal(mu, s), name=name)
        return float(mu)

    def observations(self, values: Sequence[float]) -> dict[str, float]:
        """The ``observe=`` mapping for these observed values."""
        return dict(zip(self.names, (float(v) for v in values), strict=True))

    def exact_posterior(self, values: Sequence[float]) -> tuple[float, float]:
        """Posterior mean and standard deviation of ``mu`` (conjugate normal update)."""
        precision = 1.0 / self.prior_std**2 + len(values) / self.likelihood_std**2
        mean = (self.prior_mean / self.prior_std**2 + sum(values) / self.likelihood_std**2) / (
            precision
        )
        return mean, math.sqrt(1.0 / precision)
