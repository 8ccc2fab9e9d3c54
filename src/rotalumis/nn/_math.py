"""Log-densities of the proposal families, differentiable in their parameters (torch).

The same functions score values during training (batched, with gradients) and at
inference time (one value, no gradients), so the proposal a network is trained for is
exactly the one importance sampling uses.
"""

from __future__ import annotations

import math

import torch
from torch.special import log_ndtr

__all__ = [
    "log1mexp",
    "log_ndtr_diff",
    "normal_mixture_log_prob",
    "truncated_normal_mixture_log_prob",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and for very negative ``x``."""
    x = torch.clamp(x, max=-1e-30)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_ndtr_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a < b``, stable in both tails (bounds may be infinite).

    For an interval in the upper tail the symmetric ``Phi(-a) - Phi(-b)`` is used, so the
    larger term is never close to 1 where precision would be lost.
    """
    upper = a > 0
    lo = torch.where(upper, -b, a)
    hi = torch.where(upper, -a, b)
    lhi: torch.Tensor = log_ndtr(hi)
    return lhi + log1mexp(log_ndtr(lo) - lhi)


def _normal_log_prob(x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor) -> torch.Tensor:
    z = (x - means) / stds
    return -0.5 * z * z - torch.log(stds) - _LOG_SQRT_2PI


def normal_mixture_log_prob(
    x: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, logits: torch.Tensor
) -> torch.Tensor:
    """Log-density of a mixture of normals, elementwise.

    Args:
        x: Values, shape ``(..., )``.
        means: Component means, ``(..., K)``.
        stds: Component standard deviations, ``(..., K)``.
        logits: Unnormalised log mixture weights, ``(..., K)``.

    Returns:
        ``log q(x)`` with the shape of ``x``.
    """
    log_w = torch.log_softmax(logits, dim=-1)
    return torch.logsumexp(log_w + _normal_log_prob(x.unsqueeze(-1), means, stds), dim=-1)


def truncated_normal_mixture_log_prob(
    x: torch.Tensor,
    means: torch.Tensor,
    stds: torch.Tensor,
    logits: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
) -> torch.Tensor:
    """Log-density of a mixture of normals each truncated to ``[low, high]``, elementwise.

    ``low``/``high`` have the shape of ``x`` (and may be infinite); values outside the
    interval get ``-inf``.
    """
    lo = low.unsqueeze(-1)
    hi = high.unsqueeze(-1)
    log_z = log_ndtr_diff((lo - means) / stds, (hi - means) / stds)
    log_w = torch.log_softmax(logits, dim=-1)
    lp = torch.logsumexp(log_w + _normal_log_prob(x.unsqueeze(-1), means, stds) - log_z, dim=-1)
    inside = (x >= low) & (x <= high)
    return torch.where(inside, lp, torch.full_like(lp, -math.inf))
