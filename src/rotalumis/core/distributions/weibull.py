"""The Weibull distribution (inverse-CDF sampler, reparameterizable)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..rng import RNG
from ._params import as_tensors, broadcast_shape, is_number, positive, std_exponential
from .base import Distribution, Param, Value

__all__ = ["Weibull"]

_INF = math.inf
_NEG_INF = -math.inf


class Weibull(Distribution):
    """Weibull distribution with ``scale`` λ > 0 and shape ``concentration`` k > 0, ``x >= 0``.

    The density is ``k/λ (x/λ)^(k-1) exp(-(x/λ)^k)``.

    Args:
        scale: Scale λ, strictly positive (number or tensor).
        concentration: Shape k, strictly positive (number or tensor).

    Raises:
        DistributionError: if a parameter is not positive or not finite.
    """

    __slots__ = ("_concentration", "_scale")

    name: ClassVar[str] = "Weibull"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("scale", "concentration")

    def __init__(self, scale: Param, concentration: Param) -> None:
        ts, tk = type(scale), type(concentration)
        if (
            (ts is float or ts is int)
            and (tk is float or tk is int)
            and 0.0 < scale < _INF
            and 0.0 < concentration < _INF
        ):
            self._scale: Param = float(scale)
            self._concentration: Param = float(concentration)
            return
        self._scale = positive("Weibull", "scale", scale)
        self._concentration = positive("Weibull", "concentration", concentration)

    @property
    def scale(self) -> Param:
        """The scale λ."""
        return self._scale

    @property
    def concentration(self) -> Param:
        """The shape k."""
        return self._concentration

    @property
    def params(self) -> dict[str, Param]:
        return {"scale": self._scale, "concentration": self._concentration}

    @property
    def is_scalar(self) -> bool:
        return type(self._scale) is float and type(self._concentration) is float

    @property
    def mean(self) -> Value:
        lam, k = self._scale, self._concentration
        if type(lam) is float and type(k) is float:
            t = math.log(lam) + math.lgamma(1.0 + 1.0 / k)
            return math.exp(t) if t < 709.0 else _INF
        lam_t, k_t = as_tensors(lam, k)
        return lam_t * torch.lgamma(1.0 + 1.0 / k_t).exp()

    @property
    def variance(self) -> Value:
        lam, k = self._scale, self._concentration
        if type(lam) is float and type(k) is float:
            g1 = math.lgamma(1.0 + 1.0 / k)
            g2 = math.lgamma(1.0 + 2.0 / k)
            # λ²(Γ₂ - Γ₁²) in log space: no overflow for tiny k, no cancellation for large k.
            t = 2.0 * math.log(lam) + g2 + math.log(-math.expm1(2.0 * g1 - g2))
            return math.exp(t) if t < 709.0 else _INF
        lam_t, k_t = as_tensors(lam, k)
        g1_t = torch.lgamma(1.0 + 1.0 / k_t)
        g2_t = torch.lgamma(1.0 + 2.0 / k_t)
        return lam_t * lam_t * g2_t.exp() * -torch.expm1(2.0 * g1_t - g2_t)

    def sample(self, rng: RNG) -> Value:
        lam, k = self._scale, self._concentration
        if type(lam) is float and type(k) is float:
            e = -math.log(1.0 - rng.py.random())
            try:
                return lam * e ** (1.0 / k)
            except OverflowError:  # astronomically large draws of tiny concentrations
                return _INF
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        lam, k = as_tensors(self._scale, self._concentration)
        e = std_exponential(rng, broadcast_shape(lam, k), lam)
        return lam * e.pow(1.0 / k)

    def log_prob(self, value: Value) -> Value:
        lam, k = self._scale, self._concentration
        if (
            type(lam) is float
            and type(k) is float
            and (type(value) is float or type(value) is int or is_number(value))
        ):
            if value > 0.0:
                if value == _INF:
                    return _NEG_INF
                log_y = math.log(value / lam)
                k_log_y = k * log_y
                if k_log_y > 709.0:  # (x/λ)^k overflows: the density is below exp(-1e307)
                    return _NEG_INF
                return math.log(k / lam) + (k - 1.0) * log_y - math.exp(k_log_y)
            if value == 0.0:
                return math.log(k / lam) if k == 1.0 else (_INF if k < 1.0 else _NEG_INF)
            return _NEG_INF
        lam_t, k_t, v = as_tensors(lam, k, value)
        inside = (v >= 0) & (v < _INF)
        y = torch.where(inside, v, 1.0) / lam_t
        lp = (k_t / lam_t).log() + torch.xlogy(k_t - 1.0, y) - y.pow(k_t)
        return torch.where(inside, lp, _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return bool(0.0 <= value < _INF)
        (v,) = as_tensors(value)
        return bool(((v >= 0) & (v < _INF)).all())
