"""How numpy.random calls map to rotalumis distributions.

Each spec has the signature of the NumPy method it describes, so Python binds the caller's
arguments exactly as NumPy would, and returns ``(distribution, convert)``: the site's prior
and the function that turns the value chosen by the engine into what NumPy would have
returned (Python ``float``/``int`` for a scalar call, an ``ndarray`` of NumPy's dtype and
shape otherwise). A call with ``size=`` or array parameters is *one* site whose value is the
whole array. ``None`` means "no mapping for these arguments": the caller falls back to
running NumPy's own implementation on a substitute generator seeded by a recorded seed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rotalumis.core import (
    Beta,
    Binomial,
    Categorical,
    Distribution,
    Exponential,
    Gamma,
    LogNormal,
    ModelError,
    Normal,
    Poisson,
    Uniform,
    Weibull,
)

from ._random_patch import CATEGORICAL_LIMIT, uniform_int

__all__ = ["GENERATOR_SPECS", "RANDOM_STATE_SPECS", "Site"]

Site = tuple[Distribution | None, Callable[[Any], Any], tuple[int, ...]]
Spec = Callable[..., Site | None]

TABLE_LIMIT = 1 << 22
"""Largest ``elements * categories`` for one vector-valued categorical site."""

_F64 = np.dtype(np.float64)


def _shape(size: Any) -> tuple[int, ...] | None:
    if size is None:
        return None
    if isinstance(size, numbers.Integral):
        return (int(size),)
    return tuple(int(s) for s in size)


def _to_array(value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ModelError(
            f"intercepted numpy draw of shape {shape} was given a value of shape {arr.shape}"
        )
    return arr.astype(dtype, copy=False)


def _all_real(params: tuple[Any, ...]) -> bool:
    """Whether every parameter is a plain number (checked cheaply: this is the hot path)."""
    for p in params:
        t = type(p)
        if t is not float and t is not int and not isinstance(p, numbers.Real):
            return False
    return True


def _site(
    make: Callable[..., Distribution],
    valid: Callable[..., Any],
    size: Any,
    params: tuple[Any, ...],
    discrete: bool = False,
) -> Site | None:
    """One site for a call with parameters ``params`` (numbers or arrays) and ``size``."""
    shape = _shape(size)
    if _all_real(params):
        xs = [float(p) for p in params]
        if not valid(*xs):
            return None
        if shape is None:
            return make(*xs), (int if discrete else float), ()
        if math.prod(shape) == 0:
            return None
        # scalar parameters, size=: full tensors, no NumPy broadcasting (the common case)
        dist = make(*[torch.full(shape, x, dtype=torch.float64) for x in xs])
        dtype = np.int64 if discrete else np.float64
        return dist, lambda v: _to_array(v, shape, dtype), shape
    arrays = [np.asarray(p, dtype=_F64) for p in params]
    out = np.broadcast_shapes(*(a.shape for a in arrays))
    if shape is not None:
        if np.broadcast_shapes(out, shape) != shape:
            return None
        out = shape
    elif out == ():
        return _site(make, valid, None, tuple(float(a) for a in arrays), discrete)
    if math.prod(out) == 0 or not bool(np.all(valid(*arrays))):
        return None
    tensors = [torch.from_numpy(np.array(np.broadcast_to(a, out), copy=True)) for a in arrays]
    dist = make(*tensors)
    dtype = np.int64 if discrete else np.float64
    return dist, lambda v: _to_array(v, out, dtype), out


def _true(*_: Any) -> bool:
    return True


def _pos(x: Any) -> Any:
    return x > 0


def _is_f64(dtype: Any, out: Any) -> bool:
    return out is None and np.dtype(dtype) == _F64


def _weibull(a: Any, one: Any) -> Distribution:
    return Weibull(one, a)


def _binomial(n: Any, p: Any) -> Distribution:
    return Binomial(n if isinstance(n, torch.Tensor) else int(n), p)


# -- shared by Generator and RandomState ------------------------------------------------------
def uniform(low: Any = 0.0, high: Any = 1.0, size: Any = None) -> Site | None:
    return _site(Uniform, lambda lo, hi: lo < hi, size, (low, high))


def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Site | None:
    return _site(Normal, lambda _, s: s > 0, size, (loc, scale))


def exponential(scale: Any = 1.0, size: Any = None) -> Site | None:
    return _site(lambda s: Exponential(1.0 / s), _pos, size, (scale,))


def gamma(shape: Any, scale: Any = 1.0, size: Any = None) -> Site | None:
    return _site(
        lambda k, s: Gamma(k, 1.0 / s), lambda k, s: (k > 0) & (s > 0), size, (shape, scale)
    )


def beta(a: Any, b: Any, size: Any = None) -> Site | None:
    return _site(Beta, lambda x, y: (x > 0) & (y > 0), size, (a, b))


def lognormal(mean: Any = 0.0, sigma: Any = 1.0, size: Any = None) -> Site | None:
    return _site(LogNormal, lambda _, s: s > 0, size, (mean, sigma))


def weibull(a: Any, size: Any = None) -> Site | None:
    return _site(_weibull, lambda x, _: x > 0, size, (a, 1.0))


def poisson(lam: Any = 1.0, size: Any = None) -> Site | None:
    return _site(Poisson, _pos, size, (lam,), discrete=True)


def binomial(n: Any, p: Any, size: Any = None) -> Site | None:
    ok = lambda k, q: (k >= 1) & (k == np.floor(k)) & (q > 0) & (q < 1)  # noqa: E731
    return _site(_binomial, ok, size, (n, p), discrete=True)


def _ints(low: Any, high: Any, size: Any, dtype: Any, endpoint: bool, py_int: bool) -> Site | None:
    if not isinstance(low, numbers.Integral) or not (
        high is None or isinstance(high, numbers.Integral)
    ):
        return None
    lo, hi = (0, int(low)) if high is None else (int(low), int(high))
    hi += 1 if endpoint else 0
    n, dt = hi - lo, np.dtype(dtype)
    if not 1 <= n <= CATEGORICAL_LIMIT or dt.kind not in "iu":
        return None
    if lo < np.iinfo(dt).min or hi - 1 > np.iinfo(dt).max:
        return None
    return _categorical(n, None, _shape(size), None, int if py_int else dt.type, lo, dt)


def _categorical(
    n: int,
    probs: np.ndarray | None,
    shape: tuple[int, ...] | None,
    pop: np.ndarray | None,
    scalar: Callable[[Any], Any],
    offset: int = 0,
    dtype: Any = np.int64,
) -> Site | None:
    if shape is None:
        dist = uniform_int(n) if probs is None else Categorical(probs.tolist())
        if pop is None:
            return dist, lambda i: scalar(offset + int(i)), ()
        return dist, lambda i: pop[int(i)], ()
    total = math.prod(shape)
    if total == 0 or total * n > TABLE_LIMIT:
        return None
    row = (
        torch.full((n,), 1.0 / n, dtype=torch.float64) if probs is None else torch.from_numpy(probs)
    )
    dist = Categorical(row.expand(*shape, n)) if shape else Categorical(row)

    def convert(idx: Any) -> Any:
        index = _to_array(idx, shape, np.int64)
        return (index + offset).astype(dtype, copy=False) if pop is None else pop[index]

    return dist, convert, shape


def _choice(a: Any, size: Any, replace: Any, p: Any) -> Site | None:
    if not replace:
        return None
    pop = None
    if isinstance(a, numbers.Integral):
        n = int(a)
    else:
        pop = np.array(a, copy=False) if isinstance(a, np.ndarray) else np.array(a)
        if pop.ndim != 1:
            return None
        n = len(pop)
    if n < 1:
        return None
    probs = None
    if p is not None:
        probs = np.array(p, dtype=_F64)
        if probs.shape != (n,) or not bool(np.all(probs >= 0)) or abs(probs.sum() - 1) > 1e-8:
            return None
    elif n > CATEGORICAL_LIMIT:
        return None
    return _categorical(n, probs, _shape(size), pop, int)


# -- Generator ----------------------------------------------------------------------------------
def g_random(size: Any = None, dtype: Any = np.float64, out: Any = None) -> Site | None:
    return _site(Uniform, _true, size, (0.0, 1.0)) if _is_f64(dtype, out) else None


def g_standard_normal(size: Any = None, dtype: Any = np.float64, out: Any = None) -> Site | None:
    return _site(Normal, _true, size, (0.0, 1.0)) if _is_f64(dtype, out) else None


def g_standard_exponential(
    size: Any = None, dtype: Any = np.float64, method: str = "zig", out: Any = None
) -> Site | None:
    return _site(Exponential, _true, size, (1.0,)) if _is_f64(dtype, out) else None


def g_standard_gamma(
    shape: Any, size: Any = None, dtype: Any = np.float64, out: Any = None
) -> Site | None:
    if not _is_f64(dtype, out):
        return None
    return _site(Gamma, lambda k, _: k > 0, size, (shape, 1.0))


def g_integers(
    low: Any, high: Any = None, size: Any = None, dtype: Any = np.int64, endpoint: bool = False
) -> Site | None:
    return _ints(low, high, size, dtype, bool(endpoint), py_int=False)


def g_choice(
    a: Any,
    size: Any = None,
    replace: bool = True,
    p: Any = None,
    axis: int = 0,
    shuffle: bool = True,
) -> Site | None:
    return _choice(a, size, replace, p) if axis == 0 else None


GENERATOR_SPECS: dict[str, Spec] = {
    "random": g_random,
    "uniform": uniform,
    "normal": normal,
    "standard_normal": g_standard_normal,
    "exponential": exponential,
    "standard_exponential": g_standard_exponential,
    "gamma": gamma,
    "standard_gamma": g_standard_gamma,
    "beta": beta,
    "lognormal": lognormal,
    "weibull": weibull,
    "poisson": poisson,
    "binomial": binomial,
    "integers": g_integers,
    "choice": g_choice,
}


# -- RandomState (and the numpy.random module functions) --------------------------------------
def rs_random(size: Any = None) -> Site | None:
    return _site(Uniform, _true, size, (0.0, 1.0))


def rs_rand(*dims: int) -> Site | None:
    return _site(Uniform, _true, dims or None, (0.0, 1.0))


def rs_randn(*dims: int) -> Site | None:
    return _site(Normal, _true, dims or None, (0.0, 1.0))


def rs_standard_normal(size: Any = None) -> Site | None:
    return _site(Normal, _true, size, (0.0, 1.0))


def rs_standard_exponential(size: Any = None) -> Site | None:
    return _site(Exponential, _true, size, (1.0,))


def rs_standard_gamma(shape: Any, size: Any = None) -> Site | None:
    return g_standard_gamma(shape, size)


def rs_randint(low: Any, high: Any = None, size: Any = None, dtype: Any = int) -> Site | None:
    return _ints(low, high, size, dtype, False, py_int=dtype is int)


def rs_choice(a: Any, size: Any = None, replace: bool = True, p: Any = None) -> Site | None:
    return _choice(a, size, replace, p)


RANDOM_STATE_SPECS: dict[str, Spec] = {
    **{k: v for k, v in GENERATOR_SPECS.items() if k not in ("integers",)},
    "random": rs_random,
    "random_sample": rs_random,
    "rand": rs_rand,
    "randn": rs_randn,
    "standard_normal": rs_standard_normal,
    "standard_exponential": rs_standard_exponential,
    "standard_gamma": rs_standard_gamma,
    "randint": rs_randint,
    "choice": rs_choice,
}
