"""L3: gradient-based optimization of the parameters of stochastic simulators.

Find design parameters ``psi* = argmin_psi E[loss(simulator(psi))]`` by stochastic gradient
descent, with the simulator written as a rotalumis model:

* :class:`GradientHandler` makes each random choice pass gradients to ``psi``: pathwise
  (reparameterized ``rsample``) through continuous choices, score-function terms
  ``(L - b) * grad log p`` for discrete ones (or for every choice with ``gradient="score"``);
* :class:`GradientEstimator` combines both in one unbiased surrogate per execution and
  averages a batch, with a leave-one-out or moving-average baseline ``b`` to cut variance;
* :func:`optimize` runs any :mod:`torch.optim` optimizer (Adam by default) on it, with a
  progress bar, and returns an :class:`OptimizationResult` (parameters, loss history,
  ``plot(path)`` for the loss curve);
* :func:`pipeline` composes simulators (a generator feeding a detector, ...) into one model
  that is optimized end to end.

Simulators that cannot be differentiated (a C++ simulator over PPX, an intercepted NumPy
simulator) are optimized by :func:`optimize_blackbox`: local generative surrogates (L-GSO,
a conditional normalizing flow fitted in a trust region and differentiated instead of the
simulator) or the baselines finite differences, score function, CMA-ES and Bayesian
optimization, all counting simulator calls against a budget (:class:`BlackBoxResult`).

Settings live in one frozen, validated :class:`OptimizeConfig`. Failures raise
:class:`OptimizationError` naming the culprit: a parameter that gets no gradient, the step
at which the loss or a gradient stopped being finite.

Example:
    >>> import torch
    >>> from rotalumis.core import Normal, model, sample
    >>> @model
    ... def throw(angle):  # noisy launch speed, drag-free range
    ...     v = sample(Normal(torch.tensor(10.0), 1.0))
    ...     return v**2 * torch.sin(2 * angle) / 9.81
    >>> res = optimize(throw, {"angle": 0.3}, lambda r: -r,
    ...                config=OptimizeConfig(steps=100, lr=0.03, progress=False), seed=0)
    >>> abs(float(res.params["angle"]) - torch.pi / 4) < 0.05
    True
"""

from .blackbox import (
    BayesOptConfig,
    BlackBoxResult,
    CMAESConfig,
    FiniteDifferenceConfig,
    LGSOConfig,
    ScoreFunctionConfig,
    SimulatorCallError,
    optimize_blackbox,
)
from .config import OptimizeConfig
from .errors import OptimizationError
from .estimator import GradientEstimate, GradientEstimator, Loss
from .handler import GradientHandler
from .loop import optimize
from .pipeline import Pipeline, pipeline
from .result import OptimizationResult

__all__ = [
    "BayesOptConfig",
    "BlackBoxResult",
    "CMAESConfig",
    "FiniteDifferenceConfig",
    "GradientEstimate",
    "GradientEstimator",
    "GradientHandler",
    "LGSOConfig",
    "Loss",
    "OptimizationError",
    "OptimizationResult",
    "OptimizeConfig",
    "Pipeline",
    "ScoreFunctionConfig",
    "SimulatorCallError",
    "optimize",
    "optimize_blackbox",
    "pipeline",
]
