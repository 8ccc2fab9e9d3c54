"""A branching model: the number of latents depends on a Poisson draw."""

from __future__ import annotations

import math

from rotalumis.core import Bernoulli, Model, Normal, Poisson, observe, sample

__all__ = ["Branching"]


class Branching(Model):
    """``n ~ Poisson(rate)``; ``b_i ~ Bernoulli(p)`` for ``i < n``; ``obs ~ Normal(sum b, noise)``.

    The result is ``n``. The exact posterior of ``n`` is computed by enumeration
    (:meth:`exact_posterior`).
    """

    def __init__(self, rate: float = 3.0, p: float = 0.6, noise: float = 1.0) -> None:
        super().__init__("Branching")
        self.rate = float(rate)
        self.p = float(p)
        self.noise = float(noise)

    def forward(self) -> int:
        n = sample(Poisson(self.rate), name="n")
        total = 0
        for _ in range(n):
            total += sample(Bernoulli(self.p))
        observe(Normal(float(total), self.noise), name="obs")
        return int(n)

    def exact_posterior(self, y: float, max_n: int = 80) -> list[float]:
        """``P(n | obs = y)`` for ``n = 0 .. max_n`` (the Poisson tail beyond is negligible)."""
        weights = []
        for n in range(max_n + 1):
            log_pn = n * math.log(self.rate) - self.rate - math.lgamma(n + 1)
            like = 0.0
            for t in range(n + 1):
                log_b = (
                    math.lgamma(n + 1)
                    - math.lgamma(t + 1)
                    - math.lgamma(n - t + 1)
                    + t * math.log(self.p)
                    + (n - t) * math.log1p(-self.p)
                )
                like += math.exp(log_b - 0.5 * ((y - t) / self.noise) ** 2)
            weights.append(math.exp(log_pn) * like)
        z = sum(weights)
        return [w / z for w in weights]
