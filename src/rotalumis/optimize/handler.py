"""The handler that makes a model's random choices differentiable in its parameters."""

from __future__ import annotations

from typing import Literal

import torch

from rotalumis.core.runtime import Handler, Message, current_rng

__all__ = ["GradientHandler"]


class GradientHandler(Handler):
    """Chooses how each random choice passes gradients to the design parameters.

    For a ``sample`` site (or an ``observe`` site without data, which simulates data) whose
    distribution has tensor parameters:

    * **pathwise**: a continuous kind with a reparameterized sampler draws
      ``value = dist.rsample(rng)``, so gradients flow through the value itself;
    * **score function**: any other kind (discrete ones: ``Categorical``, ``Poisson``,
      ``Bernoulli``, ``Binomial``) draws a value without gradient and records its
      differentiable ``log p(value)``; the sum over such sites, :attr:`score_log_prob`,
      feeds the score-function term ``(L - b) * grad log p`` of the estimator.

    Sites with plain-number parameters cannot depend on tensors and keep the fast scalar
    path; sites that already have a value (data, or a value chosen by an inner handler) are
    left alone.

    Args:
        mode: ``"auto"`` (pathwise where possible) or ``"score"`` (score function everywhere,
            for simulators whose code is not differentiable in its random numbers).

    Example:
        >>> import torch
        >>> from rotalumis.core import RNG, Normal, model, sample
        >>> @model
        ... def sim(mu):
        ...     return sample(Normal(mu, 1.0))
        >>> mu = torch.tensor(0.5, requires_grad=True)
        >>> with GradientHandler():
        ...     x = sim.execute(RNG(0), mu)
        >>> x.requires_grad
        True
    """

    def __init__(self, mode: Literal["auto", "score"] = "auto") -> None:
        super().__init__()
        if mode not in ("auto", "score"):
            raise ValueError(f"GradientHandler: mode must be 'auto' or 'score', got {mode!r}")
        self.mode = mode
        self.score_log_prob: torch.Tensor | float = 0.0
        self.pathwise_sites: list[str] = []
        self.score_sites: list[str] = []

    def reset(self) -> None:
        """Forget the current execution's sites (call before each execution)."""
        self.score_log_prob = 0.0
        self.pathwise_sites = []
        self.score_sites = []

    def process(self, msg: Message) -> None:
        dist = msg.distribution
        if dist is None or msg.value is not None or msg.kind not in ("sample", "observe"):
            return
        if dist.is_scalar:
            return
        rng = current_rng()
        if self.mode == "auto" and dist.has_rsample:
            msg.value = dist.rsample(rng)
            self.pathwise_sites.append(msg.address)
            return
        with torch.no_grad():
            value = dist.sample(rng)
        msg.value = value
        log_prob = dist.log_prob_sum(value)
        msg.log_prob = log_prob
        if isinstance(log_prob, torch.Tensor) and log_prob.requires_grad:
            self.score_log_prob = self.score_log_prob + log_prob
            self.score_sites.append(msg.address)
