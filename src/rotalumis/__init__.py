"""rotalumis: run stochastic simulators in reverse.

Write (or wrap) a simulator with :func:`sample` and :func:`observe`, then ask for the
posterior over its latent random choices given observed data::

    import rotalumis as rl

    class UnknownMean(rl.Model):
        def forward(self):
            mu = rl.sample(rl.Normal(1.0, 5 ** 0.5), name="mu")
            rl.observe(rl.Normal(mu, 2 ** 0.5), name="obs0")
            rl.observe(rl.Normal(mu, 2 ** 0.5), name="obs1")
            return mu

    posterior = UnknownMean().posterior(10_000, engine="is", observe={"obs0": 8, "obs1": 9})
    print(posterior.mean, posterior.stddev)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core import (
    RNG,
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    DatasetError,
    Distribution,
    DistributionError,
    Exponential,
    Gamma,
    InferenceError,
    LogNormal,
    Mixture,
    Model,
    ModelError,
    Normal,
    ObservationError,
    Poisson,
    ProtocolError,
    RemoteSimulatorError,
    RotalumisError,
    Trace,
    TraceLimitError,
    TraceLimits,
    TruncatedNormal,
    Uniform,
    Weibull,
    available_engines,
    factor,
    limit_traces,
    model,
    observe,
    sample,
    tag,
)

if TYPE_CHECKING:
    from .data import Empirical

__version__ = "0.1.0"

__all__ = [
    "RNG",
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "DatasetError",
    "Distribution",
    "DistributionError",
    "Empirical",
    "Exponential",
    "Gamma",
    "InferenceError",
    "LogNormal",
    "Mixture",
    "Model",
    "ModelError",
    "Normal",
    "ObservationError",
    "Poisson",
    "ProtocolError",
    "RemoteSimulatorError",
    "RotalumisError",
    "Trace",
    "TraceLimitError",
    "TraceLimits",
    "TruncatedNormal",
    "Uniform",
    "Weibull",
    "__version__",
    "available_engines",
    "factor",
    "limit_traces",
    "model",
    "observe",
    "sample",
    "tag",
]


def __getattr__(name: str) -> Any:
    # Empirical lives in rotalumis.data (NumPy, pyarrow): loaded when first asked for, so
    # that importing rotalumis (or rotalumis.core) stays light.
    if name == "Empirical":
        from .data import Empirical

        return Empirical
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
