"""The Gamma and Beta distributions (gamma-variate based samplers).

Scalar draws use the Marsaglia–Tsang sampler of :mod:`._sampling`; tensor draws use
``torch._standard_gamma`` with the explicit generator, whose implicit reparameterization
gradients make both kinds differentiable in their parameters.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..rng import RNG
from ._params import as_tensors, broadcast_shape, is_number, positive, std_gamma
from ._sampling import gamma_variate
from .base import Distribution, Param, Value

__all__ = ["Beta", "Gamma"]

_INF = math.inf
_NEG_INF = -math.inf


def _all(t: torch.Tensor) -> bool:
    return bool(t.all())


def _scalar_xlogy(a: float, x: float) -> float:
    """``a * log(x)`` with ``0 * log(0) = 0`` (``x >= 0``)."""
    if x > 0.0:
        return a * math.log(x)
    if a == 0.0:
        return 0.0
    return _NEG_INF if a > 0.0 else _INF


class Gamma(Distribution):
    """Gamma distribution with shape ``concentration`` α > 0 and ``rate`` β > 0, ``x >= 0``.

    The density is ``β^α x^(α-1) exp(-β x) / Γ(α)``; the mean is ``α / β``.

    Args:
        concentration: Shape α, strictly positive (number or tensor).
        rate: Rate β (inverse scale), strictly positive (number or tensor).

    Raises:
        DistributionError: if a parameter is not positive or not finite.

    Example:
        >>> Gamma(2.0, 1.0).mean
        2.0
    """

    __slots__ = ("_concentration", "_rate")

    name: ClassVar[str] = "Gamma"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("concentration", "rate")

    def __init__(self, concentration: Param, rate: Param) -> None:
        tc, tr = type(concentration), type(rate)
        if (
            (tc is float or tc is int)
            and (tr is float or tr is int)
            and 0.0 < concentration < _INF
            and 0.0 < rate < _INF
        ):
            self._concentration: Param = float(concentration)
            self._rate: Param = float(rate)
            return
        self._concentration = positive("Gamma", "concentration", concentration)
        self._rate = positive("Gamma", "rate", rate)

    @property
    def concentration(self) -> Param:
        """The shape α."""
        return self._concentration

    @property
    def rate(self) -> Param:
        """The rate β."""
        return self._rate

    @property
    def params(self) -> dict[str, Param]:
        return {"concentration": self._concentration, "rate": self._rate}

    @property
    def is_scalar(self) -> bool:
        return type(self._concentration) is float and type(self._rate) is float

    @property
    def mean(self) -> Value:
        a, r = self._concentration, self._rate
        if type(a) is float and type(r) is float:
            return a / r
        a_t, r_t = as_tensors(a, r)
        return a_t / r_t

    @property
    def variance(self) -> Value:
        a, r = self._concentration, self._rate
        if type(a) is float and type(r) is float:
            return a / (r * r)
        a_t, r_t = as_tensors(a, r)
        return a_t / (r_t * r_t)

    def sample(self, rng: RNG) -> Value:
        a, r = self._concentration, self._rate
        if type(a) is float and type(r) is float:
            return gamma_variate(rng.py.random, a) / r
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        a, r = as_tensors(self._concentration, self._rate)
        return std_gamma(rng, broadcast_shape(a, r), a) / r

    def log_prob(self, value: Value) -> Value:
        a, r = self._concentration, self._rate
        if (
            type(a) is float
            and type(r) is float
            and (type(value) is float or type(value) is int or is_number(value))
        ):
            if not 0.0 <= value < _INF:
                return _NEG_INF
            return a * math.log(r) + _scalar_xlogy(a - 1.0, value) - r * value - math.lgamma(a)
        a_t, r_t, v = as_tensors(a, r, value)
        inside = (v >= 0) & (v < _INF)
        v = torch.where(inside, v, 1.0)
        lp = a_t * r_t.log() + torch.xlogy(a_t - 1.0, v) - r_t * v - torch.lgamma(a_t)
        return torch.where(inside, lp, _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return bool(0.0 <= value < _INF)
        (v,) = as_tensors(value)
        return _all((v >= 0) & (v < _INF))


class Beta(Distribution):
    """Beta distribution on ``[0, 1]`` with shapes ``concentration1`` α and ``concentration0`` β.

    The density is ``x^(α-1) (1-x)^(β-1) / B(α, β)``; the mean is ``α / (α + β)``.

    Args:
        concentration1: α, the exponent of ``x``, strictly positive (number or tensor).
        concentration0: β, the exponent of ``1 - x``, strictly positive (number or tensor).

    Raises:
        DistributionError: if a parameter is not positive or not finite.
    """

    __slots__ = ("_concentration0", "_concentration1")

    name: ClassVar[str] = "Beta"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("concentration1", "concentration0")

    def __init__(self, concentration1: Param, concentration0: Param) -> None:
        t1, t0 = type(concentration1), type(concentration0)
        if (
            (t1 is float or t1 is int)
            and (t0 is float or t0 is int)
            and 0.0 < concentration1 < _INF
            and 0.0 < concentration0 < _INF
        ):
            self._concentration1: Param = float(concentration1)
            self._concentration0: Param = float(concentration0)
            return
        self._concentration1 = positive("Beta", "concentration1", concentration1)
        self._concentration0 = positive("Beta", "concentration0", concentration0)

    @property
    def concentration1(self) -> Param:
        """α, the exponent of ``x``."""
        return self._concentration1

    @property
    def concentration0(self) -> Param:
        """β, the exponent of ``1 - x``."""
        return self._concentration0

    @property
    def params(self) -> dict[str, Param]:
        return {"concentration1": self._concentration1, "concentration0": self._concentration0}

    @property
    def is_scalar(self) -> bool:
        return type(self._concentration1) is float and type(self._concentration0) is float

    @property
    def mean(self) -> Value:
        a, b = self._concentration1, self._concentration0
        if type(a) is float and type(b) is float:
            return a / (a + b)
        a_t, b_t = as_tensors(a, b)
        return a_t / (a_t + b_t)

    @property
    def variance(self) -> Value:
        a, b = self._concentration1, self._concentration0
        if type(a) is float and type(b) is float:
            s = a + b
            return a * b / (s * s * (s + 1.0))
        a_t, b_t = as_tensors(a, b)
        s_t = a_t + b_t
        return a_t * b_t / (s_t * s_t * (s_t + 1.0))

    def sample(self, rng: RNG) -> Value:
        a, b = self._concentration1, self._concentration0
        if type(a) is float and type(b) is float:
            random = rng.py.random
            x = gamma_variate(random, a)
            y = gamma_variate(random, b)
            if x + y > 0.0:
                return x / (x + y)
            # Both draws underflowed (tiny shapes): Beta(α, β) is then essentially a coin
            # on {0, 1} with P(1) = α / (α + β).
            return 1.0 if random() * (a + b) < a else 0.0
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        a, b = as_tensors(self._concentration1, self._concentration0)
        shape = broadcast_shape(a, b)
        x = std_gamma(rng, shape, a)
        y = std_gamma(rng, shape, b)
        finfo = torch.finfo(x.dtype)
        return (x / (x + y)).clamp(finfo.tiny, 1.0 - finfo.eps)

    def log_prob(self, value: Value) -> Value:
        a, b = self._concentration1, self._concentration0
        if (
            type(a) is float
            and type(b) is float
            and (type(value) is float or type(value) is int or is_number(value))
        ):
            if not 0.0 <= value <= 1.0:
                return _NEG_INF
            log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
            if value == 1.0:
                return _scalar_xlogy(b - 1.0, 0.0) - log_beta
            return _scalar_xlogy(a - 1.0, value) + (b - 1.0) * math.log1p(-value) - log_beta
        a_t, b_t, v = as_tensors(a, b, value)
        inside = (v >= 0) & (v <= 1)
        v = torch.where(inside, v, 0.5)
        log_beta_t = torch.lgamma(a_t) + torch.lgamma(b_t) - torch.lgamma(a_t + b_t)
        lp = torch.xlogy(a_t - 1.0, v) + torch.special.xlog1py(b_t - 1.0, -v) - log_beta_t
        return torch.where(inside, lp, _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return bool(0.0 <= value <= 1.0)
        (v,) = as_tensors(value)
        return _all((v >= 0) & (v <= 1))
