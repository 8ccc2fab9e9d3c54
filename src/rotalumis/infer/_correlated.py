"""Replay for pseudo-marginal MH: the parameters, and (correlated PMMH) part of the noise.

:class:`NuisanceReplay` replays the parameter values like a
:class:`~rotalumis.core.ReplayHandler`. With ``refresh < 1`` it also reuses the nuisance
draws of an earlier run of the same particle: each element of each nuisance draw is redrawn
from its prior with probability ``refresh`` and kept otherwise (the mask is drawn
independently of everything, so the reverse move uses it with the same probability). Kept
elements add ``log p'(z) - log p(z)`` (their density under the new run's distribution minus
under the old one) to :attr:`log_ratio`; redrawn elements cancel between the joint density
and the proposal, like fresh sites. A draw whose shape or support changed is redrawn whole:
a rule symmetric between the move and its reverse (see :mod:`.mcmc`).
"""

from __future__ import annotations

from typing import Any

import torch

from rotalumis.core import RNG, Message, ReplayHandler

__all__ = ["NuisanceReplay"]


class NuisanceReplay(ReplayHandler):
    """Replay ``values`` (the parameters); partially reuse the nuisance draws in :attr:`old`.

    Attributes:
        old: Address -> nuisance site of the earlier run (empty: every draw is fresh).
        refresh: Probability of redrawing each element of a reused nuisance draw.
        rng: The chain's generator (draws the refresh masks).
        log_ratio: Sum over kept elements of ``log p'(z) - log p(z)`` in this run.
    """

    def __init__(self) -> None:
        super().__init__({})
        self.old: dict[str, Message] = {}
        self.refresh = 1.0
        self.rng: RNG | None = None
        self.log_ratio = 0.0

    def reset(self) -> None:
        super().reset()
        self.log_ratio = 0.0

    def process(self, msg: Message) -> None:
        if msg.kind != "sample" or not msg.control or msg.value is not None:
            return
        address = msg.address
        if address in self.values:
            super().process(msg)
            return
        old = self.old.get(address)
        dist = msg.distribution
        if old is None or dist is None or old.distribution is None:
            return
        value = old.value
        if not dist.has_value_shape(value) or not dist.same_support(old.distribution):
            return  # a different variable now: drawn afresh (in both directions)
        rng = self.rng
        assert rng is not None
        if not isinstance(value, torch.Tensor):
            if rng.py.random() >= self.refresh:
                msg.value = value
                self.log_ratio += float(dist.log_prob_sum(value)) - float(old.log_prob)
            return
        keep = torch.rand(value.shape, generator=rng.torch) >= self.refresh
        if not bool(keep.any()):
            return
        fresh = _as_tensor(dist.sample(rng), value)
        msg.value = torch.where(keep, value, fresh)
        change = _as_tensor(dist.log_prob(value), value) - _as_tensor(
            old.distribution.log_prob(value), value
        )
        self.log_ratio += float(torch.where(keep, change, 0.0).sum())


def _as_tensor(x: Any, like: torch.Tensor) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t.expand(like.shape)
