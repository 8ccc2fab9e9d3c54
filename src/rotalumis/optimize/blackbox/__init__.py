"""Black-box optimization of simulators that cannot be differentiated.

:func:`optimize_blackbox` minimizes ``E[R(y)]``, ``y ~ simulator(psi)``, with local
generative surrogates (L-GSO) or a baseline (finite differences, score function, CMA-ES,
Bayesian optimization), counting simulator calls against a budget and running them in
parallel. See :mod:`.lgso` for the method and :mod:`.runner` for how calls are seeded and
what happens when one fails.
"""

from .api import METHODS, optimize_blackbox
from .config import (
    BayesOptConfig,
    CMAESConfig,
    FiniteDifferenceConfig,
    LGSOConfig,
    ScoreFunctionConfig,
)
from .result import BlackBoxResult
from .runner import SimulatorCallError

__all__ = [
    "METHODS",
    "BayesOptConfig",
    "BlackBoxResult",
    "CMAESConfig",
    "FiniteDifferenceConfig",
    "LGSOConfig",
    "ScoreFunctionConfig",
    "SimulatorCallError",
    "optimize_blackbox",
]
