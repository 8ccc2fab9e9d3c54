"""Per-call cost of the scalar fast path of every distribution.

For each kind this prints the microseconds per call of "construct + sample" and
"construct + log_prob" on the scalar path, next to the same operations with
``torch.distributions`` (``validate_args=False``, scalar tensor parameters, the way pyprob
represents scalar random choices) measured in the same run, and the ratio peer / rotalumis.

Run: ``.venv/bin/python benchmarks/bench_distributions.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

import torch
import torch.distributions as td

from rotalumis.core.distributions import (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    Normal,
    Poisson,
    TruncatedNormal,
    Uniform,
    Weibull,
)
from rotalumis.core.rng import RNG

# (label, rotalumis constructor, torch.distributions constructor or None, a value in support)
Case = tuple[str, Callable[[], Any], Callable[[], Any] | None, Any]


def _t(x: float) -> torch.Tensor:
    return torch.tensor(x)


def cases() -> list[Case]:
    """The benchmark cases: every kind, typical scalar parameters."""
    n0, n1 = _t(0.0), _t(1.0)
    return [
        ("Normal", lambda: Normal(0.0, 1.0), lambda: td.Normal(n0, n1, validate_args=False), 0.3),
        ("Uniform", lambda: Uniform(0.0, 2.0), lambda: td.Uniform(n0, _t(2.0), False), 0.3),
        (
            "Categorical(3)",
            lambda: Categorical([0.2, 0.3, 0.5]),
            lambda: td.Categorical(torch.tensor([0.2, 0.3, 0.5]), validate_args=False),
            1,
        ),
        ("Poisson(3)", lambda: Poisson(3.0), lambda: td.Poisson(_t(3.0), False), 2),
        ("Poisson(100)", lambda: Poisson(100.0), lambda: td.Poisson(_t(100.0), False), 95),
        ("Bernoulli", lambda: Bernoulli(0.3), lambda: td.Bernoulli(_t(0.3), None, False), 1),
        ("Beta", lambda: Beta(2.0, 3.0), lambda: td.Beta(_t(2.0), _t(3.0), False), 0.3),
        ("Exponential", lambda: Exponential(2.0), lambda: td.Exponential(_t(2.0), False), 0.3),
        ("Gamma", lambda: Gamma(2.5, 1.5), lambda: td.Gamma(_t(2.5), _t(1.5), False), 0.3),
        ("LogNormal", lambda: LogNormal(0.0, 0.5), lambda: td.LogNormal(n0, _t(0.5), False), 0.9),
        (
            "Binomial(10)",
            lambda: Binomial(10, 0.3),
            lambda: td.Binomial(_t(10.0), _t(0.3), validate_args=False),
            3,
        ),
        (
            "Binomial(1000)",
            lambda: Binomial(1000, 0.3),
            lambda: td.Binomial(_t(1000.0), _t(0.3), validate_args=False),
            290,
        ),
        ("Weibull", lambda: Weibull(1.0, 2.0), lambda: td.Weibull(n1, _t(2.0), False), 0.7),
        ("TruncatedNormal", lambda: TruncatedNormal(0.0, 1.0, -1.0, 2.0), None, 0.3),
        ("TruncatedNormal[8,9]", lambda: TruncatedNormal(0.0, 1.0, 8.0, 9.0), None, 8.1),
        (
            "Mixture(2 Normal)",
            lambda: Mixture([Normal(-1.0, 1.0), Normal(1.0, 0.5)], [0.3, 0.7]),
            lambda: td.MixtureSameFamily(
                td.Categorical(torch.tensor([0.3, 0.7]), validate_args=False),
                td.Normal(torch.tensor([-1.0, 1.0]), torch.tensor([1.0, 0.5]), False),
                validate_args=False,
            ),
            0.3,
        ),
    ]


def per_call_us(fn: Callable[[], Any], repeat: int) -> float:
    """Best-of-5 microseconds per call of ``fn``."""
    timer = timeit.Timer(fn)
    number = max(1, repeat)
    return min(timer.repeat(5, number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20000, help="calls per timing")
    args = parser.parse_args()
    rng = RNG(0)
    torch.manual_seed(0)
    header = (
        f"{'kind':<22}{'sample us':>11}{'torch us':>10}{'ratio':>8}"
        f"{'log_prob us':>13}{'torch us':>10}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for label, make, peer, value in cases():
        s_us = per_call_us(lambda make=make: make().sample(rng), args.repeat)
        l_us = per_call_us(lambda make=make, v=value: make().log_prob(v), args.repeat)
        if peer is not None:
            tv = torch.tensor(float(value))
            p_repeat = max(1, args.repeat // 10)
            ps_us = per_call_us(lambda peer=peer: peer().sample(), p_repeat)
            pl_us = per_call_us(lambda peer=peer, tv=tv: peer().log_prob(tv), p_repeat)
            peer_s = f"{ps_us:>10.2f}{ps_us / s_us:>7.1f}x"
            peer_l = f"{pl_us:>10.2f}{pl_us / l_us:>7.1f}x"
        else:
            peer_s = peer_l = f"{'-':>10}{'-':>8}"
        print(f"{label:<22}{s_us:>11.3f}{peer_s}{l_us:>13.3f}{peer_l}")
    print(f"(best of 5 runs of {args.repeat} calls each; torch peers with 1/10 as many)")


if __name__ == "__main__":
    main()
