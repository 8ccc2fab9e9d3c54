"""Count distributions: Poisson, Bernoulli and Binomial.

On the scalar path values are Python ``int``; on the tensor path they are floating tensors
holding integral values (as in :mod:`torch.distributions`), drawn with the RNG's generator.
``log_prob`` of a non-integral or out-of-range value is ``-inf``, never an exception.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..rng import RNG
from ._params import (
    as_tensors,
    broadcast_shape,
    count,
    is_number,
    nonnegative,
    scalar_integer,
    unit_interval,
)
from ._sampling import binomial_variate, poisson_variate
from .base import Distribution, Param, Value

__all__ = ["Bernoulli", "Binomial", "Poisson"]

_INF = math.inf
_NEG_INF = -math.inf


def _integral(v: torch.Tensor) -> torch.Tensor:
    """Elementwise: finite and integral."""
    return torch.isfinite(v) & (v == v.floor())


def _cpu(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return t.detach().expand(shape).cpu()


def _xlogp_xlog1mp(k: torch.Tensor, m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``k log p + m log(1 - p)`` with ``0 log 0 = 0`` and finite gradients at p = 0 or 1.

    Each term sees a harmless ``p`` where its count is zero: otherwise the backward of
    ``xlogy``/``xlog1py`` computes 0 / 0 there and the gradient becomes NaN.
    """
    first: torch.Tensor = torch.xlogy(k, torch.where(k == 0, 1.0, p))
    second: torch.Tensor = torch.special.xlog1py(m, -torch.where(m == 0, 0.0, p))
    return first + second


class Poisson(Distribution):
    """Poisson distribution with mean ``rate`` >= 0 over ``{0, 1, 2, ...}``.

    ``rate = 0`` is allowed: the distribution is then a point mass at 0.

    Args:
        rate: The mean, non-negative (number or tensor).

    Raises:
        DistributionError: if ``rate`` is negative or not finite.

    Example:
        >>> Poisson(2.0).log_prob(0)  # doctest: +ELLIPSIS
        -2.0
    """

    __slots__ = ("_rate",)

    name: ClassVar[str] = "Poisson"
    is_discrete: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("rate",)

    def __init__(self, rate: Param) -> None:
        tr = type(rate)
        if (tr is float or tr is int) and 0.0 <= rate < _INF:
            self._rate: Param = float(rate)
            return
        self._rate = nonnegative("Poisson", "rate", rate)

    @property
    def rate(self) -> Param:
        """The mean."""
        return self._rate

    @property
    def params(self) -> dict[str, Param]:
        return {"rate": self._rate}

    @property
    def is_scalar(self) -> bool:
        return type(self._rate) is float

    @property
    def mean(self) -> Value:
        return self._rate

    @property
    def variance(self) -> Value:
        return self._rate

    def sample(self, rng: RNG) -> Value:
        r = self._rate
        if type(r) is float:
            return poisson_variate(rng.py.random, r)
        (r_t,) = as_tensors(r)
        return torch.poisson(_cpu(r_t, r_t.shape), generator=rng.torch).to(r_t.device)

    def log_prob(self, value: Value) -> Value:
        r = self._rate
        if type(r) is float and (type(value) is int or is_number(value)):
            if type(value) is not int:
                if not scalar_integer(value):
                    return _NEG_INF
                value = int(value)
            if value < 0:
                return _NEG_INF
            if r == 0.0:
                return 0.0 if value == 0 else _NEG_INF
            return value * math.log(r) - r - math.lgamma(value + 1.0)
        r_t, v = as_tensors(r, value)
        valid = _integral(v) & (v >= 0)
        v = torch.where(valid, v, 0.0)
        # 0 * log(r) is 0 even at r = 0; feed xlogy a harmless r there, or its backward
        # (v / r = 0 / 0) poisons the gradient with NaN
        lp = torch.xlogy(v, torch.where(v == 0, 1.0, r_t)) - r_t - torch.lgamma(v + 1.0)
        return torch.where(valid, lp, _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return scalar_integer(value) and value >= 0
        (v,) = as_tensors(value)
        return bool((_integral(v) & (v >= 0)).all())


class Bernoulli(Distribution):
    """Bernoulli distribution over ``{0, 1}`` with ``P(1) = probs``.

    Args:
        probs: Probability of 1, in ``[0, 1]`` (number or tensor).

    Raises:
        DistributionError: if ``probs`` is outside ``[0, 1]`` or not finite.
    """

    __slots__ = ("_probs",)

    name: ClassVar[str] = "Bernoulli"
    is_discrete: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("probs",)

    def __init__(self, probs: Param) -> None:
        tp = type(probs)
        if (tp is float or tp is int) and 0.0 <= probs <= 1.0:
            self._probs: Param = float(probs)
            return
        self._probs = unit_interval("Bernoulli", "probs", probs)

    @property
    def probs(self) -> Param:
        """The probability of 1."""
        return self._probs

    @property
    def params(self) -> dict[str, Param]:
        return {"probs": self._probs}

    @property
    def is_scalar(self) -> bool:
        return type(self._probs) is float

    @property
    def mean(self) -> Value:
        return self._probs

    @property
    def variance(self) -> Value:
        p = self._probs
        return p * (1.0 - p)

    def sample(self, rng: RNG) -> Value:
        p = self._probs
        if type(p) is float:
            return 1 if rng.py.random() < p else 0
        (p_t,) = as_tensors(p)
        return torch.bernoulli(_cpu(p_t, p_t.shape), generator=rng.torch).to(p_t.device)

    def log_prob(self, value: Value) -> Value:
        p = self._probs
        if type(p) is float and (type(value) is int or is_number(value)):
            if value == 1:
                return math.log(p) if p > 0.0 else _NEG_INF
            if value == 0:
                return math.log1p(-p) if p < 1.0 else _NEG_INF
            return _NEG_INF
        p_t, v = as_tensors(p, value)
        valid = (v == 0) | (v == 1)
        v = torch.where(valid, v, 0.0)
        lp = _xlogp_xlog1mp(v, 1.0 - v, p_t)
        return torch.where(valid, lp, _NEG_INF)

    def in_support(self, value: Value) -> bool:
        if is_number(value):
            return bool(value == 0 or value == 1)
        (v,) = as_tensors(value)
        return bool(((v == 0) | (v == 1)).all())


class Binomial(Distribution):
    """Binomial distribution: successes in ``total_count`` trials of probability ``probs``.

    Args:
        total_count: Number of trials, a non-negative integer (``int`` or a tensor of
            integral values).
        probs: Success probability per trial, in ``[0, 1]`` (number or tensor).

    Raises:
        DistributionError: if ``total_count`` is not a non-negative integer, or ``probs`` is
            outside ``[0, 1]`` or not finite.
    """

    __slots__ = ("_probs", "_total_count")

    name: ClassVar[str] = "Binomial"
    is_discrete: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("total_count", "probs")
    fixed_support: ClassVar[bool] = False

    def __init__(self, total_count: int | torch.Tensor, probs: Param) -> None:
        tp = type(probs)
        if (
            type(total_count) is int
            and total_count >= 0
            and (tp is float or tp is int)
            and 0.0 <= probs <= 1.0
        ):
            self._total_count: int | torch.Tensor = total_count
            self._probs: Param = float(probs)
            return
        self._total_count = count("Binomial", "total_count", total_count)
        self._probs = unit_interval("Binomial", "probs", probs)

    @property
    def total_count(self) -> int | torch.Tensor:
        """The number of trials."""
        return self._total_count

    @property
    def probs(self) -> Param:
        """The success probability."""
        return self._probs

    @property
    def params(self) -> dict[str, int | Param]:
        return {"total_count": self._total_count, "probs": self._probs}

    @property
    def is_scalar(self) -> bool:
        return type(self._total_count) is int and type(self._probs) is float

    @property
    def mean(self) -> Value:
        n, p = self._total_count, self._probs
        if type(n) is int and type(p) is float:
            return n * p
        n_t, p_t = as_tensors(n, p)
        return n_t * p_t

    @property
    def variance(self) -> Value:
        n, p = self._total_count, self._probs
        if type(n) is int and type(p) is float:
            return n * p * (1.0 - p)
        n_t, p_t = as_tensors(n, p)
        return n_t * p_t * (1.0 - p_t)

    def sample(self, rng: RNG) -> Value:
        n, p = self._total_count, self._probs
        if type(n) is int and type(p) is float:
            return binomial_variate(rng.py.random, n, p)
        n_t, p_t = as_tensors(n, p)
        shape = broadcast_shape(n_t, p_t)
        draw = torch.binomial(_cpu(n_t, shape), _cpu(p_t, shape), generator=rng.torch)
        return draw.to(p_t.device)

    def log_prob(self, value: Value) -> Value:
        n, p = self._total_count, self._probs
        if type(n) is int and type(p) is float and (type(value) is int or is_number(value)):
            if type(value) is not int:
                if not scalar_integer(value):
                    return _NEG_INF
                value = int(value)
            if not 0 <= value <= n:
                return _NEG_INF
            if p == 0.0:
                return 0.0 if value == 0 else _NEG_INF
            if p == 1.0:
                return 0.0 if value == n else _NEG_INF
            log_choose = (
                math.lgamma(n + 1.0) - math.lgamma(value + 1.0) - math.lgamma(n - value + 1.0)
            )
            return log_choose + value * math.log(p) + (n - value) * math.log1p(-p)
        n_t, p_t, v = as_tensors(n, p, value)
        valid = _integral(v) & (v >= 0) & (v <= n_t)
        v = torch.where(valid, v, 0.0)
        log_choose_t = torch.lgamma(n_t + 1.0) - torch.lgamma(v + 1.0) - torch.lgamma(n_t - v + 1.0)
        lp = log_choose_t + _xlogp_xlog1mp(v, n_t - v, p_t)
        return torch.where(valid, lp, _NEG_INF)

    def _support_params(self) -> tuple[int | torch.Tensor]:
        return (self._total_count,)

    def in_support(self, value: Value) -> bool:
        n = self._total_count
        if is_number(value) and type(n) is int:
            return scalar_integer(value) and bool(0 <= value <= n)
        n_t, v = as_tensors(n, value)
        return bool((_integral(v) & (v >= 0) & (v <= n_t)).all())
