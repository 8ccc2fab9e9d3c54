"""The curated public API: ``rotalumis.__all__`` is exactly what we mean to export."""

from __future__ import annotations

import rotalumis

EXPECTED = {
    # modelling
    "Model", "model", "sample", "observe", "tag", "factor", "Trace", "RNG",
    # distributions
    "Distribution", "Normal", "Uniform", "Categorical", "Poisson", "Bernoulli", "Beta",
    "Exponential", "Gamma", "LogNormal", "Binomial", "Weibull", "TruncatedNormal", "Mixture",
    # results
    "Empirical", "available_engines",
    # limits per trace
    "TraceLimits", "limit_traces", "TraceLimitError",
    # errors
    "RotalumisError", "DistributionError", "ObservationError", "InferenceError", "ModelError",
    "DatasetError", "RemoteSimulatorError", "ProtocolError",
    "__version__",
}  # fmt: skip


def test_all_is_curated() -> None:
    assert set(rotalumis.__all__) == EXPECTED


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in rotalumis.__all__:
        obj = getattr(rotalumis, name)
        if name != "__version__":
            assert obj.__doc__, f"rotalumis.{name} has no docstring"


def test_engines_are_registered() -> None:
    assert {"prior", "is", "lmh", "rmh"} <= set(rotalumis.available_engines())
