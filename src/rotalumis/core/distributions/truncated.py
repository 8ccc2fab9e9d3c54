"""The truncated normal distribution: ``Normal(mean, stddev)`` restricted to ``[low, high]``.

Tail safety: every computation reflects the standardized interval ``[α, β]`` to ``[-β, -α]``
when ``α > 0``, so that the CDF values involved are small numbers held with full relative
precision. Scalar draws use inversion, or exact exponential rejection for intervals at least
4 standard deviations into a tail (:func:`._sampling.truncnorm_variate`). Tensor draws invert
the CDF in log space in float64 (Newton steps on ``log Φ`` where ``Φ`` underflows) and get
their reparameterization gradients from the implicit function theorem, so ``[8, 9]`` with
``N(0, 1)`` — or ``[40, 41]`` — is sampled exactly and stays inside its bounds.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from ..rng import RNG
from ._params import as_tensors, bound, broadcast_shape, fail, is_number, positive, rand
from ._sampling import (
    gauss_legendre_64,
    truncnorm_log_z,
    truncnorm_quad_moments,
    truncnorm_variate,
)
from .base import LOG_SQRT_2PI, Distribution, Param, Value, as_param

__all__ = ["TruncatedNormal"]

_INF = math.inf
_NEG_INF = -math.inf
_SQRT_HALF = math.sqrt(0.5)
# Below this standardized variance the closed-form moments lose digits to cancellation
# (narrow intervals, intervals far in a tail); quadrature takes over.
_QUAD_BELOW = 0.05


def _tensor_log_z(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(Φ(b) - Φ(a))`` elementwise, tail-safe (``a < b``, either may be infinite).

    Computed in float64 and returned in the dtype of ``a``; gradients stay finite for
    infinite bounds (masked branches only ever see finite stand-ins).
    """
    dtype = a.dtype
    a, b = a.to(torch.float64), b.to(torch.float64)
    flip = a > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    straddle = hi > 0
    # lo <= 0 < hi: erf terms of opposite signs, no cancellation.
    z_mid = 0.5 * (torch.erf(hi * _SQRT_HALF) - torch.erf(lo * _SQRT_HALF))
    log_mid = torch.where(straddle, z_mid, 1.0).log()
    # hi <= 0: both CDF values are small; work with log Φ.
    hi_t = torch.where(straddle, -1.0, hi)
    lo_ok = ~straddle & torch.isfinite(lo)
    lo_t = torch.where(lo_ok, lo, hi_t - 1.0)
    l_hi = torch.special.log_ndtr(hi_t)
    l_lo = torch.special.log_ndtr(lo_t)
    log_tail = l_hi + torch.where(lo_ok, torch.log1p(-torch.exp(l_lo - l_hi)), 0.0)
    return torch.where(straddle, log_mid, log_tail).to(dtype)


def _tensor_ratios(
    a: torch.Tensor, b: torch.Tensor, log_z: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``φ(α)/Z``, ``φ(β)/Z``, ``α φ(α)/Z``, ``β φ(β)/Z`` elementwise (0 at infinite bounds)."""
    out = []
    for x in (a, b):
        finite = torch.isfinite(x)
        x_s = torch.where(finite, x, 0.0)
        r = torch.where(finite, torch.exp(-0.5 * x_s * x_s - LOG_SQRT_2PI - log_z), 0.0)
        out.append((r, x_s * r))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _tensor_quad_moments(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise :func:`._sampling.truncnorm_quad_moments` (``a``, ``b`` in float64)."""
    reflect = (a < 0) & (b <= 0)
    c = torch.where(reflect, -b, a)
    width = b - a
    span = torch.minimum(width, 40.0 / c.clamp_min(1.0))
    nodes, weights = (torch.tensor(x, dtype=a.dtype, device=a.device) for x in gauss_legendre_64())
    t = 0.5 * span.unsqueeze(-1) * (nodes + 1.0)
    t_top = torch.minimum((-c).clamp_min(0.0), span).unsqueeze(-1)
    cc = c.unsqueeze(-1)
    f = weights * torch.exp(-cc * (t - t_top) - 0.5 * (t * t - t_top * t_top))
    m0 = f.sum(-1)
    mean_t = (f * t).sum(-1) / m0
    var = ((f * t * t).sum(-1) / m0 - mean_t * mean_t).clamp_min(0.0)
    return torch.where(reflect, -(c + mean_t), c + mean_t), var


def _tensor_moments(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardized mean and variance, closed form or (where it cancels) quadrature."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    r_a, r_b, t_a, t_b = _tensor_ratios(a, b, _tensor_log_z(a, b))
    mean = r_a - r_b
    var = 1.0 + t_a - t_b - mean.square()
    q_mean, q_var = _tensor_quad_moments(a, b)
    use_quad = var < _QUAD_BELOW
    return torch.where(use_quad, q_mean, mean), torch.where(use_quad, q_var, var)


def _log_ndtri(log_p: torch.Tensor) -> torch.Tensor:
    """Inverse of ``log Φ`` for ``log_p <= 0`` (float64; handles ``log_p`` far below -745)."""
    small = log_p < -700.0
    direct = torch.special.ndtri(log_p.exp())
    # Far tail: start from the asymptotic -x²/2 - log(-x) - log√(2π) = log_p, then Newton.
    lp = torch.where(small, log_p, -800.0)
    x = -torch.sqrt(-2.0 * lp)
    for _ in range(3):
        x = -torch.sqrt(-2.0 * (lp + torch.log(-x) + LOG_SQRT_2PI))
    for _ in range(3):
        log_cdf = torch.special.log_ndtr(x)
        log_pdf = -0.5 * x * x - LOG_SQRT_2PI
        x = x - (log_cdf - lp) * torch.exp(log_cdf - log_pdf)
    return torch.where(small, x, direct)


class TruncatedNormal(Distribution):
    """``Normal(mean, stddev)`` restricted to ``[low, high]`` and renormalised.

    Args:
        mean: Location of the untruncated normal (number or tensor).
        stddev: Scale of the untruncated normal, strictly positive (number or tensor).
        low: Lower bound (number or tensor; ``-inf`` allowed).
        high: Upper bound, strictly greater than ``low`` (number or tensor; ``inf`` allowed).

    Raises:
        DistributionError: if ``stddev`` is not positive, ``low >= high``, ``mean`` or
            ``stddev`` is not finite, or a bound is ``nan``.

    Example:
        >>> d = TruncatedNormal(0.0, 1.0, 8.0, 9.0)
        >>> 8.0 <= d.mean <= 9.0
        True
    """

    __slots__ = ("_floats", "_high", "_log_z", "_low", "_mean", "_stddev")

    name: ClassVar[str] = "TruncatedNormal"
    has_rsample: ClassVar[bool] = True
    param_names: ClassVar[tuple[str, ...]] = ("mean", "stddev", "low", "high")
    fixed_support: ClassVar[bool] = False

    def __init__(self, mean: Param, stddev: Param, low: Param, high: Param) -> None:
        self._log_z: float | None = None
        tm, ts, tl, th = type(mean), type(stddev), type(low), type(high)
        if (
            (tm is float or tm is int)
            and (ts is float or ts is int)
            and (tl is float or tl is int)
            and (th is float or th is int)
            and -_INF < mean < _INF
            and 0.0 < stddev < _INF
            and low < high
        ):
            m, s, lo, hi = float(mean), float(stddev), float(low), float(high)
            self._mean: Param = m
            self._stddev: Param = s
            self._low: Param = lo
            self._high: Param = hi
            # The same numbers, typed as floats: the scalar path reads these.
            self._floats: tuple[float, float, float, float] | None = (m, s, lo, hi)
            return
        self._mean = as_param("TruncatedNormal", "mean", mean)
        self._stddev = positive("TruncatedNormal", "stddev", stddev)
        self._low = bound("TruncatedNormal", "low", low)
        self._high = bound("TruncatedNormal", "high", high)
        lo_p, hi_p = self._low, self._high
        if isinstance(lo_p, torch.Tensor) or isinstance(hi_p, torch.Tensor):
            lo_t, hi_t = as_tensors(lo_p, hi_p)
            ok = bool((lo_t.detach() < hi_t.detach()).all())
        else:
            ok = lo_p < hi_p
        if not ok:
            raise fail("TruncatedNormal", "high", "must be > low", f"low={lo_p}, high={hi_p}")
        m_p, s_p = self._mean, self._stddev
        if (
            type(m_p) is float
            and type(s_p) is float
            and type(lo_p) is float
            and type(hi_p) is float
        ):
            self._floats = (m_p, s_p, lo_p, hi_p)
        else:
            self._floats = None

    # -- parameters -----------------------------------------------------------------------
    @property
    def low(self) -> Param:
        """The lower bound."""
        return self._low

    @property
    def high(self) -> Param:
        """The upper bound."""
        return self._high

    @property
    def params(self) -> dict[str, Param]:
        return {"mean": self._mean, "stddev": self._stddev, "low": self._low, "high": self._high}

    @property
    def is_scalar(self) -> bool:
        return self._floats is not None

    def _scalar_log_z(self, a: float, b: float) -> float:
        """``log Z`` of the scalar path (standardized bounds ``a``, ``b``), cached."""
        log_z = self._log_z
        if log_z is None:
            log_z = self._log_z = truncnorm_log_z(a, b)
        return log_z

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        """``mean, stddev, α, β`` as tensors (standardized bounds, ``±inf`` kept).

        Infinite bounds are standardized through a masked finite stand-in so that no
        ``inf * 0`` reaches the gradients of ``mean`` and ``stddev``.
        """
        m, s, lo, hi = as_tensors(self._mean, self._stddev, self._low, self._high)
        out = [m, s]
        for x in (lo, hi):
            finite = torch.isfinite(x)
            out.append(torch.where(finite, (torch.where(finite, x, 0.0) - m) / s, x))
        return tuple(out)

    # -- moments -----------------------------------------------------------------------------
    @property
    def mean(self) -> Value:
        """The mean of the truncated distribution (not the ``mean`` parameter)."""
        f = self._floats
        if f is not None:
            return f[0] + f[1] * self._scalar_moments(f)[0]
        m_t, s_t, a_t, b_t = self._tensors()
        return m_t + s_t * _tensor_moments(a_t, b_t)[0].to(m_t.dtype)

    @property
    def variance(self) -> Value:
        f = self._floats
        if f is not None:
            return f[1] * f[1] * self._scalar_moments(f)[1]
        _, s_t, a_t, b_t = self._tensors()
        return s_t * s_t * _tensor_moments(a_t, b_t)[1].to(s_t.dtype)

    def _scalar_moments(self, f: tuple[float, float, float, float]) -> tuple[float, float]:
        """Standardized mean and variance: closed form, or quadrature where it cancels."""
        m, s, lo, hi = f
        a, b = (lo - m) / s, (hi - m) / s
        r_a, r_b = self._scalar_ratios(a, b)
        mean = r_a - r_b
        var = 1.0 + (a * r_a if r_a else 0.0) - (b * r_b if r_b else 0.0) - mean * mean
        if var < _QUAD_BELOW:
            return truncnorm_quad_moments(a, b)
        return mean, var

    def _scalar_ratios(self, a: float, b: float) -> tuple[float, float]:
        """``φ(α)/Z`` and ``φ(β)/Z`` (0 for infinite bounds)."""
        log_z = self._scalar_log_z(a, b)
        r_a = math.exp(-0.5 * a * a - LOG_SQRT_2PI - log_z) if a > _NEG_INF else 0.0
        r_b = math.exp(-0.5 * b * b - LOG_SQRT_2PI - log_z) if b < _INF else 0.0
        return r_a, r_b

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, rng: RNG) -> Value:
        f = self._floats
        if f is not None:
            m, s, lo, hi = f
            z = truncnorm_variate(rng.py.random, (lo - m) / s, (hi - m) / s)
            return min(max(m + s * z, lo), hi)
        with torch.no_grad():
            return self.rsample(rng)

    def rsample(self, rng: RNG) -> torch.Tensor:
        m, s, a, b = self._tensors()
        shape = broadcast_shape(m, s, a, b)
        u = rand(rng, shape, m).to(torch.float64)
        with torch.no_grad():
            a64, b64 = a.detach().to(torch.float64), b.detach().to(torch.float64)
            flip = a64 > 0
            lo = torch.where(flip, -b64, a64)
            hi = torch.where(flip, -a64, b64)
            uf = torch.where(flip, 1.0 - u, u)
            # log((1-u) Φ(lo) + u Φ(hi)), stable for any bounds.
            log_p = torch.logaddexp(
                torch.log1p(-uf) + torch.special.log_ndtr(lo),
                torch.log(uf) + torch.special.log_ndtr(hi),
            )
            z = torch.minimum(torch.maximum(_log_ndtri(log_p), lo), hi)
            z = torch.where(flip, -z, z)
            # Implicit reparameterization: with u fixed, F(z; α, β) = u gives
            # dz/dα = (1-u) φ(α)/φ(z) and dz/dβ = u φ(β)/φ(z).
            half_z2 = 0.5 * z * z
            dz_da = torch.where(
                torch.isfinite(a64), (1.0 - u) * torch.exp(half_z2 - 0.5 * a64 * a64), 0.0
            )
            dz_db = torch.where(torch.isfinite(b64), u * torch.exp(half_z2 - 0.5 * b64 * b64), 0.0)
        dtype = m.dtype
        z_t = z.to(dtype)
        if a.requires_grad or b.requires_grad:
            a_fin = torch.where(torch.isfinite(a), a, 0.0)
            b_fin = torch.where(torch.isfinite(b), b, 0.0)
            z_t = (
                z_t
                + (a_fin - a_fin.detach()) * dz_da.to(dtype)
                + (b_fin - b_fin.detach()) * dz_db.to(dtype)
            )
        _, lo_x, hi_x = as_tensors(m, self._low, self._high)
        return torch.minimum(torch.maximum(m + s * z_t, lo_x), hi_x)

    # -- densities -----------------------------------------------------------------------------
    def log_prob(self, value: Value) -> Value:
        f = self._floats
        if f is not None and (type(value) is float or type(value) is int or is_number(value)):
            m, s, lo, hi = f
            if not lo <= value <= hi:
                return _NEG_INF
            z = (value - m) / s
            log_z = self._log_z
            if log_z is None:
                log_z = self._scalar_log_z((lo - m) / s, (hi - m) / s)
            return -0.5 * z * z - math.log(s) - LOG_SQRT_2PI - log_z
        m_t, s_t, a_t, b_t = self._tensors()
        lo_t, hi_t, v = as_tensors(self._low, self._high, value)
        inside = (v >= lo_t) & (v <= hi_t)
        z_t = (torch.where(inside, v, m_t) - m_t) / s_t
        lp = -0.5 * z_t * z_t - s_t.log() - LOG_SQRT_2PI - _tensor_log_z(a_t, b_t)
        return torch.where(inside, lp, _NEG_INF)

    def _support_params(self) -> tuple[Param, Param]:
        return self._low, self._high

    def in_support(self, value: Value) -> bool:
        f = self._floats
        if f is not None and is_number(value):
            return bool(f[2] <= value <= f[3])
        lo, hi, v = as_tensors(self._low, self._high, value)
        return bool(((v >= lo) & (v <= hi)).all())
