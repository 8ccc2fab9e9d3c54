"""A two-component Gaussian mixture with a categorical branch."""

from __future__ import annotations

import math

from rotalumis.core import Categorical, Model, Normal, observe, sample

__all__ = ["GaussianMixture"]


class GaussianMixture(Model):
    """``k ~ Categorical(weights)``; ``x ~ Normal(means[k], stds[k])``; ``obs ~ Normal(x, noise)``.

    Latents ``k`` and ``x`` are named; the result is ``x``.
    """

    def __init__(
        self,
        weights: tuple[float, float] = (0.3, 0.7),
        means: tuple[float, float] = (-2.0, 3.0),
        stds: tuple[float, float] = (1.0, 1.5),
        noise: float = 1.0,
    ) -> None:
        super().__init__("GaussianMixture")
        self.weights = list(weights)
        self.means = [float(m) for m in means]
        self.stds = [float(s) for s in stds]
        self.noise = float(noise)

    def forward(self) -> float:
        k = sample(Categorical(self.weights), name="k")
        x = sample(Normal(self.means[k], self.stds[k]), name="x")
        observe(Normal(x, self.noise), name="obs")
        return float(x)

    def exact_posterior(self, y: float) -> dict[str, float]:
        """``P(k=1 | y)``, ``E[x | y]`` and ``sd[x | y]``, exactly."""
        log_w, post = [], []
        for w, m, s in zip(self.weights, self.means, self.stds, strict=True):
            var = s * s + self.noise**2
            log_w.append(math.log(w) - 0.5 * (y - m) ** 2 / var - 0.5 * math.log(2 * math.pi * var))
            prec = 1 / (s * s) + 1 / self.noise**2
            post.append(((m / (s * s) + y / self.noise**2) / prec, 1 / prec))
        top = max(log_w)
        p = [math.exp(lw - top) for lw in log_w]
        p = [q / sum(p) for q in p]
        mean = sum(q * m for q, (m, _) in zip(p, post, strict=True))
        second = sum(q * (v + m * m) for q, (m, v) in zip(p, post, strict=True))
        return {"p_k1": p[1], "mean": mean, "std": math.sqrt(second - mean * mean)}
