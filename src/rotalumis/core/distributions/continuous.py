"""Continuous distributions with closed-form samplers: Uniform, Exponential, LogNormal.

Each has the scalar fast path (Python numbers in and out, :mod:`math` only) and the tensor
path (broadcast parameters, generator-driven reparameterized sampling); see :mod:`.base`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..rng import RNG
from ._params import (
    as_tensors,
    broadcast_shape,
    fail,
    is_number,
    positive,
    rand,
    randn,
    std_exponential,
)
from ._sampling import ndtri
from .base import LOG_SQRT_2PI, Distribution, Param, Value, as_param

__all__ = ["Exponential", "LogNormal", "Uniform"]

_INF = math.inf
_NEG_INF = -math.inf
_TINY_U = 2.0**-54


def _all(t: torch.Tensor) -> bool:
    return bool(t.all())


class Uniform(Distribution):
    """Uniform distribution on ``[low, high]``, ``low < high``.

    Args:
        low: Lower end (number or tensor).
        high: Upper end, strictly greater than ``low`` (number or tensor).

    Raises:
        DistributionError: if ``low >= high`` or a parameter is not finite.

    Example:
        >>> Uniform(0.0, 4.0).log_prob(1.0)  # doctest: +ELLIPSIS
        -1.386...
    """

    __slots__ = ("_high", "_low")

    name: ClassVar[str] = "Uniform"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("low", "high")
    fixed_support: ClassVar[bool] = False

    def __init__(self, low: Param, high: Param) -> None:
        tl, th = type(low), type(high)
        if (tl is float or tl is int) and (th is float or th is int) and -_INF < low < high < _INF:
            self._low: Param = float(low)
            self._high: Param = float(high)
            return
        lo = as_param("Uniform", "low", low)
        hi = as_param("Uniform", "high", high)
        if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
            lo_t, hi_t = as_tensors(lo, hi)
            if not _all(lo_t.detach() < hi_t.detach()):
                raise fail("Uniform", "high", "must be > low", f"low={lo}, high={hi}")
        elif not lo < hi:
            raise fail("Uniform", "high", "must be > low", f"low={lo}, high={hi}")
        self._low, self._high = lo, hi

    @property
    def low(self) -> Param:
        """The lower end."""
        return self._low

    @property
    def high(self) -> Param:
        """The upper end."""
        return self._high

    @property
    def params(self) -> dict[str, Param]:
        return {"low": self._low, "high": self._high}

    @property
    def is_scalar(self) -> bool:
        return type(self._low) is float and type(self._high) is float

    @property
    def mean(self) -> Value:
        lo, hi = self._low, self._high
        if type(lo) is float and type(hi) is float:
            return 0.5 * (lo + hi)
        lo_t, hi_t = as_tensors(lo, hi)
        return 0.5 * (lo_t + hi_t)

    @property
    def variance(self) -> Value:
        lo, hi = self._low, self._high
        if type(lo) is float and type(hi) is float:
            return (hi - lo) * (hi - lo) / 12.0
        lo_t, hi_t = as_tensors(lo, hi)
        return (hi_t - lo_t).square() / 12.0

    def sample(self, rng: RNG) -> Value:
        lo, hi = self._low, self._high
        if type(lo) is float and type(hi) is float:
            return lo + (hi - lo) * rng.py.random()
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        lo, hi = as_tensors(self._low, self._high)
        return lo + (hi - lo) * rand(rng, broadcast_shape(lo, hi), lo)

    def log_prob(self, value: Value) -> Value:
        lo, hi = self._low, self._high
        if (
            type(lo) is float
            and type(hi) is float
            and (type(value) is float or type(value) is int or is_number(value))
        ):
            return -math.log(hi - lo) if lo <= value <= hi else _NEG_INF
        lo_t, hi_t, v = as_tensors(lo, hi, value)
        inside = (v >= lo_t) & (v <= hi_t)
        return torch.where(inside, -(hi_t - lo_t).log(), _NEG_INF)

    def _support_params(self) -> tuple[Param, Param]:
        return self._low, self._high

    def in_support(self, value: Value) -> bool:
        lo, hi = self._low, self._high
        if type(lo) is float and type(hi) is float and is_number(value):
            return bool(lo <= value <= hi)
        lo_t, hi_t, v = as_tensors(lo, hi, value)
        return _all((v >= lo_t) & (v <= hi_t))


class Exponential(Distribution):
    """Exponential distribution with rate ``rate`` > 0 (mean ``1 / rate``), support ``x >= 0``.

    Args:
        rate: Inverse scale, strictly positive (number or tensor).

    Raises:
        DistributionError: if ``rate`` is not positive or not finite.
    """

    __slots__ = ("_rate",)

    name: ClassVar[str] = "Exponential"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("rate",)

    def __init__(self, rate: Param) -> None:
        tr = type(rate)
        if (tr is float or tr is int) and 0.0 < rate < _INF:
            self._rate: Param = float(rate)
            return
        self._rate = positive("Exponential", "rate", rate)

    @property
    def rate(self) -> Param:
        """The rate."""
        return self._rate

    @property
    def params(self) -> dict[str, Param]:
        return {"rate": self._rate}

    @property
    def is_scalar(self) -> bool:
        return type(self._rate) is float

    @property
    def mean(self) -> Value:
        return 1.0 / self._rate

    @property
    def variance(self) -> Value:
        r = self._rate
        return 1.0 / (r * r)

    def sample(self, rng: RNG) -> Value:
        r = self._rate
        if type(r) is float:
            return -math.log(1.0 - rng.py.random()) / r
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        (r,) = as_tensors(self._rate)
        return std_exponential(rng, r.shape, r) / r

    def log_prob(self, value: Value) -> Value:
        r = self._rate
        if type(r) is float and (type(value) is float or type(value) is int or is_number(value)):
            return math.log(r) - r * value if value >= 0.0 else _NEG_INF
        r_t, v = as_tensors(r, value)
        inside = v >= 0
        return torch.where(inside, r_t.log() - r_t * torch.where(inside, v, 0.0), _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return bool(0.0 <= value < _INF)
        (v,) = as_tensors(value)
        return _all((v >= 0) & (v < _INF))


class LogNormal(Distribution):
    """Log-normal distribution: ``exp(Normal(loc, scale))``, support ``x > 0``.

    Args:
        loc: Mean of the logarithm (number or tensor).
        scale: Standard deviation of the logarithm, strictly positive (number or tensor).

    Raises:
        DistributionError: if ``scale`` is not positive or a parameter is not finite.
    """

    __slots__ = ("_loc", "_scale")

    name: ClassVar[str] = "LogNormal"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")

    def __init__(self, loc: Param, scale: Param) -> None:
        tl, ts = type(loc), type(scale)
        if (
            (tl is float or tl is int)
            and (ts is float or ts is int)
            and -_INF < loc < _INF
            and 0.0 < scale < _INF
        ):
            self._loc: Param = float(loc)
            self._scale: Param = float(scale)
            return
        self._loc = as_param("LogNormal", "loc", loc)
        self._scale = positive("LogNormal", "scale", scale)

    @property
    def loc(self) -> Param:
        """Mean of the logarithm."""
        return self._loc

    @property
    def scale(self) -> Param:
        """Standard deviation of the logarithm."""
        return self._scale

    @property
    def params(self) -> dict[str, Param]:
        return {"loc": self._loc, "scale": self._scale}

    @property
    def is_scalar(self) -> bool:
        return type(self._loc) is float and type(self._scale) is float

    @property
    def mean(self) -> Value:
        m, s = self._loc, self._scale
        if type(m) is float and type(s) is float:
            t = m + 0.5 * s * s
            return math.exp(t) if t < 709.0 else _INF
        m_t, s_t = as_tensors(m, s)
        return (m_t + 0.5 * s_t * s_t).exp()

    @property
    def variance(self) -> Value:
        m, s = self._loc, self._scale
        if type(m) is float and type(s) is float:
            s2 = s * s
            # (e^{s²} - 1) e^{2m + s²} in log space, no overflow of the first factor.
            t = 2.0 * (s2 + m) + math.log(-math.expm1(-s2))
            return math.exp(t) if t < 709.0 else _INF
        m_t, s_t = as_tensors(m, s)
        s2_t = s_t * s_t
        return s2_t.expm1() * (2.0 * m_t + s2_t).exp()

    def sample(self, rng: RNG) -> Value:
        m, s = self._loc, self._scale
        if type(m) is float and type(s) is float:
            u = rng.py.random()
            try:
                return math.exp(ndtri(u if u > 0.0 else _TINY_U, m, s))
            except OverflowError:
                return _INF
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        m, s = as_tensors(self._loc, self._scale)
        return (m + s * randn(rng, broadcast_shape(m, s), m)).exp()

    def log_prob(self, value: Value) -> Value:
        m, s = self._loc, self._scale
        if (
            type(m) is float
            and type(s) is float
            and (type(value) is float or type(value) is int or is_number(value))
        ):
            if not value > 0.0:
                return _NEG_INF
            log_x = math.log(value)
            z = (log_x - m) / s
            return -0.5 * z * z - math.log(s) - LOG_SQRT_2PI - log_x
        m_t, s_t, v = as_tensors(m, s, value)
        inside = v > 0
        log_v = torch.where(inside, v, 1.0).log()
        z_t = (log_v - m_t) / s_t
        return torch.where(inside, -0.5 * z_t * z_t - s_t.log() - LOG_SQRT_2PI - log_v, _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return bool(0.0 < value < _INF)
        (v,) = as_tensors(value)
        return _all((v > 0) & (v < _INF))
