"""The Normal (Gaussian) distribution."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..errors import DistributionError
from ..rng import RNG
from .base import LOG_SQRT_2PI, Distribution, Param, Value, as_param

__all__ = ["Normal"]


class Normal(Distribution):
    """Normal distribution with mean ``mean`` and standard deviation ``stddev`` > 0.

    Args:
        mean: Location (number or tensor).
        stddev: Scale, strictly positive (number or tensor).

    Raises:
        DistributionError: if ``stddev`` is not positive or a parameter is not finite.

    Example:
        >>> from rotalumis.core.rng import RNG
        >>> Normal(0.0, 1.0).log_prob(0.0)  # doctest: +ELLIPSIS
        -0.918938...
    """

    __slots__ = ("_mean", "_stddev")

    name: ClassVar[str] = "Normal"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("mean", "stddev")

    def __init__(self, mean: Param, stddev: Param) -> None:
        # Fast path: plain floats skip the generic normalisation entirely.
        if type(mean) is float and type(stddev) is float:
            if not (stddev > 0.0 and stddev < math.inf) or mean != mean or math.isinf(mean):
                _check_scalar(mean, stddev)
            self._mean: Param = mean
            self._stddev: Param = stddev
            return
        m = as_param("Normal", "mean", mean)
        s = as_param("Normal", "stddev", stddev)
        if isinstance(s, torch.Tensor):
            if not bool((s.detach() > 0).all()):
                raise DistributionError(f"Normal: parameter 'stddev' must be > 0, got {s}")
        elif not s > 0.0:
            raise DistributionError(f"Normal: parameter 'stddev' must be > 0, got {s}")
        self._mean = m
        self._stddev = s

    @property
    def params(self) -> dict[str, Param]:
        return {"mean": self._mean, "stddev": self._stddev}

    @property
    def is_scalar(self) -> bool:
        return not isinstance(self._mean, torch.Tensor) and not isinstance(
            self._stddev, torch.Tensor
        )

    @property
    def mean(self) -> Value:
        m = self._mean
        if isinstance(m, torch.Tensor) or not isinstance(self._stddev, torch.Tensor):
            return m
        return torch.full_like(self._stddev, m)

    @property
    def variance(self) -> Value:
        s = self._stddev
        return s * s if isinstance(s, torch.Tensor) else s * s

    @property
    def stddev(self) -> Value:
        return self._stddev

    def sample(self, rng: RNG) -> Value:
        m, s = self._mean, self._stddev
        if type(m) is float and type(s) is float:
            return rng.py.gauss(m, s)
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        m = torch.as_tensor(self._mean, dtype=torch.get_default_dtype())
        s = torch.as_tensor(self._stddev, dtype=torch.get_default_dtype())
        shape = torch.broadcast_shapes(m.shape, s.shape)
        eps = torch.randn(shape, generator=rng.torch, dtype=m.dtype)
        return m + s * eps

    def log_prob(self, value: Value) -> Value:
        m, s = self._mean, self._stddev
        if type(m) is float and type(s) is float and not isinstance(value, torch.Tensor):
            z = (value - m) / s
            return -0.5 * z * z - math.log(s) - LOG_SQRT_2PI
        v = torch.as_tensor(value, dtype=torch.get_default_dtype())
        z = (v - m) / s
        log_s = s.log() if isinstance(s, torch.Tensor) else math.log(s)
        return -0.5 * z * z - log_s - LOG_SQRT_2PI

    def in_support(self, value: Value) -> bool:
        if isinstance(value, torch.Tensor):
            return bool(torch.isfinite(value).all())
        return math.isfinite(value)


def _check_scalar(mean: float, stddev: float) -> None:
    if not math.isfinite(mean):
        raise DistributionError(f"Normal: parameter 'mean' must be finite, got {mean}")
    raise DistributionError(f"Normal: parameter 'stddev' must be > 0 and finite, got {stddev}")
