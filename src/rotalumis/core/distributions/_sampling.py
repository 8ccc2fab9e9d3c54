"""Pure-Python scalar samplers and special functions for the scalar fast path.

Everything here takes a ``random`` callable (the bound :meth:`random.Random.random` of an
:class:`~rotalumis.core.rng.RNG`) returning uniforms in ``[0, 1)``, and uses only :mod:`math`:
no NumPy, no tensors. The algorithms are reimplemented from their published descriptions:

* standard normals by inversion (Wichura's AS 241 through :mod:`statistics`),
* gamma variates: Marsaglia & Tsang (2000), "A simple method for generating gamma variables",
* Poisson variates: inversion for small means, PTRS of Hörmann (1993), "The transformed
  rejection method for generating Poisson random variables", for large ones,
* binomial variates: inversion for small ``n * min(p, 1 - p)``, BTRS of Hörmann (1993), "The
  generation of binomial random variates", otherwise,
* truncated standard normals: inversion, or for intervals far in a tail, rejection from an
  exponential proposal in the spirit of Robert (1995), "Simulation of truncated normal
  variables".
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable

__all__ = [
    "binomial_variate",
    "gamma_variate",
    "log_ndtr",
    "ndtri",
    "poisson_variate",
    "std_normal",
    "truncnorm_log_z",
    "truncnorm_quad_moments",
    "truncnorm_variate",
]

Random = Callable[[], float]

_STD_NORMAL = statistics.NormalDist()
_SQRT_HALF = math.sqrt(0.5)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TINY_U = 2.0**-54  # replaces a uniform draw of exactly 0 (probability 2**-53)


def _ndtri_public(p: float, mu: float, sigma: float) -> float:
    return mu + sigma * _STD_NORMAL.inv_cdf(p)


# ``statistics`` exposes its C implementation of AS 241 only under a private name; it is
# three times faster than the public method, so use it when present and fall back otherwise.
ndtri: Callable[[float, float, float], float] = getattr(
    statistics, "_normal_dist_inv_cdf", _ndtri_public
)
"""``ndtri(p, mu, sigma)``: the ``p``-quantile of ``Normal(mu, sigma)`` for ``0 < p < 1``."""


def std_normal(random: Random) -> float:
    """One standard normal variate by inversion of a uniform draw."""
    u = random()
    return ndtri(u if u > 0.0 else _TINY_U, 0.0, 1.0)


def gamma_variate(random: Random, shape: float) -> float:
    """A ``Gamma(shape, 1)`` variate (Marsaglia & Tsang), ``shape > 0``."""
    boost = 1.0
    if shape < 1.0:
        # Gamma(a) = Gamma(a + 1) * U**(1/a); may underflow to 0.0 for tiny shapes.
        boost = (1.0 - random()) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        u = random()
        x = ndtri(u if u > 0.0 else _TINY_U, 0.0, 1.0)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - random()  # in (0, 1]
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v * boost


def poisson_variate(random: Random, rate: float) -> int:
    """A ``Poisson(rate)`` variate, ``rate >= 0``."""
    if rate < 10.0:
        if rate == 0.0:
            return 0
        # Inversion by sequential search from 0. Rounding can leave the cumulative sum just
        # short of 1, so a draw beyond it restarts (probability ~1e-16).
        while True:
            u = random()
            k = 0
            p = math.exp(-rate)
            s = p
            while u > s:
                k += 1
                p *= rate / k
                s += p
                if p == 0.0:
                    break
            else:
                return k
    return _ptrs(random, rate)


def _ptrs(random: Random, mu: float) -> int:
    """Hörmann's PTRS transformed rejection sampler, for ``mu >= 10``."""
    log_mu = math.log(mu)
    b = 0.931 + 2.53 * math.sqrt(mu)
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = random() - 0.5
        v = random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + mu + 0.43) if us > 0.0 else -1
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0 or (us < 0.013 and v > us) or v == 0.0:
            continue
        lhs = math.log(v) + log_inv_alpha - math.log(a / (us * us) + b)
        if lhs <= -mu + k * log_mu - math.lgamma(k + 1.0):
            return k


def binomial_variate(random: Random, n: int, p: float) -> int:
    """A ``Binomial(n, p)`` variate, ``n >= 0`` an integer, ``0 <= p <= 1``."""
    if p > 0.5:
        return n - binomial_variate(random, n, 1.0 - p)
    if n == 0 or p == 0.0:
        return 0
    if n * p < 10.0:
        return _binomial_inversion(random, n, p)
    return _btrs(random, n, p)


def _binomial_inversion(random: Random, n: int, p: float) -> int:
    q = 1.0 - p
    s = p / q
    a = (n + 1) * s
    r0 = math.exp(n * math.log1p(-p))
    while True:
        u = random()
        r = r0
        k = 0
        while u > r:
            u -= r
            k += 1
            if k > n:
                break
            r *= a / k - s
        else:
            return k


def _btrs(random: Random, n: int, p: float) -> int:
    """Hörmann's BTRS transformed rejection sampler, for ``p <= 0.5``, ``n * p >= 10``."""
    q = 1.0 - p
    spq = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    log_alpha = math.log((2.83 + 5.1 / b) * spq)
    lpq = math.log(p / q)
    m = math.floor((n + 1) * p)
    h = math.lgamma(m + 1.0) + math.lgamma(n - m + 1.0)
    while True:
        u = random() - 0.5
        v = random()
        us = 0.5 - abs(u)
        if us <= 0.0:
            continue
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= v_r:
            return k
        if v == 0.0:
            continue
        lhs = math.log(v) + log_alpha - math.log(a / (us * us) + b)
        if lhs <= h - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0) + (k - m) * lpq:
            return k


def log_ndtr(x: float) -> float:
    """``log Φ(x)``, the log standard normal CDF, accurate in both tails (``x`` may be ±inf)."""
    if x > 0.0:
        return math.log1p(-0.5 * math.erfc(x * _SQRT_HALF))
    if x > -37.0:
        return math.log(0.5 * math.erfc(-x * _SQRT_HALF))
    if x == -math.inf:
        return -math.inf
    # Asymptotic series of the Mills ratio: Φ(x) = φ(x)/(-x) * (1 - 1/x² + 3/x⁴ - ...).
    t = 1.0 / (x * x)
    series = 1.0 - t * (1.0 - 3.0 * t * (1.0 - 5.0 * t * (1.0 - 7.0 * t * (1.0 - 9.0 * t))))
    return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log(series)


def _flip(a: float, b: float) -> tuple[float, float, bool]:
    """Reflect ``[a, b]`` to ``[-b, -a]`` when that puts it further in the *left* tail.

    Afterwards the interval either contains 0 or lies entirely left of it, where CDF values
    are small and represented with full relative precision.
    """
    if a > 0.0:
        return -b, -a, True
    return a, b, False


def truncnorm_log_z(a: float, b: float) -> float:
    """``log(Φ(b) - Φ(a))`` for standardized bounds ``a < b`` (either may be infinite)."""
    a, b, _ = _flip(a, b)
    if b > 0.0:  # a <= 0 < b: erf has no cancellation between the two signs
        return math.log(0.5 * (math.erf(b * _SQRT_HALF) - math.erf(a * _SQRT_HALF)))
    lb = log_ndtr(b)
    return lb + math.log1p(-math.exp(log_ndtr(a) - lb))


_TAIL_THRESHOLD = 4.0  # standardized distance of the interval beyond which rejection is used


def truncnorm_variate(random: Random, a: float, b: float) -> float:
    """A standard normal variate restricted to ``[a, b]`` (``a < b``, either may be infinite)."""
    lo, hi, flipped = _flip(a, b)
    if hi <= -_TAIL_THRESHOLD:
        z = -_tail_variate(random, -hi, -lo)
    else:
        p_lo = 0.5 * math.erfc(-lo * _SQRT_HALF)
        p_hi = 0.5 * math.erfc(-hi * _SQRT_HALF)
        while True:
            u = p_lo + (p_hi - p_lo) * random()
            if 0.0 < u < 1.0:
                break
        z = min(max(ndtri(u, 0.0, 1.0), lo), hi)
    return -z if flipped else z


def _tail_variate(random: Random, c: float, d: float) -> float:
    """Standard normal restricted to ``[c, d]`` with ``c >= _TAIL_THRESHOLD``.

    Proposal: ``c + E`` with ``E`` exponential of rate ``c`` truncated to ``[0, d - c]``; the
    target-to-proposal density ratio is proportional to ``exp(-E²/2)``, accepted with that
    probability (over 0.96 on average for ``c >= 4``).
    """
    mass = -math.expm1(-c * (d - c)) if d < math.inf else 1.0
    while True:
        e = -math.log1p(-random() * mass) / c
        if random() < math.exp(-0.5 * e * e):
            return min(c + e, d)


def _gauss_legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nodes and weights of the ``n``-point Gauss-Legendre rule on ``[-1, 1]`` (Newton)."""
    nodes, weights = [], []
    for i in range(1, n + 1):
        x = math.cos(math.pi * (i - 0.25) / (n + 0.5))
        dp = 1.0
        for _ in range(100):
            p0, p1 = 1.0, x
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            dp = n * (x * p1 - p0) / (x * x - 1.0)
            step = p1 / dp
            x -= step
            if abs(step) < 1e-16:
                break
        nodes.append(x)
        weights.append(2.0 / ((1.0 - x * x) * dp * dp))
    return tuple(nodes), tuple(weights)


@functools.cache
def gauss_legendre_64() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The 64-point Gauss-Legendre rule (computed once, on first use)."""
    return _gauss_legendre(64)


def tail_window(c: float, width: float) -> float:
    """Length of ``[0, width]`` that holds all but ``e^-40`` of ``exp(-c t - t²/2)``."""
    return min(width, 40.0 / max(c, 1.0))


def truncnorm_quad_moments(a: float, b: float) -> tuple[float, float]:
    """Mean and variance of a standard normal truncated to ``[a, b]``, by quadrature.

    With ``[a, b]`` written as ``[c, c + width]`` (reflected first when it lies left of 0),
    ``t = z - c`` has density ``∝ exp(-c t - t²/2)`` on ``[0, width]``; its moments come from
    64-point Gauss-Legendre quadrature. Accurate where the closed forms cancel
    catastrophically (narrow intervals, intervals far in a tail), i.e. where the variance is
    much smaller than 1; ``b`` may be infinite when ``a`` is large (and vice versa).
    """
    reflect = a < 0.0 and b <= 0.0
    c, width = (-b, b - a) if reflect else (a, b - a)
    span = tail_window(c, width)
    t_top = min(max(-c, 0.0), span)  # where the exponent peaks: subtract it, no overflow
    top = -c * t_top - 0.5 * t_top * t_top
    m0 = m1 = m2 = 0.0
    for x, w in zip(*gauss_legendre_64(), strict=True):
        t = 0.5 * span * (x + 1.0)
        f = w * math.exp(-c * t - 0.5 * t * t - top)
        m0 += f
        m1 += f * t
        m2 += f * t * t
    mean_t = m1 / m0
    var = max(m2 / m0 - mean_t * mean_t, 0.0)
    return (-(c + mean_t) if reflect else c + mean_t), var
