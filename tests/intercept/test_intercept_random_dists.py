"""Draws of every intercepted ``random`` function have the distribution of the original.

Each function is called N times under interception (values chosen by the engine's prior)
and N times natively from a seeded ``random.Random``; a two-sample KS test (continuous) or
chi-square test (discrete) must not reject at level 1e-3. Seeds are fixed: deterministic.
"""

from __future__ import annotations

import random

import pytest
from intercept_support import run_intercepted, same_continuous, same_discrete

N = 1500

CONTINUOUS = {
    "random": lambda r: r.random(),
    "uniform": lambda r: r.uniform(2.0, -1.0),
    "gauss": lambda r: r.gauss(1.0, 2.0),
    "normalvariate": lambda r: r.normalvariate(-1.0, 0.5),
    "lognormvariate": lambda r: r.lognormvariate(0.2, 0.7),
    "expovariate": lambda r: r.expovariate(3.0),
    "gammavariate<1": lambda r: r.gammavariate(0.5, 2.0),
    "gammavariate>1": lambda r: r.gammavariate(3.0, 0.5),
    "betavariate": lambda r: r.betavariate(2.0, 5.0),
    "weibullvariate": lambda r: r.weibullvariate(2.0, 1.5),
    "triangular": lambda r: r.triangular(0.0, 3.0, 1.0),
    "paretovariate": lambda r: r.paretovariate(3.0),
    "vonmisesvariate": lambda r: r.vonmisesvariate(1.0, 2.0),
}

DISCRETE = {
    "choice": lambda r: r.choice("abcdef"),
    "choices-weighted": lambda r: r.choices("abc", weights=[1, 2, 7])[0],
    "choices-cum": lambda r: r.choices("abc", cum_weights=[1, 3, 10])[0],
    "choices-k": lambda r: "".join(r.choices("abc", [5, 3, 2], k=3)),
    "randint": lambda r: r.randint(-3, 9),
    "randrange": lambda r: r.randrange(0, 30, 7),
    "randrange-big": lambda r: r.randrange(10**6) // 100_000,
    "shuffle": lambda r: _shuffled(r).index(0),
    "sample": lambda r: tuple(r.sample(range(5), 2)),
    "getrandbits": lambda r: r.getrandbits(3),
    "randbytes": lambda r: r.randbytes(1)[0] % 7,
}


def _shuffled(r: random.Random) -> list[int]:
    x = list(range(6))
    r.shuffle(x)
    return x


def _both(draw, seed: int):
    native_rng = random.Random(seed)
    native = [draw(native_rng) for _ in range(N)]
    # half the draws through a random.Random instance, half through the module functions
    inst = random.Random(seed + 1)

    def body():
        return [draw(inst) for _ in range(N // 2)] + [draw(random) for _ in range(N - N // 2)]

    drawn, trace = run_intercepted(body, seed=seed)
    return native, drawn, trace


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_same_distribution(name: str) -> None:
    native, drawn, trace = _both(CONTINUOUS[name], seed=11)
    assert len(trace.controlled) >= N  # every call was recorded, none escaped
    same_continuous(drawn, native, name)


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_discrete_same_distribution(name: str) -> None:
    native, drawn, trace = _both(DISCRETE[name], seed=12)
    assert len(trace.controlled) >= N
    same_discrete(drawn, native, name)


def test_mapped_calls_are_one_site_each_with_the_matching_distribution() -> None:
    calls = {
        "gauss": ("Normal", lambda: random.gauss(0.0, 1.0)),
        "expovariate": ("Exponential", lambda: random.expovariate(2.0)),
        "gammavariate": ("Gamma", lambda: random.gammavariate(2.0, 1.0)),
        "betavariate": ("Beta", lambda: random.betavariate(2.0, 1.0)),
        "lognormvariate": ("LogNormal", lambda: random.lognormvariate(0.0, 1.0)),
        "weibullvariate": ("Weibull", lambda: random.weibullvariate(1.0, 2.0)),
        "uniform": ("Uniform", lambda: random.uniform(0.0, 2.0)),
        "choice": ("Categorical", lambda: random.choice([1, 2, 3])),
        "choices": ("Categorical", lambda: random.choices([1, 2, 3], k=4)),
        "getrandbits": ("Bernoulli", lambda: random.getrandbits(40)),
    }
    for name, (dist, call) in calls.items():
        _, trace = run_intercepted(call)
        kinds = [v.distribution.name for v in trace.controlled]
        assert kinds == [dist], f"{name}: {kinds}"
