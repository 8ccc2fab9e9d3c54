"""Proposals shared by the MH kernels: prior draws and Gaussian random-walk steps.

A random-walk step for a site drawn from ``dist`` has standard deviation ``scale`` times the
prior standard deviation of ``dist`` (``scale`` itself where that is not finite), elementwise
for tensor values. The step size depends on the distribution, which may differ between the
current and the proposed trace, so :func:`random_walk_log_density` gives the exact density
for the acceptance ratio when the kernel cannot assume it cancels.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rotalumis.core import RNG, Distribution

__all__ = ["check_scale", "random_walk", "random_walk_log_density"]


def check_scale(scale: object, what: str = "scale") -> float:
    """A positive finite step size, or a ``ValueError`` naming ``what``."""
    if isinstance(scale, bool) or not (
        isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)
    ):
        raise ValueError(f"{what} must be a positive number, got {scale!r}")
    return float(scale)


def _step_size(dist: Distribution, scale: float, like: Any) -> Any:
    sd = dist.stddev
    if isinstance(like, torch.Tensor):
        sd_t = torch.as_tensor(sd, dtype=like.dtype)
        return torch.where(torch.isfinite(sd_t), sd_t, torch.ones_like(sd_t)) * scale
    return sd * scale if math.isfinite(sd) else scale


def random_walk(value: Any, dist: Distribution, scale: float, rng: RNG) -> Any:
    """``value`` plus Gaussian noise of ``scale`` prior standard deviations of ``dist``."""
    step = _step_size(dist, scale, value)
    if isinstance(value, torch.Tensor):
        noise = torch.randn(value.shape, generator=rng.torch, dtype=value.dtype)
        return value + step * noise
    return value + step * rng.py.gauss(0.0, 1.0)


def random_walk_log_density(to: Any, frm: Any, dist: Distribution, scale: float) -> float:
    """Log-density of stepping from ``frm`` to ``to`` with :func:`random_walk` (summed over
    elements; the constant ``-log sqrt(2 pi)`` per element is left out, it always cancels)."""
    step = _step_size(dist, scale, frm)
    if isinstance(frm, torch.Tensor):
        z = (torch.as_tensor(to) - frm) / step
        log_step = torch.log(step).expand_as(z)
        return float((-0.5 * z * z - log_step).sum())
    z = (to - frm) / step
    return float(-0.5 * z * z - math.log(step))
