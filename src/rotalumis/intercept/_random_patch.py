"""Patches for the standard library's :mod:`random`.

The distribution methods of :class:`random.Random` are replaced at class level, so every
instance is intercepted, and so is the module-level API (bound methods of the hidden
instance ``random._inst``) and any copy of it made earlier by ``from random import ...``.

========================================  ===============================================
call                                      recorded as
========================================  ===============================================
``random()``                              ``Uniform(0, 1)``
``uniform(a, b)``                         ``Uniform(min, max)``
``gauss``, ``normalvariate``              ``Normal(mu, |sigma|)``
``lognormvariate``                        ``LogNormal(mu, |sigma|)``
``expovariate(lambd)``                    ``Exponential(lambd)``
``gammavariate(alpha, beta)``             ``Gamma(alpha, 1 / beta)``
``betavariate(alpha, beta)``              ``Beta(alpha, beta)``
``weibullvariate(alpha, beta)``           ``Weibull(alpha, beta)``
``binomialvariate(n, p)`` (3.12+)         ``Binomial(n, p)``
``choices(population, weights, k=k)``     ``Categorical`` (one vector site of ``k`` for ``k > 1``)
``choice``, ``randrange``, ``randint``,   one ``Categorical`` over ``n`` per internal
``shuffle``, ``sample``                   ``_randbelow(n)`` (``n <= 4096``; larger: bits)
``getrandbits(k)``, ``randbytes``         ``k`` fair bits: ``Bernoulli(0.5)`` vector
``triangular``, ``paretovariate``,        their underlying ``random()`` draws
``vonmisesvariate``
========================================  ===============================================

Parameters outside a distribution's domain (``sigma == 0``, ``lambd <= 0``, ...) make the
call run the original implementation, whose own ``random()`` draws are then recorded (or
which raises the usual error). :class:`random.SystemRandom` (OS entropy, used by
:mod:`secrets`) is never intercepted; a user subclass that overrides ``random()`` keeps its
own generator for the methods it overrides.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from typing import Any

import torch

from rotalumis.core import (
    Beta,
    Binomial,
    Categorical,
    Distribution,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    Uniform,
    Weibull,
)

from ._patching import ClassPatch
from ._session import (
    PASS,
    accelerated_wrapper,
    bits_distribution,
    bits_to_int,
    record_python,
    recording,
    site_for,
)

__all__ = ["CATEGORICAL_LIMIT", "random_patches"]

CATEGORICAL_LIMIT = 4096
"""Largest ``n`` for which ``_randbelow(n)`` is one ``Categorical`` site."""

Site = tuple[Distribution | None, Callable[[Any], Any], tuple[int, ...]]
"""(prior, value converter, shape of a vector-valued site or ``()``)."""
Builder = Callable[..., Site | None]

_U01 = Uniform(0.0, 1.0)
_INF = math.inf
_UNIFORM_INT: dict[int, Categorical] = {}


def uniform_int(n: int) -> Categorical:
    """The uniform ``Categorical`` over ``0 .. n-1`` (one instance per ``n``)."""
    dist = _UNIFORM_INT.get(n)
    if dist is None:
        dist = _UNIFORM_INT[n] = Categorical([1.0] * n)
    return dist


def _pos(*xs: float) -> bool:
    return all(0.0 < x < math.inf for x in xs)


def _random() -> Site:
    return _U01, float, ()


def _uniform(a: float, b: float) -> Site | None:
    a, b = float(a), float(b)
    if not (a != b and math.isfinite(a) and math.isfinite(b)):
        return None
    return Uniform(min(a, b), max(a, b)), float, ()


def _normal(mu: float = 0.0, sigma: float = 1.0) -> Site | None:
    mu, sigma = float(mu), abs(float(sigma))
    if not (0.0 < sigma < _INF and -_INF < mu < _INF):
        return None
    return Normal(mu, sigma), float, ()


def _lognormal(mu: float, sigma: float) -> Site | None:
    mu, sigma = float(mu), abs(float(sigma))
    if not (_pos(sigma) and math.isfinite(mu)):
        return None
    return LogNormal(mu, sigma), float, ()


if sys.version_info >= (3, 12):

    def _expo(lambd: float = 1.0) -> Site | None:
        lambd = float(lambd)
        return (Exponential(lambd), float, ()) if 0.0 < lambd < _INF else None

else:

    def _expo(lambd: float) -> Site | None:
        lambd = float(lambd)
        return (Exponential(lambd), float, ()) if 0.0 < lambd < _INF else None


def _gamma(alpha: float, beta: float) -> Site | None:
    alpha, beta = float(alpha), float(beta)
    return (Gamma(alpha, 1.0 / beta), float, ()) if _pos(alpha, beta, 1.0 / beta) else None


def _beta(alpha: float, beta: float) -> Site | None:
    alpha, beta = float(alpha), float(beta)
    return (Beta(alpha, beta), float, ()) if _pos(alpha, beta) else None


def _weibull(alpha: float, beta: float) -> Site | None:
    alpha, beta = float(alpha), float(beta)
    return (Weibull(alpha, beta), float, ()) if _pos(alpha, beta) else None


def _binomial(n: int = 1, p: float = 0.5) -> Site | None:
    if not isinstance(n, int) or n < 1 or not 0.0 < float(p) < 1.0:
        return None
    return Binomial(n, float(p)), int, ()


def _randbelow(n: int) -> Site | None:
    if not isinstance(n, int) or n < 1 or n > CATEGORICAL_LIMIT:
        return None
    if n == 1:
        return None, lambda _: 0, ()
    return uniform_int(n), int, ()


def _getrandbits(k: int) -> Site | None:
    if not isinstance(k, int) or k < 1:
        return None
    return bits_distribution(k), bits_to_int, (k,)


def _choices(
    population: Any, weights: Any = None, *, cum_weights: Any = None, k: int = 1
) -> Site | None:
    n = len(population)
    if (
        n == 0
        or not isinstance(k, int)
        or k < 1
        or (weights is not None and cum_weights is not None)
    ):
        return None
    if cum_weights is not None:
        cum = [float(c) for c in cum_weights]
        probs = [b - a for a, b in zip([0.0, *cum[:-1]], cum, strict=True)]
    elif weights is not None:
        probs = [float(w) for w in weights]
    else:
        probs = [1.0] * n
    if len(probs) != n or not all(0.0 <= p < math.inf for p in probs) or sum(probs) <= 0.0:
        return None
    pop = population
    if k == 1:
        return Categorical(probs), lambda i: [pop[int(i)]], ()
    table = torch.tensor(probs, dtype=torch.float64).expand(k, n)
    return Categorical(table), lambda idx: [pop[i] for i in idx.tolist()], (k,)


_BUILDERS: dict[str, Builder] = {
    "random": _random,
    "uniform": _uniform,
    "gauss": _normal,
    "normalvariate": _normal,
    "lognormvariate": _lognormal,
    "expovariate": _expo,
    "gammavariate": _gamma,
    "betavariate": _beta,
    "weibullvariate": _weibull,
    "binomialvariate": _binomial,
    "_randbelow": _randbelow,
    "getrandbits": _getrandbits,
    "choices": _choices,
}

_INST = getattr(random, "_inst", None)
_SYSTEM = random.SystemRandom


def _make_wrapper(name: str, original: Callable[..., Any], build: Builder) -> Callable[..., Any]:
    module_label = "random." + name.lstrip("_")
    class_label = "Random." + name.lstrip("_")
    memo: dict[Any, Any] = {}

    def wrapper(self: random.Random, *args: Any, **kwargs: Any) -> Any:
        session = recording()
        if session is not None and not isinstance(self, _SYSTEM):
            site = site_for(build, memo, args, kwargs)
            if site is not None:
                dist, convert, shape = site
                if dist is None:
                    return convert(None)
                label = module_label if self is _INST else class_label
                value = record_python(session, label, dist, sys._getframe(1), shape)
                if value is not PASS:
                    return convert(value)
        return original(self, *args, **kwargs)

    wrapper.__name__ = name
    wrapper.__qualname__ = "Random." + name
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    # the compiled common case, where built (it falls back on this wrapper)
    return accelerated_wrapper(wrapper, original, memo, (module_label, class_label), _INST, _SYSTEM)


def random_patches() -> tuple[list[ClassPatch], list[tuple[Any, Any]]]:
    """The class patches for :class:`random.Random` and the module-level alias pairs.

    Returns:
        ``(patches, aliases)``: the class patch, and ``(original, replacement)``
        pairs for the module-level functions (bound methods of ``random._inst``).
    """
    wrappers = {}
    for name, build in _BUILDERS.items():
        original = getattr(random.Random, name, None)
        if original is None:
            continue
        wrappers[name] = _make_wrapper(name, original, build)
    patches = [ClassPatch(random.Random, wrappers)]
    aliases = []
    if _INST is not None:
        for name, wrapper in wrappers.items():
            original = random.__dict__.get(name)
            if original is not None and getattr(original, "__self__", None) is _INST:
                aliases.append((original, wrapper.__get__(_INST)))
    return patches, aliases
