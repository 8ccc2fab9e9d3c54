"""Draws of intercepted ``numpy.random`` calls have the distribution of the original.

Covers the legacy module functions, ``RandomState`` and ``Generator`` instances, scalar
calls and ``size=`` arrays (one vector-valued site per call), mapped distributions and the
seeded-substitute fallback. Two-sample KS / chi-square at level 1e-3, fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from intercept_support import run_intercepted, same_continuous, same_discrete

N = 1500

# name -> (draw(gen, size), discrete); gen is a Generator, a RandomState or numpy.random
COMMON = {
    "normal": (lambda g, s: g.normal(1.0, 2.0, size=s), False),
    "normal-array-params": (lambda g, s: g.normal([0.0, 5.0], [1.0, 0.1], size=s), False),
    "uniform": (lambda g, s: g.uniform(-1.0, 3.0, size=s), False),
    "exponential": (lambda g, s: g.exponential(0.5, size=s), False),
    "standard_normal": (lambda g, s: g.standard_normal(size=s), False),
    "standard_exponential": (lambda g, s: g.standard_exponential(size=s), False),
    "gamma": (lambda g, s: g.gamma(0.7, 2.0, size=s), False),
    "standard_gamma": (lambda g, s: g.standard_gamma(3.0, size=s), False),
    "beta": (lambda g, s: g.beta(0.5, 0.8, size=s), False),
    "lognormal": (lambda g, s: g.lognormal(0.1, 0.4, size=s), False),
    "weibull": (lambda g, s: g.weibull(1.7, size=s), False),
    "vonmises(fallback)": (lambda g, s: g.vonmises(0.5, 2.0, size=s), False),
    "normal-scale0(fallback)": (lambda g, s: g.normal([0.0, 1.0], [0.0, 1.0], size=s), False),
    "poisson": (lambda g, s: g.poisson(3.5, size=s), True),
    "binomial": (lambda g, s: g.binomial(10, 0.3, size=s), True),
    "geometric(fallback)": (lambda g, s: g.geometric(0.3, size=s), True),
    "choice": (lambda g, s: g.choice(5, size=s), True),
    "choice-p": (lambda g, s: g.choice(["a", "b", "c"], size=s, p=[0.2, 0.3, 0.5]), True),
}
GENERATOR_ONLY = {
    "random": (lambda g, s: g.random(size=s), False),
    "integers": (lambda g, s: g.integers(-2, 7, size=s), True),
    "integers-endpoint": (lambda g, s: g.integers(4, size=s, endpoint=True), True),
}
LEGACY_ONLY = {
    "uniform-reversed(fallback)": (lambda g, s: g.uniform(3.0, -1.0, size=s), False),
    "random_sample": (lambda g, s: g.random_sample(size=s), False),
    "randint": (lambda g, s: g.randint(-2, 7, size=s), True),
}
KINDS = ["module", "RandomState", "Generator"]


def _gen(kind: str, seed: int):
    if kind == "module":
        np.random.seed(seed)
        return np.random
    if kind == "RandomState":
        return np.random.RandomState(seed)
    return np.random.default_rng(seed)


def _cases():
    for kind in KINDS:
        table = {**COMMON, **(GENERATOR_ONLY if kind == "Generator" else LEGACY_ONLY)}
        for name in sorted(table):
            yield pytest.param(kind, name, table[name], id=f"{kind}-{name}")


@pytest.mark.parametrize(("kind", "name", "case"), list(_cases()))
def test_size_array_is_one_site_with_original_distribution(kind, name, case) -> None:
    draw, discrete = case
    size = (N, 2) if "array-params" in name or "scale0" in name else (N,)
    native = draw(_gen(kind, 5), size)
    gen = _gen(kind, 6)
    drawn, trace = run_intercepted(lambda: draw(gen, size), seed=3)
    assert len(trace.controlled) == 1, [v.address for v in trace.controlled]
    assert isinstance(drawn, np.ndarray)
    assert drawn.shape == native.shape and drawn.dtype == native.dtype
    check = same_discrete if discrete else same_continuous
    for col in range(native.shape[1] if native.ndim == 2 else 1):
        a = drawn[:, col] if native.ndim == 2 else drawn
        b = native[:, col] if native.ndim == 2 else native
        check(a, b, f"{kind}.{name}[{col}]")


SCALAR = {
    "normal": (lambda g: g.normal(1.0, 2.0), False, float),
    "exponential": (lambda g: g.exponential(2.0), False, float),
    "poisson": (lambda g: g.poisson(2.0), True, int),
    "choice": (lambda g: g.choice(4), True, int),
    "triangular(fallback)": (lambda g: g.triangular(0.0, 1.0, 3.0), False, float),
    "choice-noreplace(fallback)": (
        lambda g: int(g.choice(5, 2, replace=False) @ np.array([5, 1])),
        True,
        int,
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(SCALAR))
def test_scalar_calls_keep_type_and_distribution(kind: str, name: str) -> None:
    draw, discrete, typ = SCALAR[name]
    native_gen = _gen(kind, 8)
    native = [draw(native_gen) for _ in range(N)]
    gen = _gen(kind, 9)
    drawn, trace = run_intercepted(lambda: [draw(gen) for _ in range(N)], seed=4)
    assert len(trace.controlled) == N
    assert type(drawn[0]) is type(native[0]) is typ
    (same_discrete if discrete else same_continuous)(drawn, native, f"{kind}.{name}")


def test_permutation_and_shuffle_are_one_site_each() -> None:
    g = np.random.default_rng(1)
    rs = np.random.RandomState(1)

    def body():
        out = []
        for _ in range(400):
            x = np.arange(5)
            g.shuffle(x)
            out.append(int(np.argmax(x == 0)))
            out.append(int(np.argmax(rs.permutation(5) == 0)))
            out.append(int(np.argmax(np.random.permutation(5) == 0)))
        return out

    drawn, trace = run_intercepted(body, seed=2)
    assert len(trace.controlled) == 1200  # permutation's internal shuffle is not recorded again
    native = np.random.default_rng(3).integers(0, 5, size=1200)  # position of 0: uniform
    same_discrete(drawn, native, "position of 0 after shuffle/permutation")


def test_generator_internal_calls_are_recorded_once() -> None:
    g = np.random.default_rng(0)
    _, trace = run_intercepted(
        lambda: (
            g.choice(4, p=[0.1, 0.2, 0.3, 0.4], size=3, replace=False),
            g.multivariate_normal([0.0, 0.0], np.eye(2)),
        )
    )
    labels = [v.address.rsplit("/", 1)[-1] for v in trace.controlled]
    assert labels == ["Generator.choice__Uniform__1", "Generator.multivariate_normal__Uniform__1"]
