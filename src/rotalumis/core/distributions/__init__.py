"""Distributions: the PPX set plus TruncatedNormal and Mixture (see :mod:`.base`).

Every class has a scalar fast path (Python numbers in and out) and a tensor path
(broadcast tensor parameters, generator-driven sampling, ``rsample`` for the continuous
reparameterizable kinds). Constructor arguments are the PPX field names, in PPX order.
"""

from .base import Distribution
from .categorical import Categorical
from .continuous import Exponential, LogNormal, Uniform
from .discrete import Bernoulli, Binomial, Poisson
from .gamma import Beta, Gamma
from .mixture import Mixture
from .normal import Normal
from .truncated import TruncatedNormal
from .weibull import Weibull

__all__ = [
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Distribution",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Mixture",
    "Normal",
    "Poisson",
    "TruncatedNormal",
    "Uniform",
    "Weibull",
]
