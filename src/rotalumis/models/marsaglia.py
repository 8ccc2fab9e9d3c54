"""The unknown-mean model with its prior drawn by Marsaglia's polar method.

The rejection loop makes the number of random choices vary between executions, which is
what exposes wrong acceptance ratios in trace-based MCMC.
"""

from __future__ import annotations

import math

from rotalumis.core import Normal, Uniform, observe, sample, tag

from .unknown_mean import UnknownMean

__all__ = ["MarsagliaUnknownMean"]


class MarsagliaUnknownMean(UnknownMean):
    """Same posterior as :class:`UnknownMean`; ``mu`` is built from a variable number of
    ``Uniform(-1, 1)`` draws and returned (and tagged ``mu``)."""

    def __init__(self, **kwargs: float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.name = "MarsagliaUnknownMean"

    def standard_normal(self) -> float:
        """One N(0, 1) draw by the polar method (a rejection loop of uniform pairs)."""
        while True:
            u = sample(Uniform(-1.0, 1.0))
            v = sample(Uniform(-1.0, 1.0))
            s = u * u + v * v
            if 0.0 < s < 1.0:
                return float(u * math.sqrt(-2.0 * math.log(s) / s))

    def forward(self) -> float:
        mu = self.prior_mean + self.prior_std * self.standard_normal()
        tag(mu, "mu")
        for name in self.names:
            observe(Normal(mu, self.likelihood_std), name=name)
        return mu
